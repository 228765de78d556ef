"""Latency of codeq: wake-up of an idle long-polling worker, and claim at queue depth.

1. Wake-up: a real ``codeq serve`` (SQLite or Redis; 1 or 2 processes) and one
   idle ``codeq worker start`` long-polling it. The benchmark creates one
   task at a time (``POST /tasks`` over a kept-alive connection) and measures
   from the moment the create's answer is read to the moment the worker's
   handler holds the task (stamped by the handler, same monotonic clock),
   then pauses a little so the worker is back in its long poll. p50 / p99
   over ``--tasks`` tasks (a negative time: the worker held the task before
   the producer had read the answer).
2. Claim latency on the Redis store at ready depth 1,000 and 500,000, store
   calls without HTTP, both depths measured in alternating blocks (the
   method of ``claim_latency.py``, whose helpers it reuses).
3. With ``--rss-tasks N``, on each store: the server's RSS at start, while
   the store holds N ready tasks, and after they were drained. Created with
   batch creates and drained with batch claims answered by batch results,
   ``RSS_PARALLEL`` calls in flight at a time. "At start" is after a warm-up
   of that same traffic (a few batches), so the baseline already holds what
   the server needs per request and only growth with the number of tasks shows.

The table goes to stdout and ``benchmarks/results/latency.txt``.

    python benchmarks/latency.py [--tasks 500] [--big 500000] [--quick]
    python benchmarks/latency.py --rss-only --rss-tasks 500000 --output benchmarks/results/rss-500k.txt
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from _harness import BENCH_DIR, bench_env, header, percentile, publish, running, table
from _systems import SERVER_START_TIMEOUT, flush
from claim_latency import BIG, SMALL, fill
from claim_latency import measure as claims
from codeq_redis import RedisStorage
from peers.codeq_app import LATENCY_ENV

from codeq import AsyncClient
from codeq.client.calls import task_body
from codeq.testing.redis_server import RedisServer
from codeq.testing.server import ServerProcess

RESULTS = BENCH_DIR / "results"
COMMAND = "bench.latency"
WARM_UP = 20
#: Pause after the worker got a task, so that it has reported and is long-polling again.
PAUSE_SECONDS = (0.02, 0.04)
HOLD_TIMEOUT = 10.0
BLOCKS = 10
#: Tasks per batch call of the RSS run, and batch calls in flight at a time.
RSS_BATCH = 1000
RSS_PARALLEL = 4
#: The issue's bounds on RSS growth: holding N ready tasks, and after draining them.
RSS_HELD_LIMIT = 0.10
RSS_DRAINED_LIMIT = 0.20
#: Targets of the issue, in milliseconds.
WAKE_TARGETS = {"redis": (2.0, 10.0), "sqlite": (5.0, None)}


@dataclass(frozen=True)
class Wake:
    store: str
    servers: int
    samples: list[float]  # milliseconds
    failure: str = ""

    def row(self) -> list[str]:
        if self.failure:
            return [self.store, f"{self.servers} proc", "-", "-", "-", "-", "-", self.failure]
        p50, p99 = percentile(self.samples, 50), percentile(self.samples, 99)
        goal50, goal99 = WAKE_TARGETS[self.store]
        verdict = "met" if p50 <= goal50 and (goal99 is None or p99 <= goal99) else "MISSED"
        goal = f"p50 <= {goal50:g}" + (f", p99 <= {goal99:g}" if goal99 else "")
        return [self.store, f"{self.servers} proc", str(len(self.samples)), f"{p50:.2f}",
                f"{p99:.2f}", f"{min(self.samples):.2f}", f"{max(self.samples):.2f}",
                f"{goal}: {verdict}"]


class HoldLog:
    """The handler's ``<i> <monotonic_ns>`` lines, read as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()
        self.offset = 0
        self.held: dict[int, int] = {}

    def wait_for(self, i: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while i not in self.held:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
            complete = chunk[:chunk.rfind(b"\n") + 1]
            self.offset += len(complete)
            for line in complete.decode().splitlines():
                task, stamp = line.split()
                self.held[int(task)] = int(stamp)
            if i in self.held:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not get task {i} in {timeout:g} s")
            time.sleep(0.0002)
        return self.held[i]


def wake_up(store: str, servers: int, tasks: int, redis: RedisServer, root: Path) -> Wake:
    data_dir = root / f"{store}-{servers}p"
    storage = None
    if store == "redis":
        flush(redis)
        storage = redis.url
    args = ("--workers", str(servers)) if servers > 1 else ()
    holds = HoldLog(data_dir.with_suffix(".holds"))
    with ServerProcess.start(data_dir, storage=storage, args=args,
                            timeout=SERVER_START_TIMEOUT) as server:
        env = bench_env({LATENCY_ENV: str(holds.path), "CODEQ_BASE_URL": server.base_url})
        worker = [sys.executable, "-m", "codeq", "--worker-token",
                  server.token("worker", sub="bench-latency"), "worker", "start", "--events",
                  COMMAND, "--handler", "peers.codeq_app:handle_timed", "--wait-seconds", "30"]
        samples: list[float] = []
        with running([worker], env, data_dir / "worker.log") as group, \
                httpx.Client(base_url=server.api_url, headers=server.headers("producer"),
                             timeout=10) as client:
            for i in range(WARM_UP + tasks):
                client.post("/tasks", json={"command": COMMAND, "payload": {"i": i}}
                            ).raise_for_status()
                answered = time.monotonic_ns()
                held = holds.wait_for(i, HOLD_TIMEOUT if i >= WARM_UP else 60)
                if i >= WARM_UP:
                    samples.append((held - answered) / 1e6)
                group.check_alive()
                time.sleep(random.uniform(*PAUSE_SECONDS))
    return Wake(store, servers, samples)


async def claim_depths(url: str, claims_per_depth: int, small: int, big: int
                       ) -> list[list[str]]:
    """Claim p50 / p99 (ms) at ``small`` and ``big`` ready depth, in alternating blocks."""
    store = RedisStorage(url)
    await store.open()
    try:
        await fill(store, SMALL, small)
        filled = await fill(store, BIG, big)
        print(f"  filled {big:,} ready tasks in {filled:.0f} s", file=sys.stderr)
        await asyncio.sleep(2)  # let Redis finish rehashing after the bulk load
        for command in (SMALL, BIG):
            await claims(store, command, 200)  # warm-up
        both: dict[str, list[float]] = {SMALL: [], BIG: []}
        for _ in range(BLOCKS):
            for command in (SMALL, BIG):
                both[command] += await claims(store, command, claims_per_depth // BLOCKS)
    finally:
        await store.close()
    p = {c: (percentile(s, 50), percentile(s, 99)) for c, s in both.items()}
    ratio50, ratio99 = p[BIG][0] / p[SMALL][0], p[BIG][1] / p[SMALL][1]
    verdict = "met" if max(ratio50, ratio99) <= 1.5 else "MISSED"
    return [[f"{small:,}", str(len(both[SMALL])), f"{p[SMALL][0]:.3f}", f"{p[SMALL][1]:.3f}",
             ""],
            [f"{big:,}", str(len(both[BIG])), f"{p[BIG][0]:.3f}", f"{p[BIG][1]:.3f}",
             f"{ratio50:.2f}x / {ratio99:.2f}x of depth {small:,} (<= 1.5x: {verdict})"]]


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MiB (uvicorn's workers are children)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(entry.name) == pid or _descends(int(entry.name), pid):
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total / 1024


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            return False
        pid = int(stat.rsplit(b")", 1)[1].split()[1])
        if pid == ancestor:
            return True
    return False


@dataclass(frozen=True)
class Rss:
    """Server RSS (MiB) around ``tasks`` tasks, and the seconds filling and draining took."""

    store: str
    tasks: int
    start: float
    held: float
    drained: float
    fill_seconds: float
    drain_seconds: float

    def row(self) -> list[str]:
        def growth(after: float, limit: float) -> str:
            change = after / self.start - 1
            return f"{change:+.0%} (<= {limit:+.0%}: {'met' if change <= limit else 'MISSED'})"

        return [self.store, f"{self.tasks:,}", f"{self.start:.1f}", f"{self.held:.1f}",
                growth(self.held, RSS_HELD_LIMIT), f"{self.drained:.1f}",
                growth(self.drained, RSS_DRAINED_LIMIT), f"{self.fill_seconds:.0f}",
                f"{self.drain_seconds:.0f}"]


async def _in_parallel(loop: Callable[[], Awaitable[None]]) -> None:
    await asyncio.gather(*(loop() for _ in range(RSS_PARALLEL)))


def _refused(outcomes: list[dict[str, object]], what: str) -> None:
    errors = [o["error"] for o in outcomes if "error" in o]
    if errors:
        raise RuntimeError(f"{len(errors)} {what} refused, e.g. {errors[0]}")


async def _fill(producer: AsyncClient, tasks: int) -> None:
    """``tasks`` ready tasks of ``COMMAND``, created in batches."""
    starts = iter(range(0, tasks, RSS_BATCH))

    async def loop() -> None:
        for start in starts:  # shared by the loops: each batch is created once
            _refused(await producer.create_tasks(
                [task_body(COMMAND, {"i": i}) for i in range(start, min(tasks, start + RSS_BATCH))]),
                "creates")

    await _in_parallel(loop)


async def _drain(worker: AsyncClient, tasks: int) -> None:
    """Claim every ready task of ``COMMAND`` in batches and complete them in batches."""
    drained = 0

    async def loop() -> None:
        nonlocal drained
        while claimed := await worker.claim_batch(RSS_BATCH, [COMMAND], lease_seconds=600):
            _refused(await worker.submit_results([
                {"taskId": t["id"], "status": "COMPLETED", "result": {}} for t in claimed]),
                "results")
            drained += len(claimed)

    await _in_parallel(loop)
    if drained != tasks:
        raise RuntimeError(f"drained {drained:,} tasks, expected {tasks:,}")


async def _timed(step: Awaitable[None]) -> float:
    started = time.monotonic()
    await step
    return time.monotonic() - started


async def _fill_then_drain(server: ServerProcess, store: str, tasks: int) -> Rss:
    async with AsyncClient(server.base_url, server.token("producer")) as producer, \
            AsyncClient(server.base_url, server.token("worker")) as worker:
        warm_up = RSS_PARALLEL * RSS_BATCH * 2
        await _fill(producer, warm_up)
        await _drain(worker, warm_up)
        start = rss_mib(server.pid)
        fill_seconds = await _timed(_fill(producer, tasks))
        held = rss_mib(server.pid)
        drain_seconds = await _timed(_drain(worker, tasks))
        return Rss(store, tasks, start, held, rss_mib(server.pid), fill_seconds, drain_seconds)


def rss_around(tasks: int, redis: RedisServer, root: Path) -> list[Rss]:
    """Server RSS (1 process) of each store around ``tasks`` tasks."""
    measured = []
    for store in ("sqlite", "redis"):
        print(f"server RSS around {tasks:,} tasks: {store}", file=sys.stderr)
        flush(redis)
        with ServerProcess.start(root / f"rss-{store}", timeout=SERVER_START_TIMEOUT,
                                 storage=redis.url if store == "redis" else None) as server:
            measured.append(asyncio.run(_fill_then_drain(server, store, tasks)))
    return measured


def latency_sections(args: argparse.Namespace, redis: RedisServer, root: Path) -> list[str]:
    """Wake-up latency of each store and server count, claim latency by depth."""
    wakes = []
    for store in ("sqlite", "redis"):
        for servers in (1, 2):
            print(f"wake-up: {store}, {servers} server process(es)", file=sys.stderr)
            try:
                wakes.append(wake_up(store, servers, args.tasks, redis, root))
            except (RuntimeError, TimeoutError) as exc:
                print(f"  failed: {exc}", file=sys.stderr)
                last = [line for line in str(exc).splitlines() if line.strip()][-1:]
                wakes.append(Wake(store, servers, [], f"failed: {''.join(last)}"[:100]))
    print("claim latency by depth", file=sys.stderr)
    flush(redis)
    depths = asyncio.run(claim_depths(redis.url, args.claims, args.small, args.big))
    return [
        ("Wake-up: create answered -> idle long-polling worker holds the task (ms)\n"
         + table(["store", "server", "tasks", "p50", "p99", "min", "max", "target"],
                 [w.row() for w in wakes])),
        ("Claim latency on the Redis store (one task, store call, no HTTP; ms)\n"
         + table(["ready depth", "claims", "p50", "p99", "vs small"], depths)),
    ]


def rss_section(tasks: int, redis: RedisServer, root: Path) -> str:
    if not tasks:
        return "Server RSS: not measured (--rss-tasks 0)"
    return (f"Server RSS (1 process; {RSS_PARALLEL} batch calls of {RSS_BATCH:,} in flight; "
            "MiB; seconds)\n"
            + table(["store", "tasks", "at start", f"{tasks:,} ready", "growth", "drained",
                     "growth", "fill s", "drain s"],
                    [r.row() for r in rss_around(tasks, redis, root)]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500, help="wake-ups per setting")
    parser.add_argument("--claims", type=int, default=3000, help="claims per depth")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=500_000)
    parser.add_argument("--rss-tasks", type=int, default=0,
                        help="also measure server RSS around this many tasks "
                             "(the issue's target is 500,000; 0 skips it)")
    parser.add_argument("--rss-only", action="store_true",
                        help="only the RSS measurement (no wake-ups, no claim latency)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 100 wake-ups, depth 20,000, 500 claims")
    parser.add_argument("--output", type=Path, default=None,
                        help="default: benchmarks/results/latency.txt (latency-quick.txt "
                             "with --quick)")
    args = parser.parse_args(argv)
    args.output = args.output or RESULTS / f"latency{'-quick' if args.quick else ''}.txt"
    if args.quick:
        args.tasks, args.big, args.claims = 100, 20_000, 500
    root = Path(tempfile.mkdtemp(prefix="codeq-latency-"))
    print(f"logs and data: {root}", file=sys.stderr)
    with RedisServer.start(root / "redis") as redis:
        sections = [] if args.rss_only else latency_sections(args, redis, root)
        sections.append(rss_section(args.rss_tasks, redis, root))
        flush(redis)
    report = "\n\n".join([header("codeq latency benchmark"), *sections]) + "\n"
    publish(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
