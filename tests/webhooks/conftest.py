"""Servers and receivers for the webhook tests: real ``codeq serve`` processes, real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import httpx
import pytest

from codeq.testing.receiver import Received
from codeq.testing.server import ServerProcess

SECRET = "test-webhook-secret"


@contextmanager
def down_port() -> Iterator[int]:
    """A port where nothing listens (connections are refused), held until the block ends
    so that no other process (a server picking a free port) takes it meanwhile; start
    the receiver that will listen there after the block."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]
#: Quick retries so that backoff gaps can be measured in a second or two.
CONFIG = {"webhookHmacSecret": SECRET, "resultWebhookBaseBackoffSeconds": 0.5,
          "resultWebhookMaxBackoffSeconds": 60, "resultWebhookMaxAttempts": 5,
          "subscriptionCleanupIntervalSeconds": 0.5, "backoffPolicy": "fixed",
          "backoffBaseSeconds": 0}


class Api:
    """A server with a producer and a worker client."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self._opened: list[httpx.Client] = []
        self.producer = self.client("producer")
        self.worker = self.client("worker", sub="worker-1")

    def client(self, role: str, **token: Any) -> httpx.Client:
        http = httpx.Client(base_url=self.server.api_url,
                            headers=self.server.headers(role, **token),  # type: ignore[arg-type]
                            timeout=30)
        self._opened.append(http)
        return http

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for http in self._opened:
            http.close()

    def create(self, command: str, **body: Any) -> dict[str, Any]:
        response = self.producer.post("/tasks", json={"command": command, "payload": {"n": 1},
                                                      **body})
        assert response.status_code == 202, response.text
        return response.json()

    def finish(self, task_id: str, command: str, **result: Any) -> httpx.Response:
        claimed = self.worker.post("/tasks/claim", json={"commands": [command]})
        assert claimed.status_code == 200 and claimed.json()["id"] == task_id, claimed.text
        return self.worker.post(f"/tasks/{task_id}/result",
                                json=result or {"status": "COMPLETED", "result": {"ok": 1}})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with ServerProcess.start(tmp_path_factory.mktemp("webhooks"), config=CONFIG) as server, \
            Api(server) as api:
        yield api


@pytest.fixture
def command() -> str:
    """A command no other test uses, so queues start empty."""
    return f"W_{uuid.uuid4().hex[:12]}"


def assert_signed(request: Received) -> None:
    """The signature recomputed here, byte for byte, from the raw body."""
    headers = request.headers
    body = request.body
    timestamp = headers["x-codeq-timestamp"]
    assert timestamp.isdigit()
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["x-codeq-signature"] == expected
    assert abs(int(timestamp) - request.at) < 5
