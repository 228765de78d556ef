"""Soak: steady mixed traffic against one ``codeq serve``, watching for leaks and drift.

Producers create tasks (some delayed, mixed priorities, some with idempotency
keys); workers claim them and complete most, NACK some, abandon some and let
a few leases run out; an operator reads queue stats. Every ``--interval``
seconds the run prints the server's RSS, open file descriptors, the requests
answered, the latency p50 / p99 of the interval and the queue depths. The
latency leaves out the long-polling claims: the queue is kept nearly empty,
so their time is mostly the wait for the next create, set by the producers'
rate, not by the server. At the end it checks
that RSS and fds ended flat (within 10 % of the first sample after warm-up)
and that latency did not drift up (the median p99 of the last three
intervals within 2x of that of the first three after warm-up), then
fills the store with ``--deep`` ready tasks of another command (directly, not
through HTTP) and checks that the server's RSS does not rise when it serves
that queue.

    python benchmarks/soak.py --store redis --minutes 10
    python benchmarks/soak.py --store sqlite --minutes 10 --deep 500000

The table is also written to ``benchmarks/results/soak-<store>.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from codeq.core.config import load_settings
from codeq.core.domain import Task
from codeq.devkeys import mint_token
from codeq.plugins import open_storage
from codeq.testing.redis_server import RedisServer
from codeq.testing.server import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "soak.work"
DEEP = "soak.deep"
LEASE_SECONDS = 2.0
RATE = 80  # creates per second
WORKERS = 4
TOLERANCE = 0.10
#: Intervals (first after warm-up, last) whose p99s are compared for drift.
DRIFT_SAMPLES = 3


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: int
    p50_ms: float
    p99_ms: float
    requests: int
    ready: int
    delayed: int
    in_progress: int

    def row(self) -> str:
        return (f"{self.at:7.0f}  {self.rss_mb:8.1f}  {self.fds:4d}  {self.p50_ms:7.2f}  "
                f"{self.p99_ms:7.2f}  {self.requests:8d}  {self.ready:6d}  {self.delayed:6d}  "
                f"{self.in_progress:6d}")


HEADER = "      s    RSS MB   fds  p50 ms   p99 ms  requests   ready  delayed  running"


@dataclass
class Traffic:
    latencies: list[float] = field(default_factory=list)
    answered: int = 0
    errors: int = 0
    stop: bool = False

    async def timed(self, call: asyncio.Future[httpx.Response] | object, *,
                    polls: bool = False) -> httpx.Response | None:
        """Await ``call``, counting it; its latency is kept unless it ``polls`` (waits for work)."""
        started = time.perf_counter()
        try:
            response: httpx.Response = await call  # type: ignore[misc]
        except httpx.HTTPError:
            self.errors += 1
            return None
        self.answered += 1
        if not polls:
            self.latencies.append(time.perf_counter() - started)
        if response.status_code >= 500:
            self.errors += 1
        return response


def process_stats(pid: int) -> tuple[float, int]:
    """(RSS in MB, open file descriptors) of a process, from /proc."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


async def produce(http: httpx.AsyncClient, traffic: Traffic) -> None:
    sequence = 0
    while not traffic.stop:
        sequence += 1
        body: dict[str, object] = {"command": COMMAND, "payload": {"n": sequence},
                                   "priority": random.randint(0, 9)}
        if sequence % 10 == 0:
            body["delaySeconds"] = random.uniform(0.5, 3)
        if sequence % 7 == 0:
            body["idempotencyKey"] = f"k-{sequence}"
        await traffic.timed(http.post("/tasks", json=body))
        await asyncio.sleep(1 / RATE)


async def work(http: httpx.AsyncClient, traffic: Traffic) -> None:
    while not traffic.stop:
        response = await traffic.timed(http.post("/tasks/claim", json={
            "commands": [COMMAND], "waitSeconds": 1, "leaseSeconds": LEASE_SECONDS}), polls=True)
        if response is None or response.status_code != 200:
            continue
        task_id = response.json()["id"]
        roll = random.random()
        if roll < 0.80:
            await traffic.timed(http.post(f"/tasks/{task_id}/result",
                                          json={"status": "COMPLETED", "result": {"ok": 1}}))
        elif roll < 0.90:
            await traffic.timed(http.post(f"/tasks/{task_id}/nack",
                                          json={"delaySeconds": 0, "reason": "soak"}))
        elif roll < 0.97:
            await traffic.timed(http.post(f"/tasks/{task_id}/abandon"))
        # else: forget it; the reaper takes it back when the lease runs out


async def observe(admin: httpx.AsyncClient, producer: httpx.AsyncClient, pid: int,
                  traffic: Traffic, seconds: float, interval: float) -> list[Sample]:
    samples: list[Sample] = []
    started = time.monotonic()
    print(HEADER, flush=True)
    while time.monotonic() - started < seconds:
        await asyncio.sleep(interval)
        window, traffic.latencies = traffic.latencies, []
        answered, traffic.answered = traffic.answered, 0
        await traffic.timed(producer.get("/tasks", params={"command": COMMAND, "limit": 20}))
        stats = (await admin.get(f"/admin/queues/{COMMAND}")).json()
        rss, fds = process_stats(pid)
        quantiles = statistics.quantiles(window, n=100) if len(window) > 1 else [0.0] * 99
        sample = Sample(time.monotonic() - started, rss, fds, quantiles[49] * 1000,
                        quantiles[98] * 1000, answered, stats["ready"], stats["delayed"],
                        stats["inProgress"])
        samples.append(sample)
        print(sample.row(), flush=True)
    return samples


async def soak(server: ServerProcess, seconds: float, interval: float) -> tuple[list[Sample], int]:
    def client(role: str, **extra: object) -> httpx.AsyncClient:
        token = mint_token(server.data_dir, role, **extra)  # type: ignore[arg-type]
        return httpx.AsyncClient(base_url=server.api_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"},
                                 limits=httpx.Limits(max_connections=16))

    traffic = Traffic()
    async with client("producer") as producer, client("admin") as admin, \
            client("worker", sub="soak") as worker:
        jobs = [asyncio.create_task(produce(producer, traffic))]
        jobs += [asyncio.create_task(work(worker, traffic)) for _ in range(WORKERS)]
        samples = await observe(admin, producer, server.pid, traffic, seconds, interval)
        traffic.stop = True
        await asyncio.gather(*jobs)
    return samples, traffic.errors


async def fill(storage: str, count: int) -> None:
    """``count`` ready tasks of ``DEEP``, straight into the store in batches."""
    store = open_storage(storage, load_settings(environ={}))
    await store.open()
    try:
        now = time.time()
        for start in range(0, count, 1000):
            batch = [Task(id=store.new_task_id(DEEP), command=DEEP, payload={"n": start + i},
                          priority=5, max_attempts=5, created_at=now, updated_at=now)
                     for i in range(min(1000, count - start))]
            await store.create_many(batch, now=now)
    finally:
        await store.close()


async def deep_queue(server: ServerProcess, count: int) -> tuple[float, float]:
    """Server RSS (MB) before and after serving a queue of ``count`` ready tasks."""
    token = mint_token(server.data_dir, "worker", sub="deep")
    admin = mint_token(server.data_dir, "admin")
    async with httpx.AsyncClient(base_url=server.api_url, timeout=60) as http:
        async def exercise() -> None:
            for _ in range(200):
                await http.post("/tasks/claim", json={"commands": [DEEP]},
                                headers={"Authorization": f"Bearer {token}"})
                await http.get(f"/admin/queues/{DEEP}",
                               headers={"Authorization": f"Bearer {admin}"})

        await exercise()
        before, _ = process_stats(server.pid)
        await fill(server.storage, count)
        await exercise()
        after, _ = process_stats(server.pid)
    return before, after


def typical_p99(samples: list[Sample]) -> float:
    """The median p99 of a few intervals: one busy interval on a shared machine is not a drift."""
    return statistics.median(s.p99_ms for s in samples)


def verdict(samples: list[Sample], errors: int, deep: tuple[float, float] | None) -> list[str]:
    warm, last = samples[min(1, len(samples) - 1)], samples[-1]
    early = typical_p99(samples[1:1 + DRIFT_SAMPLES] or samples[-1:])
    late = typical_p99(samples[-DRIFT_SAMPLES:])
    checks = [
        (f"RSS {warm.rss_mb:.1f} -> {last.rss_mb:.1f} MB",
         last.rss_mb <= warm.rss_mb * (1 + TOLERANCE)),
        (f"fds {warm.fds} -> {last.fds}", last.fds <= warm.fds * (1 + TOLERANCE) + 2),
        (f"p99 (median of {DRIFT_SAMPLES} intervals) {early:.1f} -> {late:.1f} ms",
         late <= 2 * early + 5),
        (f"5xx / transport errors: {errors}", errors == 0),
    ]
    if deep is not None:
        checks.append((f"RSS with the deep queue {deep[0]:.1f} -> {deep[1]:.1f} MB",
                       deep[1] <= deep[0] * (1 + TOLERANCE)))
    return [f"{'ok  ' if good else 'FAIL'}  {text}" for text, good in checks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--deep", type=int, default=500_000,
                        help="ready tasks for the deep-queue RSS check (0: skip)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="codeq-soak-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        storage = (stack.enter_context(RedisServer.start(work / "redis")).url
                   if args.store == "redis" else f"sqlite:///{work / 'soak.db'}")
        server = stack.enter_context(ServerProcess.start(
            work / "server", storage=storage, config={"logLevel": "warning",
                                                      "backoffPolicy": "fixed",
                                                      "backoffBaseSeconds": 0.5}))
        samples, errors = asyncio.run(soak(server, args.minutes * 60, args.interval))
        deep = asyncio.run(deep_queue(server, args.deep)) if args.deep else None
    lines = verdict(samples, errors, deep)
    command = " ".join(["python", "benchmarks/soak.py", *(argv or sys.argv[1:])])
    text = "\n".join([f"$ {command}", "", HEADER, *(s.row() for s in samples), "", *lines, ""])
    print("\n".join(lines))
    out = ROOT / "benchmarks" / "results" / f"soak-{args.store}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0 if all(line.startswith("ok") for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
