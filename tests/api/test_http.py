"""The HTTP surface around the routes: request ids, logs, health, docs, unknown routes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from codeq.testing.server import ServerProcess
from tests.api.flows import claim, create, get


def test_request_id_is_echoed_and_logged(server: ServerProcess, producer: httpx.Client,
                                         command: str) -> None:
    response = producer.post("/tasks", json={"command": command, "payload": 1},
                             headers={"X-Request-Id": "req-42.abc"})
    assert response.headers["x-request-id"] == "req-42.abc"
    deadline = time.monotonic() + 5
    while "[req-42.abc] POST /v1/codeq/tasks 202" not in server.logs():
        assert time.monotonic() < deadline, server.logs()[-2000:]
        time.sleep(0.05)


def test_request_id_is_generated_when_absent_or_unfit(producer: httpx.Client) -> None:
    generated = [producer.get("/tasks", params={"limit": 1}).headers["x-request-id"]
                 for _ in range(2)]
    for bad in ("has space", "x" * 200, "semi;colon"):
        replaced = producer.get("/tasks", headers={"X-Request-Id": bad}).headers["x-request-id"]
        assert replaced != bad
        generated.append(replaced)
    assert all(len(rid) == 32 for rid in generated), generated
    assert len(set(generated)) == len(generated), f"request ids repeat: {generated}"


def test_tokens_never_reach_the_log(server: ServerProcess, producer: httpx.Client) -> None:
    producer.get("/tasks", params={"limit": 1})
    token = producer.headers["authorization"].split()[1]
    assert token not in server.logs()


def test_health_and_readiness(server: ServerProcess) -> None:
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


def test_openapi_and_docs(server: ServerProcess) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/codeq/tasks", "/v1/codeq/tasks/claim", "/v1/codeq/tasks/{task_id}/nack",
                 "/v1/codeq/admin/queues/{command}/dlq/redrive", "/readyz"):
        assert path in paths, path
    assert "CreateTask" in str(paths["/v1/codeq/tasks"]["post"]["requestBody"])
    docs = httpx.get(f"{server.base_url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_unknown_route_and_wrong_method(server: ServerProcess) -> None:
    missing = httpx.get(f"{server.api_url}/nowhere")
    assert missing.status_code == 404 and missing.json() == {
        "error": "no route GET /v1/codeq/nowhere"}
    wrong = httpx.delete(f"{server.api_url}/tasks")
    assert wrong.status_code == 405 and "DELETE" in wrong.json()["error"]


def test_cleanup_route(producer: httpx.Client, worker: httpx.Client, admin: httpx.Client,
                       command: str) -> None:
    """Cleanup removes the terminal tasks of the command it names whose retention ended
    before ``before``, and nothing else: not a pending task, not another command's."""
    response = admin.post("/admin/tasks/cleanup", json={"limit": 10})
    assert response.status_code == 200
    body = response.json()
    assert body["limit"] == 10 and body["deleted"] >= 0 and body["before"].endswith("+00:00")

    other = command + "_keep"
    done, kept = create(producer, command, "done"), create(producer, other, "kept")
    for task, name in ((done, command), (kept, other)):
        assert claim(worker, name) is not None
        assert worker.post(f"/tasks/{task['id']}/result",
                           json={"status": "COMPLETED", "result": 1}).status_code == 200
    pending = create(producer, command, "pending")
    # retentionSeconds (one day) has ended for a task finished now, two days from now
    before = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = admin.post("/admin/tasks/cleanup", json={"command": command, "before": before})
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] == 1
    assert producer.get(f"/tasks/{done['id']}").status_code == 404
    assert producer.get(f"/tasks/{done['id']}/result").status_code == 404
    assert get(producer, pending["id"])["status"] == "PENDING"
    assert get(producer, kept["id"])["status"] == "COMPLETED"
