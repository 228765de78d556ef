"""Python parsing pitfalls at the HTTP API, against real servers (SQLite and Redis).

Decisions these tests pin down:

- numbers in request bodies are JSON numbers: ``true``, ``"5"``, ``"1_0"`` and ``" 5 "``
  are 400 (pydantic's lax mode would read them as 1, 5, 10 and 5), and an integer field
  takes no ``2.0``; ``priority`` is clamped to 0..9 only once it is an integer;
- an RFC 3339 offset has hours 00..23 and minutes 00..59 (``+00:60`` is not ``+01:00``);
- a payload or result the server accepted (integers beyond 64 bits, deep nesting) never
  makes a later call fail: an idempotent replay, a result callback;
- an empty value is not an omitted one: ``commands: []``, ``backoff.policy: ""`` and
  ``?status=`` are 400;
- a query number is ASCII digits (``?limit=1_0``, ``? 5 ``, ``1.0`` are 400); a query
  parameter a route does not take, or one given twice, is 400;
- a webhook or callback URL's port is 1..65535 (checked in dev mode too);
- an integer longer than Python reads (4300 digits) is a 400 that says so;
- a second result that differs only as JSON (``true`` after ``1``) is a 409, not a repeat.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from codeq.testing.receiver import Receiver
from codeq.testing.server import ServerProcess
from tests.security.conftest import STORE_INDEPENDENT, new_command, post_raw

WIDE = b"123456789012345678901234567890"
DEEP = b"[" * 300 + b"]" * 300




# -- numbers -------------------------------------------------------------------------------
NOT_NUMBERS = [True, False, "5", "1_0", " 5 ", "\u0663", "nan", "inf"]


@pytest.mark.parametrize("field,value", [
    *[("priority", v) for v in (*NOT_NUMBERS, "99", "99999999999999999999999", 99.0, 5.0)],
    *[("maxAttempts", v) for v in (*NOT_NUMBERS, 3.0)],
    *[("delaySeconds", v) for v in NOT_NUMBERS],
    *[("backoff", {"baseSeconds": v}) for v in NOT_NUMBERS],
], ids=repr)
@STORE_INDEPENDENT
def test_create_refuses_what_is_not_a_json_number(api: httpx.Client, server: ServerProcess,
                                                  field: str, value: Any) -> None:
    command = new_command()
    response = api.post("/tasks", headers=server.headers("producer"),
                        json={"command": command, "payload": 1, field: value})
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    listed = api.get("/tasks", params={"command": command}, headers=server.headers("producer"))
    assert listed.json()["tasks"] == []


@pytest.mark.parametrize("path,field,value", [
    *[("/tasks/claim", "leaseSeconds", v) for v in (True, "30")],
    *[("/tasks/claim", "waitSeconds", v) for v in (True, "1")],
    *[("/tasks/claim/batch", "count", v) for v in (True, "2", 2.0)],
    *[("/tasks/{id}/heartbeat", "extendSeconds", v) for v in (True, "60")],
    *[("/tasks/{id}/nack", "delaySeconds", v) for v in (True, "0")],
    *[("/admin/queues/A/dlq/redrive", "limit", v) for v in (True, "10")],
    *[("/admin/tasks/cleanup", "limit", v) for v in (True, "10", 10.0)],
    *[("/workers/subscriptions", "ttlSeconds", v) for v in (True, "60")],
    *[("/workers/subscriptions", "minIntervalSeconds", v) for v in (False, "1")],
], ids=repr)
@STORE_INDEPENDENT
def test_other_bodies_refuse_what_is_not_a_json_number(api: httpx.Client, server: ServerProcess,
                                                       path: str, field: str, value: Any) -> None:
    headers = server.headers("admin") if path.startswith("/admin") else server.headers(
        "worker", sub="pitfall-worker")
    body: dict[str, Any] = {field: value}
    if path.startswith("/workers"):
        body["callbackUrl"] = "http://127.0.0.1:9/h"
    response = api.post(path.replace("{id}", str(uuid.uuid4())), json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]


def test_priority_is_clamped_as_an_integer(api: httpx.Client, server: ServerProcess) -> None:
    for value, expected in [(10 ** 30, 9), (-(10 ** 30), 0), (7, 7)]:
        response = api.post("/tasks", headers=server.headers("producer"),
                            json={"command": new_command(), "payload": 1, "priority": value})
        assert response.status_code == 202, response.text
        assert response.json()["priority"] == expected


# -- times ---------------------------------------------------------------------------------
@pytest.mark.parametrize("when", [
    "2030-01-01T00:00:00+00:60", "2030-01-01T00:00:00+05:99", "2030-01-01T00:00:00-23:60",
    "2030-01-01T00:00:00+24:00", "2030-01-01T00:00:00+99:00",
    "\u0662\u0660\u0663\u0660-01-01T00:00:00Z", "2030-01-01T00:00:\u0660\u0660Z",
], ids=repr)
@STORE_INDEPENDENT
def test_offsets_and_digits_outside_rfc3339_are_refused(api: httpx.Client, server: ServerProcess,
                                                        when: str) -> None:
    response = api.post("/tasks", headers=server.headers("producer"),
                        json={"command": new_command(), "payload": 1, "runAt": when})
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("runAt: must be an RFC 3339 timestamp")
    cleanup = api.post("/admin/tasks/cleanup", json={"before": when},
                       headers=server.headers("admin"))
    assert cleanup.status_code == 400, cleanup.text


def test_largest_offsets_are_kept(api: httpx.Client, server: ServerProcess) -> None:
    for when, utc in [("2030-01-01T00:00:00+23:59", "2029-12-31T00:01:00.000+00:00"),
                      ("2030-01-01T00:00:00-23:59", "2030-01-01T23:59:00.000+00:00")]:
        response = api.post("/tasks", headers=server.headers("producer"),
                            json={"command": new_command(), "payload": 1, "runAt": when})
        assert response.status_code == 202, response.text
        assert response.json()["runAt"] == utc


# -- accepted values never break a later call ------------------------------------------------
@pytest.mark.parametrize("payload", [WIDE, DEEP, b'{"k": [' + WIDE + b", " + DEEP + b"]}"],
                         ids=["wide-int", "deep", "both"])
def test_idempotent_replay_of_any_accepted_payload(api: httpx.Client, server: ServerProcess,
                                                   payload: bytes) -> None:
    producer = server.headers("producer")
    command, key = new_command(), uuid.uuid4().hex
    body = b'{"command": "%s", "idempotencyKey": "%s", "payload": %s}' % (
        command.encode(), key.encode(), payload)
    first = post_raw(api, producer, body)
    assert first.status_code == 202, first.text
    again = post_raw(api, producer, body)
    assert again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["payload"] == json.loads(payload)  # exact: ints stay ints
    other = post_raw(api, producer, b'{"command": "%s", "idempotencyKey": "%s", '
                                      b'"payload": 1}' % (command.encode(), key.encode()))
    assert other.status_code == 409, other.text
    batch = post_raw(api, producer, b'{"tasks": [%s]}' % body, "/tasks/batch")
    assert batch.status_code == 200 and batch.json()["results"][0]["task"]["id"] == \
        first.json()["id"], batch.text


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver.start() as found:
        yield found


def test_result_callbacks_carry_any_accepted_result(api: httpx.Client, server: ServerProcess,
                                                    receiver: Receiver) -> None:
    producer, worker = server.headers("producer"), server.headers("worker", sub="pitfall-cb")
    results = {"wide": WIDE, "deep": DEEP}
    ids = {}
    for name, result in results.items():
        command = new_command()
        created = api.post("/tasks", headers=producer,
                           json={"command": command, "payload": name,
                                 "webhook": receiver.url()})
        assert created.status_code == 202, created.text
        task_id = created.json()["id"]
        assert api.post("/tasks/claim", json={"commands": [command]},
                        headers=worker).status_code == 200
        done = post_raw(api, worker, b'{"status": "COMPLETED", "result": %s}' % result,
                        f"/tasks/{task_id}/result")
        assert done.status_code == 200, done.text
        ids[task_id] = result
    delivered = {r.json()["taskId"]: r.body for r in receiver.wait_for(len(ids), timeout=15)}
    assert set(delivered) == set(ids)
    for task_id, result in ids.items():
        assert b'"result":' + result in delivered[task_id]


# -- empty is not omitted --------------------------------------------------------------------
def test_an_empty_command_list_claims_nothing(api: httpx.Client, server: ServerProcess) -> None:
    command = new_command()
    created = api.post("/tasks", json={"command": command, "payload": 1},
                       headers=server.headers("producer"))
    assert created.status_code == 202
    worker = server.headers("worker", sub="pitfall-empty", events=[command])
    for path in ("/tasks/claim", "/tasks/claim/batch"):
        response = api.post(path, json={"commands": []}, headers=worker)
        assert response.status_code == 400, response.text
        assert "commands" in response.json()["error"]
    task = api.get(f"/tasks/{created.json()['id']}", headers=server.headers("producer")).json()
    assert task["status"] == "PENDING" and task["attempts"] == 0


@STORE_INDEPENDENT
def test_an_empty_backoff_policy_is_unknown(api: httpx.Client, server: ServerProcess) -> None:
    response = api.post("/tasks", headers=server.headers("producer"), json={
        "command": new_command(), "payload": 1, "backoff": {"policy": "", "baseSeconds": 5}})
    assert response.status_code == 400, response.text
    assert "unknown backoff policy ''" in response.json()["error"]


@pytest.mark.parametrize("query", ["limit=1_0", "limit=%201%20", "limit=1.0", "limit=%D9%A3",
                                   "limit=+5", "limit=%EF%BC%95"], ids=repr)
@STORE_INDEPENDENT
def test_query_limits_are_plain_digits(api: httpx.Client, server: ServerProcess,
                                       query: str) -> None:
    for path, role in [("/tasks", "producer"), ("/admin/queues/A/dlq", "admin")]:
        response = api.get(f"{path}?{query}", headers=server.headers(role))  # type: ignore[arg-type]
        assert response.status_code == 400, response.text
        assert response.json()["error"].startswith("limit: "), response.text
    assert api.get("/tasks?limit=0010", headers=server.headers("producer")).status_code == 200


@STORE_INDEPENDENT
def test_an_empty_status_filter_is_refused(api: httpx.Client, server: ServerProcess) -> None:
    response = api.get("/tasks?status=", headers=server.headers("producer"))
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("status must be one of")


@pytest.mark.parametrize("port", ["99999", "abc", "-1", "0", "+80", "1_0", "\u0663", "%38%30"],
                         ids=repr)
@STORE_INDEPENDENT
def test_webhook_ports_must_be_real_ports(api: httpx.Client, server: ServerProcess,
                                          port: str) -> None:
    """Also in dev mode, where private addresses are allowed and nothing resolves the URL:
    a port that cannot be connected to is a 400 now, not a callback failing for ever."""
    url = f"http://127.0.0.1:{port}/hook"
    created = api.post("/tasks", headers=server.headers("producer"),
                       json={"command": new_command(), "payload": 1, "webhook": url})
    assert created.status_code == 400, created.text
    assert created.json()["error"].startswith("webhook: must have no port or a port between")
    subscribed = api.post("/workers/subscriptions", json={"callbackUrl": url},
                          headers=server.headers("worker", sub="pitfall-port"))
    assert subscribed.status_code == 400, subscribed.text
    assert subscribed.json()["error"].startswith("callbackUrl: must have no port")


@STORE_INDEPENDENT
def test_integers_longer_than_python_reads_are_named(api: httpx.Client,
                                                     server: ServerProcess) -> None:
    producer = server.headers("producer")
    for digits in (b"9" * 4301, b"-" + b"9" * 5000):
        response = post_raw(api, producer, b'{"command": "%s", "payload": [%s]}' % (
            new_command().encode(), digits))
        assert response.status_code == 400, response.text
        assert "digits" in response.json()["error"], response.text
    kept = post_raw(api, producer, b'{"command": "%s", "payload": -%s}' % (
        new_command().encode(), b"9" * 4300))
    assert kept.status_code == 202 and kept.json()["payload"] == -int("9" * 4300)


@pytest.mark.parametrize("first,second", [(b"1", b"true"), (b"0", b"false"), (b"1", b"1.0"),
                                          (b"0", b"-0.0"), (b'{"a": [1]}', b'{"a": [true]}')],
                         ids=repr)
def test_a_different_result_is_not_a_repeat(api: httpx.Client, server: ServerProcess,
                                            first: bytes, second: bytes) -> None:
    """Python's ``==`` takes 1, 1.0 and true for one another; the stored result is not what
    the second submission sent, so that one is a 409, not a 200 with the first record."""
    command = new_command()
    worker = server.headers("worker", sub="pitfall-repeat")
    created = api.post("/tasks", json={"command": command, "payload": 1},
                       headers=server.headers("producer")).json()
    assert api.post("/tasks/claim", json={"commands": [command]},
                    headers=worker).status_code == 200
    path = f"/tasks/{created['id']}/result"
    body = b'{"status": "COMPLETED", "result": %s}'
    assert post_raw(api, worker, body % first, path).status_code == 200
    assert post_raw(api, worker, body % first, path).status_code == 200  # a true repeat
    again = post_raw(api, worker, body % second, path)
    assert again.status_code == 409, again.text
    batch = post_raw(api, worker, b'{"results": [{"taskId": "%s", "status": "COMPLETED", '
                     b'"result": %s}]}' % (created["id"].encode(), second),
                     "/tasks/batch/results")
    assert batch.json()["results"][0]["code"] == 409, batch.text
    stored = api.get(f"{path}", headers=worker).json()["result"]["result"]
    assert json.dumps(stored) == json.dumps(json.loads(first))


@pytest.mark.parametrize("path,query,words", [
    ("/tasks", "stauts=FAILED", "unknown query parameter 'stauts'"),
    ("/tasks", "status=FAILED&status=PENDING", "'status' is given more than once"),
    ("/tasks", "limit=5&limit=6", "'limit' is given more than once"),
    ("/tasks/{id}", "histroy=true", "unknown query parameter 'histroy'"),
    ("/admin/queues/A/dlq", "command=A", "unknown query parameter 'command'"),
    ("/admin/queues", "limit=5", "this route takes: none"),
], ids=repr)
@STORE_INDEPENDENT
def test_unknown_or_repeated_query_parameters_are_refused(api: httpx.Client,
                                                          server: ServerProcess, path: str,
                                                          query: str, words: str) -> None:
    """The query's counterpart of the bodies' unknown-field rule: a typo'd filter would
    otherwise list every task."""
    response = api.get(f"{path.replace('{id}', str(uuid.uuid4()))}?{query}",
                       headers=server.headers("admin"))
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]
    assert api.get("/tasks?status=FAILED&limit=5&command=A",
                   headers=server.headers("admin")).status_code == 200
