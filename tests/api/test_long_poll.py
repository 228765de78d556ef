"""Long-polling claims: woken by the store, bounded by waitSeconds, stopped by a disconnect."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from typing import Any

import httpx
import orjson

from codeq.testing.server import ServerProcess
from tests.api.flows import claim, create, get


def test_waiting_claim_returns_within_100ms_of_a_create(producer: httpx.Client,
                                                         worker: httpx.Client,
                                                         command: str) -> None:
    got: dict[str, Any] = {}

    def wait() -> None:
        got["task"] = claim(worker, command, waitSeconds=10)
        got["at"] = time.perf_counter()

    waiting = threading.Thread(target=wait)
    waiting.start()
    time.sleep(0.5)  # the claim is parked by now
    assert "task" not in got
    task = create(producer, command, "wake up")
    created_at = time.perf_counter()
    waiting.join(5)
    assert got["task"] is not None and got["task"]["id"] == task["id"]
    assert got["at"] - created_at < 0.1, f"claim returned {got['at'] - created_at:.3f}s late"


def test_waiting_claim_gives_up_after_wait_seconds(worker: httpx.Client, command: str) -> None:
    started = time.perf_counter()
    response = worker.post("/tasks/claim", json={"commands": [command], "waitSeconds": 0.5})
    elapsed = time.perf_counter() - started
    assert response.status_code == 204 and response.content == b""
    # not a moment longer than asked: well under the 1 s fallback recheck of a waiting claim
    assert 0.45 <= elapsed < 0.9, f"{elapsed:.3f}s"


def test_batch_claim_waits_too(producer: httpx.Client, worker: httpx.Client,
                               command: str) -> None:
    timer = threading.Timer(0.3, lambda: create(producer, command, "late"))
    timer.start()
    response = worker.post("/tasks/claim/batch",
                           json={"commands": [command], "count": 3, "waitSeconds": 5})
    timer.join()
    assert [t["payload"] for t in response.json()["tasks"]] == ["late"]


def test_resume_wakes_a_waiting_claim(producer: httpx.Client, worker: httpx.Client,
                                      admin: httpx.Client, command: str) -> None:
    admin.post(f"/admin/queues/{command}/pause")
    create(producer, command, "held")
    timer = threading.Timer(0.3, lambda: admin.post(f"/admin/queues/{command}/resume"))
    started = time.perf_counter()
    timer.start()
    task = claim(worker, command, waitSeconds=5)
    timer.join()
    assert task is not None and task["payload"] == "held"
    # woken by the resume (at 0.3 s), not found by the 1 s fallback recheck
    assert time.perf_counter() - started < 0.8


def test_a_disconnected_claim_stops_waiting(server: ServerProcess, producer: httpx.Client,
                                            command: str) -> None:
    body = orjson.dumps({"commands": [command], "waitSeconds": 10})
    token = server.token("worker", sub="gone-worker")
    rid = f"gone-{uuid.uuid4().hex}"
    request = (f"POST /v1/codeq/tasks/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
               f"X-Request-Id: {rid}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        time.sleep(0.3)  # parked
    deadline = time.monotonic() + 5  # well before its 10 s are up, the claim ends
    while f"[{rid}] POST /v1/codeq/tasks/claim" not in server.logs():
        assert time.monotonic() < deadline, "the claim kept waiting for a client that left"
        time.sleep(0.05)
    task = create(producer, command, "for someone else")
    time.sleep(0.3)
    assert get(producer, task["id"])["status"] == "PENDING"
