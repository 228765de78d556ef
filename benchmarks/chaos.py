"""Chaos run: prove that every acknowledged task finishes or reaches the DLQ.

One run drives a producer, several ``codeq worker start`` processes and two
``codeq serve`` processes on one store (SQLite, or Redis with appendonly on),
and while traffic flows it

- kills -9 a worker in the middle of its tasks (and starts a new one),
- kills -9 a server process and restarts it on its port,
- restarts Redis, then freezes it with SIGSTOP for a while and thaws it
  (meanwhile the API must answer 503 quickly: no hung requests),
- sends every result callback to a receiver that is down for the first part
  of the run.

At the end it accounts for every task the server acknowledged (202): each is
COMPLETED or dead-lettered, none lost, none left running; executions beyond
one per task are counted (at-least-once allows them); every finished task's
callback arrived. It prints one table (also written to
``benchmarks/results/chaos-<store>.txt``) and exits non-zero on any loss.

    python benchmarks/chaos.py --store sqlite
    python benchmarks/chaos.py --store redis --tasks 20000 --duration 120
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from codeq.devkeys import mint_token
from codeq.testing.receiver import Receiver
from codeq.testing.redis_server import RedisServer
from codeq.testing.server import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "chaos.work"
LOG_ENV = "CODEQ_CHAOS_LOG"
SECRET = "chaos-secret"
LEASE_SECONDS = 3.0
#: Generous: a busy machine can take long to import and start a server.
START_TIMEOUT = 120.0
#: A frozen store must turn into a 503 within this many seconds.
MAX_ANSWER_SECONDS = 5.0
SERVER_CONFIG = {
    "backoffPolicy": "fixed", "backoffBaseSeconds": 0.2, "maxAttemptsDefault": 25,
    "defaultLeaseSeconds": LEASE_SECONDS, "webhookHmacSecret": SECRET,
    "resultWebhookBaseBackoffSeconds": 0.5, "resultWebhookMaxBackoffSeconds": 4,
    "resultWebhookMaxAttempts": 40, "logLevel": "warning",
}


#: Every this many tasks is a slow one: the worker killed mid-task is running one.
SLOW_EVERY = 10
SLOW_SECONDS = 2.0


def handle(job: Any) -> dict[str, Any]:
    """The workers' handler: note the execution (time, pid, id, kind), then work."""
    slow = bool(job.payload.get("slow"))
    with open(os.environ[LOG_ENV], "a") as log:
        log.write(f"{time.time():.3f} {os.getpid()} {job.id} {'slow' if slow else '-'}\n")
    time.sleep(SLOW_SECONDS if slow else random.uniform(0, 0.02))
    return {"ok": True}


def executions(log: Path) -> list[tuple[float, int, str, bool]]:
    """(time, worker pid, task id, slow) of every execution the handlers noted."""
    rows = []
    for line in log.read_text().splitlines():
        at, pid, task_id, kind = line.split()
        rows.append((float(at), int(pid), task_id, kind == "slow"))
    return rows


@dataclass
class Plan:
    store: str
    tasks: int
    duration: float  # seconds over which the tasks are created
    workers: int = 3
    freeze_seconds: float = 5.0

    def at(self, fraction: float) -> float:
        return self.duration * fraction


@dataclass
class Report:
    store: str
    acknowledged: int = 0
    completed: int = 0
    dead_lettered: int = 0
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    executions: int = 0
    duplicates: int = 0
    callbacks_missing: list[str] = field(default_factory=list)
    slowest_answer_frozen: float = 0.0
    statuses_frozen: Counter[int] = field(default_factory=Counter)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (not self.lost and not self.stuck and not self.callbacks_missing
                and self.slowest_answer_frozen <= MAX_ANSWER_SECONDS
                and self.acknowledged == self.completed + self.dead_lettered)

    def table(self) -> str:
        rows = [
            ("store", self.store),
            ("tasks acknowledged (202)", self.acknowledged),
            ("completed", self.completed),
            ("dead-lettered", self.dead_lettered),
            ("lost", len(self.lost)),
            ("stuck (not terminal at the end)", len(self.stuck)),
            ("executions", self.executions),
            ("duplicate executions (at-least-once)", self.duplicates),
            ("result callbacks missing", len(self.callbacks_missing)),
            ("slowest API answer, store frozen (s)", f"{self.slowest_answer_frozen:.2f}"),
            ("API statuses, store frozen", dict(sorted(self.statuses_frozen.items())) or "-"),
            ("run time (s)", f"{self.seconds:.0f}"),
            ("verdict", "OK: nothing lost" if self.ok else "FAILED"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        lines += ["", "chaos events:"] + [f"  {event}" for event in self.events]
        for label, ids in (("lost", self.lost), ("stuck", self.stuck),
                           ("callbacks missing", self.callbacks_missing)):
            if ids:
                lines.append(f"{label} (first 10): {', '.join(ids[:10])}")
        return "\n".join(lines)


class Rig:
    """The processes of one run and the chaos done to them."""

    def __init__(self, plan: Plan, work: Path, stack: ExitStack) -> None:
        self.plan = plan
        self.work = work
        self.stack = stack
        self.started = time.monotonic()
        self.redis = (stack.enter_context(RedisServer.start(work / "redis", appendonly=True))
                      if plan.store == "redis" else None)
        storage = self.redis.url if self.redis else f"sqlite:///{work / 'chaos.db'}"
        self.data_dir = work / "server"
        self.servers = [ServerProcess.launch(self.data_dir, storage=storage, config=SERVER_CONFIG,
                                             timeout=START_TIMEOUT) for _ in range(2)]
        stack.callback(lambda: [s.stop() for s in self.servers])
        self.log = work / "executions.log"
        self.log.touch()
        self.workers: list[subprocess.Popen[bytes]] = []
        stack.callback(self._stop_workers)
        for index in range(plan.workers):
            self.workers.append(self._worker(index))
        self.receiver_port = free_port()
        self.receiver: Receiver | None = None
        self.events: list[str] = []

    def note(self, event: str) -> None:
        self.events.append(f"{time.monotonic() - self.started:6.1f}s  {event}")

    def _worker(self, index: int) -> subprocess.Popen[bytes]:
        server = self.servers[index % len(self.servers)]
        token = mint_token(self.data_dir, "worker", sub=f"chaos-{index}", events=[COMMAND])
        errors = self.stack.enter_context((self.work / f"worker-{index}.log").open("ab"))
        return subprocess.Popen(
            [sys.executable, "-m", "codeq", "--base-url", server.base_url, "--worker-token",
             token, "worker", "start", "--events", COMMAND, "--handler",
             "benchmarks.chaos:handle", "--concurrency", "16", "--lease-seconds",
             str(LEASE_SECONDS), "--wait-seconds", "2"],
            cwd=ROOT, env={**os.environ, LOG_ENV: str(self.log)},
            stdout=subprocess.DEVNULL, stderr=errors)

    def _stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def kill_worker(self) -> None:
        """kill -9 a worker that started a slow task less than a second ago."""
        pids = {process.pid: index for index, process in enumerate(self.workers)}
        index = None
        deadline = time.monotonic() + 30
        while index is None and time.monotonic() < deadline:
            recent = [pid for at, pid, _, slow in executions(self.log)
                      if slow and at > time.time() - 1.0 and pid in pids]
            index = pids[recent[-1]] if recent else None
            time.sleep(0.05)
        if index is None:
            self.note("no worker was running a slow task; none killed")
            return
        self.workers[index].kill()
        self.workers[index].wait()
        self.note(f"kill -9 worker {index} (pid {self.workers[index].pid}) mid-task; "
                  "a new one starts")
        self.workers[index] = self._worker(index)

    def kill_server(self) -> None:
        victim = self.servers[1]
        victim.kill()
        self.note(f"kill -9 server 2 (pid {victim.pid})")
        time.sleep(1.0)
        self.servers[1] = ServerProcess.launch(self.data_dir, storage=victim.storage,
                                               config=SERVER_CONFIG, port=victim.port,
                                               timeout=START_TIMEOUT)
        self.note(f"server 2 restarted (pid {self.servers[1].pid})")

    def restart_redis(self) -> None:
        assert self.redis is not None
        self.redis.restart()
        self.note("redis restarted (appendonly)")

    def freeze_redis(self, report: Report) -> None:
        assert self.redis is not None
        self.redis.freeze()
        self.note(f"redis frozen (SIGSTOP) for {self.plan.freeze_seconds:.0f}s")
        token = mint_token(self.data_dir, "producer")
        deadline = time.monotonic() + self.plan.freeze_seconds
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = http.get(f"{self.servers[0].api_url}/admin/queues/{COMMAND}",
                                    headers={"X-Role": "ADMIN"})
                report.slowest_answer_frozen = max(report.slowest_answer_frozen,
                                                   time.monotonic() - started)
                report.statuses_frozen[response.status_code] += 1
                time.sleep(0.2)
        self.redis.thaw()
        self.note("redis thawed (SIGCONT)")

    def receiver_up(self) -> None:
        self.receiver = self.stack.enter_context(Receiver.start(port=self.receiver_port))
        self.note("callback receiver up")


def produce(rig: Rig, acknowledged: list[str], stop: threading.Event) -> None:
    """Create the plan's tasks at an even pace, round-robin over the servers; a create
    counts once the server answered 202. Failed attempts are retried."""
    token = mint_token(rig.data_dir, "producer")
    interval = rig.plan.duration / rig.plan.tasks
    webhook = f"http://127.0.0.1:{rig.receiver_port}/done"
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"}) as http:
        for index in range(rig.plan.tasks):
            due = rig.started + index * interval
            time.sleep(max(0.0, due - time.monotonic()))
            attempt = index
            while not stop.is_set():
                server = rig.servers[attempt % len(rig.servers)]
                try:
                    response = http.post(f"{server.api_url}/tasks", json={
                        "command": COMMAND, "webhook": webhook,
                        "payload": {"n": index, "slow": index % SLOW_EVERY == 0}})
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code == 202:
                    acknowledged.append(response.json()["id"])
                    break
                attempt += 1  # try the other server
                time.sleep(0.1)


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def account(rig: Rig, acknowledged: list[str], report: Report, settle: float) -> None:
    server = rig.servers[0]
    token = mint_token(rig.data_dir, "admin")
    with httpx.Client(base_url=server.api_url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as http:

        def drained() -> bool:
            stats = http.get(f"/admin/queues/{COMMAND}").json()
            return stats["ready"] + stats["delayed"] + stats["inProgress"] == 0

        wait_until(drained, settle)
        statuses: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            page = http.get("/tasks", params={"command": COMMAND, "limit": 1000,
                                              **({"cursor": cursor} if cursor else {})}).json()
            statuses.update({t["id"]: t for t in page["tasks"]})
            cursor = page["nextCursor"]
            if cursor is None:
                break
    report.acknowledged = len(set(acknowledged))
    for task_id in set(acknowledged):
        task = statuses.get(task_id)
        if task is None:
            report.lost.append(task_id)
        elif task["status"] == "COMPLETED":
            report.completed += 1
        elif task["status"] == "FAILED" and task["deadLettered"]:
            report.dead_lettered += 1
        else:
            report.stuck.append(task_id)
    runs = Counter(task_id for _, _, task_id, _ in executions(rig.log))
    report.executions = sum(runs.values())
    report.duplicates = sum(count - 1 for count in runs.values())
    finished = {task_id for task_id in set(acknowledged)
                if statuses.get(task_id, {}).get("status") in ("COMPLETED", "FAILED")}
    assert rig.receiver is not None

    def all_called_back() -> bool:
        assert rig.receiver is not None
        return finished <= {r.json()["taskId"] for r in rig.receiver.received()}

    wait_until(all_called_back, settle)
    called = {r.json()["taskId"] for r in rig.receiver.received()}
    report.callbacks_missing = sorted(finished - called)


def run(plan: Plan, *, settle: float = 90.0) -> Report:
    """One chaos run; returns its report (``report.ok`` is the verdict)."""
    report = Report(store=plan.store)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="codeq-chaos-") as tmp, ExitStack() as stack:
        rig = Rig(plan, Path(tmp), stack)
        rig.started = time.monotonic()  # the schedule runs from here, once all is up
        acknowledged: list[str] = []
        stop = threading.Event()
        producer = threading.Thread(target=produce, args=(rig, acknowledged, stop), daemon=True)
        producer.start()
        schedule: list[tuple[float, Callable[[], None]]] = [
            (plan.at(0.10), rig.kill_worker),
            (plan.at(0.25), rig.kill_server),
            (plan.at(0.55), rig.receiver_up),
        ]
        if rig.redis is not None:
            schedule += [(plan.at(0.40), rig.restart_redis),
                         (plan.at(0.60), lambda: rig.freeze_redis(report))]
        for when, action in sorted(schedule, key=lambda item: item[0]):
            time.sleep(max(0.0, rig.started + when - time.monotonic()))
            action()
        producer.join(plan.duration + 120)
        stop.set()
        account(rig, acknowledged, report, settle)
        report.events = rig.events
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=40.0,
                        help="seconds over which the tasks are created")
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args(argv)
    plan = Plan(store=args.store, tasks=args.tasks, duration=args.duration, workers=args.workers)
    report = run(plan)
    command = " ".join(["python", "benchmarks/chaos.py", *(argv or sys.argv[1:])])
    text = f"$ {command}\n\n{report.table()}\n"
    print(text)
    out = ROOT / "benchmarks" / "results" / f"chaos-{args.store}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
