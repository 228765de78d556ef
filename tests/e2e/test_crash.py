"""kill -9 the server mid-traffic, start it again on the same SQLite file, check the books.

Producers record every task whose create was acknowledged (202); workers claim
and finish, nack or abandon concurrently. After the crash every acknowledged
task must exist, in a state that agrees with its command's queue depths, and
tasks that were running must come back through lease expiry.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from codeq.testing.server import ServerProcess

COMMANDS = ("CRASH_A", "CRASH_B")
CONFIG = {"backoffPolicy": "fixed", "backoffBaseSeconds": 0.2, "maxAttemptsDefault": 3}
LEASE_SECONDS = 3.0
MIN_ACKED = 200  # kill once this many creates were acknowledged ...
MAX_TRAFFIC_SECONDS = 15.0  # ... or after this long on a slow machine
MAX_TASKS = 3000


class Traffic:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.acked: set[str] = set()
        self.kept: set[str] = set()  # claimed and never answered
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.created = itertools.count()

    def produce(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.server.api_url, headers=self.server.headers("producer"),
                          timeout=5) as http:
            while not self.stop.is_set() and next(self.created) < MAX_TASKS:
                body = {"command": rng.choice(COMMANDS), "payload": {"n": rng.random()},
                        "priority": rng.randint(0, 9)}
                if rng.random() < 0.1:
                    body["delaySeconds"] = 0.3
                try:
                    response = http.post("/tasks", json=body)
                except httpx.TransportError:
                    return
                if response.status_code == 202:
                    with self.lock:
                        self.acked.add(response.json()["id"])

    def work(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.server.api_url, timeout=5,
                          headers=self.server.headers("worker", sub=f"crash-{seed}")) as http:
            while not self.stop.is_set():
                try:
                    claimed = http.post("/tasks/claim/batch", json={
                        "commands": list(COMMANDS), "count": 5, "leaseSeconds": LEASE_SECONDS,
                        "waitSeconds": 0.2}).json()["tasks"]
                    for task in claimed:
                        url, roll = f"/tasks/{task['id']}", rng.random()
                        lease = {"leaseId": task["leaseId"]}
                        if roll < 0.6:
                            http.post(f"{url}/result", json={"status": "COMPLETED",
                                                             "result": task["payload"], **lease})
                        elif roll < 0.8:
                            http.post(f"{url}/nack", json={"delaySeconds": 0, **lease})
                        elif roll < 0.9:
                            http.post(f"{url}/abandon", json=lease)
                        else:  # keep it running: only the lease expiry can move it on
                            with self.lock:
                                self.kept.add(task["id"])
                except (httpx.TransportError, ValueError):
                    return


def all_tasks(http: httpx.Client, command: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = http.get("/tasks", params={"command": command, "limit": 1000,
                                          **({"cursor": cursor} if cursor else {})}).json()
        tasks += page["tasks"]
        cursor = page["nextCursor"]
        if cursor is None:
            return tasks


def check_books(http: httpx.Client, *, results: bool = False) -> dict[str, dict[str, Any]]:
    """Every task's state agrees with itself and with its command's queue depths.

    The reaper may move tasks while we read, so the depths are compared with a
    listing only when they were the same before and after it.
    """
    found: dict[str, dict[str, Any]] = {}
    for command in COMMANDS:
        for _ in range(20):
            before = http.get(f"/admin/queues/{command}").json()
            tasks = all_tasks(http, command)
            stats = http.get(f"/admin/queues/{command}").json()
            if stats == before:
                break
        else:
            raise AssertionError(f"{command}: queue depths never held still")
        found.update((t["id"], t) for t in tasks)
        states = Counter(t["status"] for t in tasks)
        assert stats["ready"] + stats["delayed"] == states["PENDING"], (stats, states)
        assert stats["inProgress"] == states["IN_PROGRESS"], (stats, states)
        assert stats["dlq"] == sum(t["deadLettered"] for t in tasks), stats
        for task in tasks:
            assert task["status"] in {"PENDING", "IN_PROGRESS", "COMPLETED", "FAILED"}, task
            if task["status"] in ("PENDING", "IN_PROGRESS"):  # finished tasks keep their worker
                assert (task["workerId"] is not None) == (task["status"] == "IN_PROGRESS"), task
            assert (task["leaseUntil"] is not None) == (task["status"] == "IN_PROGRESS"), task
            if task["deadLettered"]:  # (abandons do not count, so attempts may pass max)
                assert task["status"] == "FAILED" and task["error"] == "MAX_ATTEMPTS", task
                assert task["attempts"] >= task["maxAttempts"], task
            if results and task["status"] == "COMPLETED":
                assert http.get(f"/tasks/{task['id']}/result").json()["result"]["result"] \
                    == task["payload"]
    return found


def test_acknowledged_tasks_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    server = ServerProcess.launch(data_dir, config=CONFIG)
    try:
        traffic = Traffic(server)
        threads = [threading.Thread(target=traffic.produce, args=(i,)) for i in range(3)]
        threads += [threading.Thread(target=traffic.work, args=(100 + i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + MAX_TRAFFIC_SECONDS
        while len(traffic.acked) < MIN_ACKED and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # mid-traffic: requests are in flight
        traffic.stop.set()
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        server.stop()
    assert len(traffic.acked) >= 50, "too little traffic to mean anything"

    with ServerProcess.start(data_dir, config=CONFIG) as again, \
            httpx.Client(base_url=again.api_url, headers=again.headers("admin"),
                         timeout=10) as http:
        found = check_books(http)
        assert traffic.acked <= set(found), f"lost {len(traffic.acked - set(found))} tasks"

        deadline = time.monotonic() + 15  # leases were 3 s: the reaper must requeue them
        while any(http.get(f"/admin/queues/{c}").json()["inProgress"] for c in COMMANDS):
            assert time.monotonic() < deadline, "running tasks were never reaped"
            time.sleep(0.2)
        found = check_books(http, results=True)

        for task_id in traffic.kept:
            history = http.get(f"/tasks/{task_id}", params={"history": "true"}).json()["history"]
            assert "lease_expired" in [h["event"] for h in history], history

        worker = again.headers("worker", sub="after-crash")
        for _ in range(100):  # everything left can still be finished
            batch = http.post("/tasks/claim/batch", headers=worker, json={
                "commands": list(COMMANDS), "count": 1000, "waitSeconds": 0.5}).json()["tasks"]
            if not batch:
                break
            answers = http.post("/tasks/batch/results", headers=worker, json={"results": [
                {"taskId": t["id"], "status": "COMPLETED", "result": t["payload"]}
                for t in batch]}).json()["results"]
            assert all("result" in a for a in answers), answers
        final = check_books(http)
        assert {t["status"] for t in final.values()} <= {"COMPLETED", "FAILED"}
