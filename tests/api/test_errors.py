"""Every refusal of SPEC section 2: status code and a message that says what was wrong."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Client
from tests.api.flows import claim, create

UNKNOWN = "0000000a-0000-4000-8000-00000000000b"


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return str(body["error"])


# -- 400 -------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "words"), [
    ({"command": "has space", "payload": 1}, "command"),
    ({"command": "-leading-dash", "payload": 1}, "command"),
    ({"command": "X" * 129, "payload": 1}, "command"),
    ({"command": "OK", "payload": 1, "delay_seconds": 5}, "delay_seconds: unknown field"),
    ({"command": "OK", "payload": 1, "delaySeconds": -1}, "delaySeconds"),
    ({"command": "OK", "payload": 1, "webhook": "ftp://example.com/x"}, "webhook"),
    ({"command": "OK", "payload": 1, "runAt": "tomorrow"}, "runAt"),
    ({"command": "OK", "payload": 1, "runAt": "2030-01-01T00:00:00"}, "runAt"),
    ({"command": "OK", "payload": 1, "maxAttempts": 0}, "maxAttempts"),
    ({"command": "OK", "payload": 1, "backoff": {"policy": "nope"}}, "nope"),
    ({"payload": 1}, "command: field required"),
    ([1, 2], "JSON object"),
])
def test_bad_create_bodies(producer: httpx.Client, body: object, words: str) -> None:
    assert words in error_of(producer.post("/tasks", json=body), 400)


def test_malformed_json(producer: httpx.Client) -> None:
    response = producer.post("/tasks", content=b'{"command": "A", "payload": ',
                             headers={"Content-Type": "application/json"})
    assert "not valid JSON" in error_of(response, 400)


def test_missing_body(producer: httpx.Client) -> None:
    assert "body required" in error_of(producer.post("/tasks"), 400)


def test_bad_worker_bodies(producer: httpx.Client, worker: httpx.Client, command: str) -> None:
    task = create(producer, command, 1)
    assert claim(worker, command) is not None
    url = f"/tasks/{task['id']}"
    assert "delaySeconds" in error_of(worker.post(f"{url}/nack", json={"delaySeconds": -1}), 400)
    assert "non-empty error" in error_of(
        worker.post(f"{url}/result", json={"status": "FAILED", "error": "  "}), 400)
    assert "needs a result" in error_of(worker.post(f"{url}/result", json={"status": "COMPLETED"}),
                                        400)
    assert "status" in error_of(worker.post(f"{url}/result", json={"status": "DONE"}), 400)
    assert "waitSeconds" in error_of(
        worker.post("/tasks/claim", json={"commands": [command], "waitSeconds": 31}), 400)
    assert "count" in error_of(
        worker.post("/tasks/claim/batch", json={"commands": [command], "count": 0}), 400)
    assert "extendSeconds" in error_of(worker.post(f"{url}/heartbeat",
                                                   json={"extendSeconds": 0}), 400)


def test_bad_ids_and_queries(producer: httpx.Client, admin: httpx.Client) -> None:
    assert "task id" in error_of(producer.get("/tasks/not-a-uuid"), 400)
    assert "task id" in error_of(producer.get(f"/tasks/{UNKNOWN.upper()}"), 400)
    assert "limit" in error_of(producer.get("/tasks", params={"limit": "many"}), 400)
    assert "limit" in error_of(producer.get("/tasks", params={"limit": 0}), 400)
    assert "status" in error_of(producer.get("/tasks", params={"status": "DONE"}), 400)
    assert "cursor" in error_of(producer.get("/tasks", params={"cursor": "garbage"}), 400).lower()
    assert "command" in error_of(admin.get("/admin/queues/bad%20name"), 400)
    assert "batch" not in error_of(producer.post("/tasks/batch", json={"tasks": []}), 400)


# -- 401 -------------------------------------------------------------------------

def test_no_token(client: Client) -> None:
    anonymous = client()
    assert "Authorization" in error_of(anonymous.post("/tasks", json={"command": "A",
                                                                      "payload": 1}), 401)
    assert anonymous.get(f"/tasks/{UNKNOWN}").status_code == 401
    assert anonymous.get("/admin/queues").status_code == 401


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Basic dXNlcjpwYXNz",
                                    "Bearer"])
def test_bad_tokens(client: Client, header: str) -> None:
    response = client().get("/admin/queues", headers={"Authorization": header})
    error = error_of(response, 401)
    assert "dXNlcjpwYXNz" not in error and "garbage" not in error


def test_expired_token(client: Client) -> None:
    expired = client("producer", ttl=-3600)
    assert expired.post("/tasks", json={"command": "A", "payload": 1}).status_code == 401


# -- 403 -------------------------------------------------------------------------

def test_worker_token_on_producer_routes(worker: httpx.Client, command: str) -> None:
    assert "producer" in error_of(worker.post("/tasks", json={"command": command, "payload": 1}),
                                  403)
    assert worker.get("/tasks").status_code == 403
    assert worker.post(f"/tasks/{UNKNOWN}/cancel").status_code == 403


def test_producer_token_on_worker_routes(producer: httpx.Client, command: str) -> None:
    assert "worker" in error_of(producer.post("/tasks/claim", json={"commands": [command]}), 403)
    assert producer.post(f"/tasks/{UNKNOWN}/heartbeat").status_code == 403


def test_non_admin_on_admin_routes(producer: httpx.Client, worker: httpx.Client) -> None:
    assert "admin" in error_of(producer.get("/admin/queues"), 403)
    assert worker.post("/admin/tasks/cleanup").status_code == 403


def test_dev_mode_x_role_admin(producer: httpx.Client) -> None:
    assert producer.get("/admin/queues", headers={"X-Role": "ADMIN"}).status_code == 200


def test_missing_scope(client: Client, producer: httpx.Client, command: str) -> None:
    claim_only = client("worker", sub="scoped", scopes=["codeq:claim"])
    task = create(producer, command, 1)
    assert claim(claim_only, command) is not None
    assert "codeq:heartbeat" in error_of(claim_only.post(f"/tasks/{task['id']}/heartbeat"), 403)
    assert "codeq:result" in error_of(
        claim_only.post(f"/tasks/{task['id']}/result", json={"status": "COMPLETED", "result": 1}),
        403)
    no_claim = client("worker", sub="scoped", scopes=["codeq:result"])
    assert "codeq:claim" in error_of(no_claim.post("/tasks/claim", json={}), 403)


def test_event_types_not_allowed(client: Client, command: str) -> None:
    narrow = client("worker", sub="narrow", events=["ONLY_THIS"])
    error = error_of(narrow.post("/tasks/claim", json={"commands": [command]}), 403)
    assert command in error
    assert narrow.post("/tasks/claim", json={"commands": ["ONLY_THIS"]}).status_code == 204


def test_other_workers_task(client: Client, producer: httpx.Client, worker: httpx.Client,
                            command: str) -> None:
    task = create(producer, command, 1)
    assert claim(worker, command) is not None
    thief = client("worker", sub="thief")
    url = f"/tasks/{task['id']}"
    assert "another worker" in error_of(thief.post(f"{url}/heartbeat"), 403)
    assert thief.post(f"{url}/abandon").status_code == 403
    assert thief.post(f"{url}/nack", json={}).status_code == 403
    assert thief.post(f"{url}/result", json={"status": "COMPLETED", "result": 1}).status_code == 403


# -- 404 -------------------------------------------------------------------------

def test_unknown_task(producer: httpx.Client, worker: httpx.Client) -> None:
    assert UNKNOWN in error_of(producer.get(f"/tasks/{UNKNOWN}"), 404)
    assert producer.get(f"/tasks/{UNKNOWN}/result").status_code == 404
    assert producer.post(f"/tasks/{UNKNOWN}/cancel").status_code == 404
    assert worker.post(f"/tasks/{UNKNOWN}/heartbeat").status_code == 404
    assert worker.post(f"/tasks/{UNKNOWN}/nack", json={}).status_code == 404
    assert worker.post(f"/tasks/{UNKNOWN}/result",
                       json={"status": "COMPLETED", "result": 1}).status_code == 404


def test_result_not_ready(producer: httpx.Client, command: str) -> None:
    task = create(producer, command, 1)
    assert "PENDING" in error_of(producer.get(f"/tasks/{task['id']}/result"), 404)


# -- 409 -------------------------------------------------------------------------

def test_wrong_state(producer: httpx.Client, worker: httpx.Client, command: str) -> None:
    task = create(producer, command, 1)
    url = f"/tasks/{task['id']}"
    assert "PENDING" in error_of(worker.post(f"{url}/heartbeat"), 409)
    assert worker.post(f"{url}/abandon").status_code == 409
    assert claim(worker, command) is not None
    done = worker.post(f"{url}/result", json={"status": "COMPLETED", "result": 1})
    assert done.status_code == 200
    assert "already has a result" in error_of(
        worker.post(f"{url}/result", json={"status": "COMPLETED", "result": 2}), 409)
    assert "COMPLETED" in error_of(producer.post(f"{url}/cancel"), 409)
    assert worker.post(f"{url}/nack", json={}).status_code == 409


def test_wrong_lease_id(producer: httpx.Client, worker: httpx.Client, command: str) -> None:
    task = create(producer, command, 1)
    claimed = claim(worker, command)
    assert claimed is not None
    url = f"/tasks/{task['id']}"
    stale = {"leaseId": "not-the-lease"}
    assert "leaseId" in error_of(worker.post(f"{url}/heartbeat", json=stale), 409)
    assert worker.post(f"{url}/abandon", json=stale).status_code == 409
    assert worker.post(f"{url}/nack", json=stale).status_code == 409
    assert worker.post(f"{url}/result", json={"status": "COMPLETED", "result": 1,
                                              **stale}).status_code == 409
    assert worker.post(f"{url}/result", json={"status": "COMPLETED", "result": 1,
                                              "leaseId": claimed["leaseId"]}).status_code == 200


# -- 413 -------------------------------------------------------------------------

def test_body_over_max_body_bytes(producer: httpx.Client, command: str) -> None:
    big = {"command": command, "payload": "x" * (70 * 1024)}
    response = producer.post("/tasks", json=big)
    assert "maxBodyBytes" in error_of(response, 413)
    assert response.json()["maxBodyBytes"] == 64 * 1024


def test_chunked_body_over_max_body_bytes(producer: httpx.Client, command: str) -> None:
    def chunks() -> object:
        yield b'{"command": "' + command.encode() + b'", "payload": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    response = producer.post("/tasks", content=chunks(),  # type: ignore[arg-type]
                             headers={"Content-Type": "application/json"})
    assert "Content-Length" not in response.request.headers
    assert "maxBodyBytes" in error_of(response, 413)
    small = producer.post("/tasks", json={"command": command, "payload": "y" * 1000})
    assert small.status_code == 202
