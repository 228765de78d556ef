"""Result callbacks: signed, durable, retried with backoff, limited in attempts."""

from __future__ import annotations

import itertools

import httpx
import pytest

from codeq.testing.receiver import Receiver
from codeq.testing.server import ServerProcess
from tests.webhooks.conftest import CONFIG, Api, assert_signed, down_port

CALLBACK_FIELDS = {"taskId", "eventType", "status", "result", "error", "artifacts", "completedAt"}


def test_completed_task_calls_back_signed(api: Api, command: str) -> None:
    with Receiver.start() as receiver:
        task = api.create(command, webhook=receiver.url("/done"))
        assert api.finish(task["id"], command, status="COMPLETED",
                          result={"answer": 42}).status_code == 200
        [request] = receiver.wait_for(1, path="/done")
    assert_signed(request)
    body = request.json()
    assert set(body) == CALLBACK_FIELDS
    assert body["taskId"] == task["id"] and body["eventType"] == command
    assert body["status"] == "COMPLETED" and body["result"] == {"answer": 42}
    assert body["error"] is None and body["artifacts"] == [] and body["completedAt"]
    assert request.headers["content-type"] == "application/json"


def test_failed_and_dead_lettered_tasks_call_back(api: Api, command: str) -> None:
    with Receiver.start() as receiver:
        failed = api.create(command, webhook=receiver.url("/failed"))
        api.finish(failed["id"], command, status="FAILED", error="disk full")
        dead = api.create(command, webhook=receiver.url("/dead"), maxAttempts=1)
        claimed = api.worker.post("/tasks/claim", json={"commands": [command]}).json()
        assert claimed["id"] == dead["id"]
        nack = api.worker.post(f"/tasks/{dead['id']}/nack", json={"reason": "boom"})
        assert nack.json()["status"] == "dlq"
        [on_failure] = receiver.wait_for(1, path="/failed")
        [on_dlq] = receiver.wait_for(1, path="/dead")
    assert on_failure.json()["status"] == "FAILED" and on_failure.json()["error"] == "disk full"
    assert on_dlq.json()["status"] == "FAILED" and on_dlq.json()["error"] == "MAX_ATTEMPTS"
    assert_signed(on_dlq)


def test_retried_with_backoff_until_the_receiver_answers(api: Api, command: str) -> None:
    with Receiver.start(failures=3) as receiver:
        task = api.create(command, webhook=receiver.url())
        api.finish(task["id"], command)
        requests = receiver.wait_for(4, timeout=15)
    assert [r.status for r in requests] == [500, 500, 500, 200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    base = CONFIG["resultWebhookBaseBackoffSeconds"]
    # 0.5, 1, 2 seconds; the dispatcher looks every 0.25 s.
    for gap, expected in zip(gaps, [base, base * 2, base * 4], strict=True):
        assert expected - 0.05 <= gap <= expected + 0.6, gaps
    assert len({r.body for r in requests}) == 1, "every attempt sends the same body"


def test_gives_up_after_the_attempt_limit(tmp_path: object, command: str) -> None:
    config = {**CONFIG, "resultWebhookMaxAttempts": 3, "resultWebhookBaseBackoffSeconds": 0.2}
    with Receiver.start(failures=100) as receiver, \
            ServerProcess.start(tmp_path, config=config) as server,  \
            Api(server) as api:  # type: ignore[arg-type]
        task = api.create(command, webhook=receiver.url())
        api.finish(task["id"], command)
        receiver.wait_for(3, timeout=10)
        with pytest.raises(AssertionError):
            receiver.wait_for(4, timeout=2.0)
        assert "giving up after 3 attempts" in server.logs()


def test_survives_a_server_killed_before_delivery(tmp_path: object, command: str) -> None:
    """kill -9 right after the result is accepted, with the receiver down; restart; it arrives."""
    server: ServerProcess | None = None
    try:
        with down_port() as port:
            server = ServerProcess.launch(tmp_path, config=CONFIG)  # type: ignore[arg-type]
            with Api(server) as api:
                task = api.create(command, webhook=f"http://127.0.0.1:{port}/late")
                assert api.finish(task["id"], command).status_code == 200
            server.kill()
        with Receiver.start(port=port) as receiver:
            server = ServerProcess.launch(tmp_path, config=CONFIG,  # type: ignore[arg-type]
                                          port=server.port)
            [request] = receiver.wait_for(1, path="/late", timeout=15)
        assert request.json()["taskId"] == task["id"]
        assert_signed(request)
    finally:
        if server is not None:
            server.stop()


def test_unsigned_without_a_secret(tmp_path: object, command: str) -> None:
    config = {k: v for k, v in CONFIG.items() if k != "webhookHmacSecret"}
    with Receiver.start() as receiver, \
            ServerProcess.start(tmp_path, config=config) as server,  \
            Api(server) as api:  # type: ignore[arg-type]
        task = api.create(command, webhook=receiver.url())
        api.finish(task["id"], command)
        [request] = receiver.wait_for(1)
    assert "x-codeq-signature" not in request.headers
    assert request.json()["taskId"] == task["id"]


def test_webhook_must_be_http(api: Api, command: str) -> None:
    response = api.producer.post("/tasks", json={"command": command, "payload": {},
                                                 "webhook": "ftp://example.com/x"})
    assert response.status_code == 400 and "webhook" in response.json()["error"]
    assert isinstance(response, httpx.Response)
