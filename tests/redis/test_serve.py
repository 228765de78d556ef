"""Two ``codeq serve`` processes on one Redis, talked to over HTTP."""

from __future__ import annotations

import pathlib
import statistics
import threading
import time

import httpx

from codeq.testing.redis_server import RedisServer
from codeq.testing.server import ServerProcess

WAKE_WITHIN = 0.050


def test_a_long_poll_on_one_server_wakes_on_a_create_on_the_other(
        tmp_path: pathlib.Path, redis_server: RedisServer) -> None:
    with ServerProcess.start(tmp_path / "a", storage=redis_server.url) as a, \
            ServerProcess.start(tmp_path / "b", storage=redis_server.url) as b, \
            httpx.Client(base_url=a.api_url, headers=a.headers("worker", sub="w1"),
                         timeout=30) as worker, \
            httpx.Client(base_url=b.api_url, headers=b.headers("producer"),
                         timeout=30) as producer:
        # Warm both servers up (connections, token checks) before timing anything.
        assert producer.post("/tasks", json={"command": "serve.warm", "payload": 0}
                             ).status_code == 202
        assert worker.post("/tasks/claim", json={"commands": ["serve.warm"]}).status_code == 200
        latencies = []
        for i in range(5):
            command = f"serve.wake{i}"
            answered: dict[str, object] = {}

            def long_poll(command: str = command, answered: dict[str, object] = answered
                          ) -> None:
                response = worker.post("/tasks/claim",
                                       json={"commands": [command], "waitSeconds": 20})
                answered["at"] = time.perf_counter()
                answered["response"] = response

            poller = threading.Thread(target=long_poll)
            poller.start()
            time.sleep(0.5)  # the claim is waiting on server A by now
            sent = time.perf_counter()
            created = producer.post("/tasks", json={"command": command, "payload": {"i": i}})
            assert created.status_code == 202, created.text
            poller.join(25)
            response = answered["response"]
            assert isinstance(response, httpx.Response) and response.status_code == 200
            assert response.json()["id"] == created.json()["id"]
            at = answered["at"]
            assert isinstance(at, float)
            latencies.append(at - sent)
        # From sending the create to B until the claim answered on A, HTTP included.
        assert statistics.median(latencies) < WAKE_WITHIN, latencies
        assert max(latencies) < 2 * WAKE_WITHIN, latencies
