"""Hostile input against real servers (SQLite and a password-protected Redis).

Decisions these tests pin down (docs/security.md):

- command names follow SPEC 1 exactly (``:`` is a legal inner character); anything
  else, and any task id that is not a canonical UUID, is a 400 wherever it appears
  (path, query, body), so no key a client names can open or close a Redis hash tag;
- JSON bodies are strict: duplicate keys, ``NaN``/``Infinity``, numbers beyond a
  float and lone UTF-16 surrogates are 400, because the server would otherwise keep
  one of two values or store something else than what was sent;
- ``runAt`` is an RFC 3339 string with an offset (``t``/``z`` accepted, a leap second
  ``:60`` is the instant after ``:59``), between 0001-01-02 and 9999-12-30 UTC so that
  it can be shown in every time zone; numbers and offset-less times are 400;
- a request body must start within 10 s and then keep coming at 32 KiB/s on average,
  else 408 and the connection is closed.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from codeq_static_tokens import StaticTokens

from codeq.client.signature import sign, verify_signature
from codeq.core.config import ProducerToken
from codeq.core.domain import COMMAND_PATTERN
from codeq.server.middleware import BODY_GRACE_SECONDS, HEADER_TIMEOUT_SECONDS
from codeq.server.strict_json import MAX_JSON_DEPTH
from codeq.testing.server import ServerProcess
from tests.security.conftest import (
    MAX_BODY_BYTES,
    STORE_INDEPENDENT,
    PasswordRedis,
    ProdServer,
    new_command,
    post_raw,
)

HOSTILE = ["A{b}", "{A}", "A}", "A*", "*", ":A", "A\n", "A\r\n", "\nA", "A\x00B", "A b",
           "caf\u00e9", "X" * 10_240]
HOSTILE_IDS = [*HOSTILE, str(uuid.uuid4()).upper(), str(uuid.uuid4()) + "\n",
               "{" + str(uuid.uuid4()) + "}", str(uuid.uuid4()) + "*"]


class Callers:
    def __init__(self, server: ServerProcess) -> None:
        self.producer = server.headers("producer")
        self.admin = server.headers("admin")
        self.worker = server.headers("worker", sub="hostile-worker")


@pytest.fixture(scope="module")
def who(server: ServerProcess) -> Callers:
    return Callers(server)



def refused(response: httpx.Response) -> bool:
    return response.status_code == 400 and bool(response.json().get("error"))


def item_refused(response: httpx.Response, key: str = "results") -> bool:
    """A batch answer whose only item was refused with 400."""
    return response.status_code == 200 and response.json()[key][0].get("code") == 400


# -- names and ids ----------------------------------------------------------------------
def command_calls(api: httpx.Client, who: Callers, name: str) -> dict[str, bool]:
    """Every place a command name goes in; True where it was refused as it should be."""
    path = quote(name, safe="")
    return {
        "POST /tasks": refused(api.post("/tasks", json={"command": name, "payload": 1},
                                        headers=who.producer)),
        "POST /tasks/batch": item_refused(api.post(
            "/tasks/batch", json={"tasks": [{"command": name, "payload": 1}]},
            headers=who.producer)),
        "GET /tasks?command": refused(api.get("/tasks", params={"command": name},
                                              headers=who.producer)),
        "POST /tasks/claim": refused(api.post("/tasks/claim", json={"commands": [name]},
                                              headers=who.worker)),
        "POST /tasks/claim/batch": refused(api.post(
            "/tasks/claim/batch", json={"commands": [name], "count": 2}, headers=who.worker)),
        # ``*`` is every event type there (SPEC 4), not a name.
        "POST /workers/subscriptions": name == "*" or refused(api.post(
            "/workers/subscriptions", json={"callbackUrl": "http://127.0.0.1:9/h",
                                            "eventTypes": [name]}, headers=who.worker)),
        "POST /admin/tasks/cleanup": refused(api.post("/admin/tasks/cleanup",
                                                      json={"command": name},
                                                      headers=who.admin)),
        **{f"{method} /admin/queues/{{command}}{suffix}": refused(api.request(
            method, f"/admin/queues/{path}{suffix}", headers=who.admin))
           for method, suffix in [("GET", ""), ("GET", "/dlq"), ("POST", "/dlq/redrive"),
                                  ("POST", "/pause"), ("POST", "/resume")]},
    }


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_command_names_are_refused_everywhere(api: httpx.Client, who: Callers,
                                                      name: str) -> None:
    calls = command_calls(api, who, name)
    assert all(calls.values()), [call for call, ok in calls.items() if not ok]


def id_calls(api: httpx.Client, who: Callers, task_id: str) -> dict[str, bool]:
    """Every place a task id goes in; True where it was refused as it should be."""
    path = quote(task_id, safe="")
    done = {"status": "COMPLETED", "result": 1}
    calls = {f"{method} /tasks/{{id}}{suffix}": refused(api.request(
        method, f"/tasks/{path}{suffix}", headers=headers, json=body))
        for method, suffix, headers, body in [
            ("GET", "", who.producer, None), ("GET", "/result", who.producer, None),
            ("POST", "/cancel", who.producer, None), ("POST", "/heartbeat", who.worker, {}),
            ("POST", "/abandon", who.worker, {}), ("POST", "/nack", who.worker, {}),
            ("POST", "/result", who.worker, done),
            ("GET", "/artifacts/report.txt", who.producer, None)]}
    calls["POST /tasks/batch/results"] = item_refused(api.post(
        "/tasks/batch/results", json={"results": [{"taskId": task_id, **done}]},
        headers=who.worker))
    calls["POST /admin/queues/{command}/dlq/redrive ids"] = refused(api.post(
        f"/admin/queues/{new_command()}/dlq/redrive", json={"ids": [task_id]},
        headers=who.admin))
    return calls


@pytest.mark.parametrize("task_id", HOSTILE_IDS, ids=repr)
def test_hostile_ids_are_refused_everywhere(api: httpx.Client, who: Callers,
                                            task_id: str) -> None:
    calls = id_calls(api, who, task_id)
    assert all(calls.values()), [call for call, ok in calls.items() if not ok]


@pytest.mark.parametrize("subscription_id", HOSTILE_IDS, ids=repr)
@STORE_INDEPENDENT
def test_hostile_subscription_ids_are_refused(api: httpx.Client, who: Callers,
                                              subscription_id: str) -> None:
    """Subscription ids are UUIDs too: anything else is a 400, not a lookup."""
    url = f"/workers/subscriptions/{quote(subscription_id, safe='')}"
    assert refused(api.post(f"{url}/heartbeat", json={}, headers=who.worker))
    assert refused(api.delete(url, headers=who.worker))


@pytest.mark.parametrize("lease_id", ["{x}", "a\nb", "*", "x" * 10_240, ""], ids=repr)
@STORE_INDEPENDENT
def test_hostile_lease_ids_are_refused(api: httpx.Client, who: Callers, lease_id: str) -> None:
    task_id = str(uuid.uuid4())
    for action in ("heartbeat", "abandon", "nack"):
        assert refused(api.post(f"/tasks/{task_id}/{action}", json={"leaseId": lease_id},
                                headers=who.worker)), action


@STORE_INDEPENDENT
def test_hostile_artifact_names_are_refused(api: httpx.Client, who: Callers) -> None:
    task_id = str(uuid.uuid4())
    for name in ["..", "../x", "a/b", "a\\b", "a\x00b", "a\nb", "x" * 300]:
        artifact = {"name": name, "contentBase64": "eA=="}
        assert refused(api.post(f"/tasks/{task_id}/result", headers=who.worker,
                                json={"status": "COMPLETED", "result": 1,
                                      "artifacts": [artifact]})), repr(name)
        fetched = api.get(f"/tasks/{task_id}/artifacts/{quote(name, safe='')}",
                          headers=who.producer)
        if "/" in name or name == "..":
            # never reaches the route: the URL's path splits there (or the client resolves
            # ``..``), and no route matches
            assert fetched.status_code == 404, (repr(name), fetched.text)
        else:
            # refused for its name before any lookup (the task does not even exist)
            assert refused(fetched), (repr(name), fetched.text)


@STORE_INDEPENDENT
def test_control_characters_in_urls_cannot_forge_log_lines(api: httpx.Client, who: Callers,
                                                           server: ServerProcess) -> None:
    forged = f"FORGED-{uuid.uuid4().hex} INFO codeq.access all is well"
    for url in (f"/tasks/x%0A{quote(forged)}", f"/tasks?cursor=x%0D%0A{quote(forged)}",
                f"/admin/queues/A%0A{quote(forged)}"):
        assert refused(api.get(url, headers=who.producer)), url
    lines = server.logs().splitlines()
    assert not any(line.startswith("FORGED-") for line in lines)
    assert sum(forged in line for line in lines) >= 2  # logged, escaped, on the access lines


_KEY = re.compile(r"codeq:(?:[a-z:]+|\{(?P<tag>[^{}]+)\}:[a-z]+(?::[0-9a-f-]{36})?)")


def test_redis_keys_stay_in_their_patterns(redis_server: ServerProcess,
                                           redis_store: PasswordRedis) -> None:
    """After hostile and legal-but-odd names (``a:b``, ``x.y-z``), every key in the store
    is one of codeq's and every hash tag is a valid command or a slot tag."""
    who = Callers(redis_server)
    with httpx.Client(base_url=redis_server.api_url, timeout=30.0) as api:
        for name in HOSTILE:
            command_calls(api, who, name)
        for name in ("a:b", "t:x", "x.y-z", "A:{b}"):
            api.post("/tasks", json={"command": name, "payload": 1,
                                     "idempotencyKey": "{k}:*\u00e9"}, headers=who.producer)
        keys = redis_store.keys()
    assert keys, "the flow above created keys"
    bad = []
    for key in keys:
        match = _KEY.fullmatch(key)
        tag = match and match["tag"]
        if not match or (tag and not (COMMAND_PATTERN.fullmatch(tag)
                                      or re.fullmatch(r"@\w+", tag))):
            bad.append(key)
    assert not bad
    assert "codeq:{a:b}:all" in keys and not any("{A:{b}" in key for key in keys)


# -- JSON bodies ------------------------------------------------------------------------
def count_tasks(api: httpx.Client, who: Callers, command: str) -> int:
    listed = api.get("/tasks", params={"command": command}, headers=who.producer)
    assert listed.status_code == 200, listed.text
    return len(listed.json()["tasks"])


@pytest.mark.parametrize("body,words", [
    (b'{"command": "%s", "command": "OTHER", "payload": 1}', "duplicate key 'command'"),
    (b'{"command": "%s", "payload": {"a": 1, "a": 2}}', "duplicate key 'a'"),
    (b'{"command": "%s", "payload": [{"k": 1, "k": 1}]}', "duplicate key 'k'"),
    (b'{"command": "%s", "payload": NaN}', "NaN"),
    (b'{"command": "%s", "payload": [Infinity]}', "Infinity"),
    (b'{"command": "%s", "payload": -Infinity}', "Infinity"),
    (b'{"command": "%s", "payload": 1e400}', "too large"),
    (b'{"command": "%s", "payload": "\\ud800"}', "surrogate"),
    (b'{"command": "%s", "payload": {"\\udfff": 1}}', "surrogate"),
    (b'{"command": "%s", "payload": 1, "idempotencyKey": "a\\udc00"}', "surrogate"),
], ids=["dup-top", "dup-payload", "dup-nested", "nan", "infinity", "-infinity", "1e400",
        "lone-high", "lone-low-key", "surrogate-key"])
@pytest.mark.parametrize("compact", [False, True], ids=["spaced", "compact"])
@STORE_INDEPENDENT
def test_json_that_would_change_meaning_is_refused(api: httpx.Client, who: Callers,
                                                   body: bytes, words: str,
                                                   compact: bool) -> None:
    """Spaced, the strict parser reads these; compact (as clients send), orjson reads
    them first and only what it writes back unchanged skips the strict parser."""
    command = new_command()
    if compact:
        body = body.replace(b": ", b":").replace(b", ", b",")
    response = post_raw(api, who.producer, body % command.encode())
    assert refused(response) and words in response.json()["error"], response.text
    assert count_tasks(api, who, command) == 0


def test_json_edge_values_that_are_fine_are_kept(api: httpx.Client, who: Callers) -> None:
    command = new_command()
    raw = (b'{"command": "%s", "payload": {"pair": "\\ud83d\\ude00", "slash": "\\\\ud800", '
           b'"big": 123456789012345678901234567890, "small": -1e-300, "max": 1.7976931348623157e308}}'
           % command.encode())
    created = post_raw(api, who.producer, raw)
    assert created.status_code == 202, created.text
    assert created.json()["payload"] == {"pair": "\U0001F600", "slash": "\\ud800",
                                         "big": 123456789012345678901234567890,
                                         "small": -1e-300, "max": 1.7976931348623157e308}


@STORE_INDEPENDENT
def test_deeply_nested_json_is_refused(api: httpx.Client, who: Callers) -> None:
    for depth in (10_000, 100_000):
        body = b'{"command": "A", "payload": ' + b"[" * depth + b"]" * depth + b"}"
        response = post_raw(api, who.producer, body)
        assert response.status_code in (400, 413), response.text
        assert response.status_code == (413 if len(body) > MAX_BODY_BYTES else 400)
    nested_objects = b'{"command": "A", "payload": ' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001
    assert refused(post_raw(api, who.producer, nested_objects))


def nested_body(command: str, depth: int, key: str = "payload") -> bytes:
    value = b"[" * depth + b"1" + b"]" * depth
    return b'{"command": "%s", "%s": %s}' % (command.encode(), key.encode(), value)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 960, 2_000])
def test_nesting_deeper_than_the_limit_is_refused_before_anything_is_stored(
        api: httpx.Client, who: Callers, depth: int) -> None:
    """Refused at the door, whatever depth: at about 960 levels a store could write the
    task and then fail to answer it (a 500, and a retry would make a second task)."""
    command = new_command()
    response = post_raw(api, who.producer, nested_body(command, depth - 1))
    assert refused(response) and "nested deeper than" in response.json()["error"], response.text
    assert count_tasks(api, who, command) == 0


def test_nesting_at_the_limit_is_kept_through_a_whole_cycle(api: httpx.Client,
                                                             who: Callers) -> None:
    """``MAX_JSON_DEPTH`` levels (the body object is one of them) in, and back out of every
    answer: the create, a read, the claim, the result."""
    command = new_command()
    created = post_raw(api, who.producer, nested_body(command, MAX_JSON_DEPTH - 1))
    assert created.status_code == 202, created.text
    task_id = created.json()["id"]
    assert api.get(f"/tasks/{task_id}", headers=who.producer).status_code == 200
    claimed = api.post("/tasks/claim", json={"commands": [command]}, headers=who.worker)
    assert claimed.status_code == 200 and claimed.json()["id"] == task_id
    result = b'{"status": "COMPLETED", "result": %s}' % (
        b"[" * (MAX_JSON_DEPTH - 1) + b"1" + b"]" * (MAX_JSON_DEPTH - 1))
    finished = post_raw(api, who.worker, result, path=f"/tasks/{task_id}/result")
    assert finished.status_code == 200, finished.text
    stored = api.get(f"/tasks/{task_id}/result", headers=who.producer)
    assert stored.status_code == 200, stored.text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
@STORE_INDEPENDENT
def test_json_in_utf16_or_utf32_is_refused(api: httpx.Client, who: Callers,
                                           encoding: str) -> None:
    """Python reads them too, but the lone-surrogate check reads UTF-8 bytes: UTF-16 let
    ``\\ud800`` through to the store."""
    command = new_command()
    body = ('{"command": "' + command + '", "payload": "\\ud800"}').encode(encoding)
    response = post_raw(api, who.producer, body)
    assert refused(response) and "UTF-8" in response.json()["error"], response.text
    assert count_tasks(api, who, command) == 0


@STORE_INDEPENDENT
def test_huge_bodies_are_413(api: httpx.Client, who: Callers) -> None:
    big = {"command": new_command(), "payload": "x" * (MAX_BODY_BYTES + 1)}
    response = api.post("/tasks", json=big, headers=who.producer)
    assert response.status_code == 413 and "maxBodyBytes" in response.json()["error"]
    response = api.post("/tasks/batch", headers=who.producer, json={
        "tasks": [{"command": "A", "payload": "y" * 1000}] * 300})
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml",
                                          "application/jsonx", "text/json"])
@STORE_INDEPENDENT
def test_bodies_not_sent_as_json_are_refused(api: httpx.Client, who: Callers,
                                             content_type: str | None) -> None:
    command = new_command()
    body = b'{"command": "%s", "payload": 1}' % command.encode()
    response = post_raw(api, who.producer, body, content_type=content_type)
    assert refused(response), response.text
    assert "Content-Type: application/json" in response.json()["error"]
    assert refused(post_raw(api, who.worker, b'{"commands": ["X"]}', "/tasks/claim",
                            content_type))
    assert count_tasks(api, who, command) == 0


# -- unicode round trip --------------------------------------------------------------------
TEXTS = ["caf\u00e9", "cafe\u0301", "\U0001F600\u200d\U0001F4BB", "\u202eevil\u202c",
         "\ufeffbom", "line\u2028sep", "nul\u0000inside", "\u4e2d\u6587", "tab\tand\nnewline"]


def test_unicode_round_trips_byte_identical(api: httpx.Client, who: Callers) -> None:
    """Every string a client hands in comes back as the same code points (no normalisation,
    no escaping differences): payload keys and values, idempotency key, webhook, reason,
    result, error, artifact names."""
    command = new_command()
    payload = {text: [text, {"nested": text}] for text in TEXTS}
    key_text = "cl\u00e9-\U0001F511-\u0645\u0641\u062a\u0627\u062d"
    created = api.post("/tasks", headers=who.producer, json={
        "command": command, "payload": payload, "idempotencyKey": key_text,
        "webhook": "http://127.0.0.1:9/h\u00e9?q=\u4e2d", "maxAttempts": 3})
    assert created.status_code == 202, created.text
    task = created.json()
    assert task["payload"] == payload and task["idempotencyKey"] == key_text
    again = api.post("/tasks", headers=who.producer, json={
        "command": command, "payload": payload, "idempotencyKey": key_text})
    assert again.status_code == 202 and again.json()["id"] == task["id"]

    worker = who.worker
    claimed = api.post("/tasks/claim", json={"commands": [command]}, headers=worker).json()
    assert claimed["payload"] == payload
    reason = "\u26a0 " + " ".join(TEXTS)
    assert api.post(f"/tasks/{task['id']}/nack", json={"delaySeconds": 0, "reason": reason},
                    headers=worker).status_code == 200
    claimed = api.post("/tasks/claim", json={"commands": [command]}, headers=worker).json()
    name = "r\u00e9sum\u00e9 \U0001F4C4.txt"
    content = "\u4e2d\U0001F600".encode()
    finished = api.post(f"/tasks/{task['id']}/result", headers=worker, json={
        "status": "FAILED", "error": reason, "result": payload,
        "artifacts": [{"name": name, "contentBase64": base64.b64encode(content).decode(),
                       "contentType": "text/plain; charset=utf-8"}]})
    assert finished.status_code == 200, finished.text

    stored = api.get(f"/tasks/{task['id']}", params={"history": "true"},
                     headers=who.producer).json()
    assert stored["payload"] == payload and stored["webhook"] == task["webhook"]
    assert any(entry.get("reason") == reason for entry in stored["history"])
    result = api.get(f"/tasks/{task['id']}/result", headers=who.producer).json()["result"]
    assert result["error"] == reason and result["result"] == payload
    assert [a["name"] for a in result["artifacts"]] == [name]
    fetched = api.get(f"/tasks/{task['id']}/artifacts/{quote(name, safe='')}",
                      headers=who.producer)
    assert fetched.status_code == 200 and fetched.content == content


# -- numbers ----------------------------------------------------------------------------------
HUGE = [10 ** 30, -(10 ** 30), 1e308, -1e308, 2 ** 63, -(2 ** 63) - 1]


@pytest.mark.parametrize("field,value,status", [
    *[("priority", v, 202) for v in (-1, 10, 10 ** 30, -(10 ** 30), 2 ** 64)],  # clamped
    *[("priority", v, 400) for v in (1e308, 1.5, True, "nine")],
    *[("maxAttempts", v, 400) for v in (0, -1, 10_001, *HUGE)],
    *[("delaySeconds", v, 400) for v in (-1, -1e-9, *HUGE[::2], 10 ** 30)],
], ids=repr)
@STORE_INDEPENDENT
def test_create_numbers(api: httpx.Client, who: Callers, field: str, value: Any,
                        status: int) -> None:
    response = api.post("/tasks", headers=who.producer,
                        json={"command": new_command(), "payload": 1, field: value})
    assert response.status_code == status, response.text
    if status == 202:
        assert response.json()["priority"] == (9 if value > 0 else 0)


@pytest.mark.parametrize("path,field,value", [
    *[("/tasks/claim", "leaseSeconds", v) for v in (0, -1, -(10 ** 30), -1e308)],
    *[("/tasks/claim", "waitSeconds", v) for v in (-1, 31, 10 ** 30, 1e308, -1e308)],
    *[("/tasks/claim/batch", "count", v) for v in (0, -1, 1001, 10 ** 30, 2 ** 63, 1.5)],
    *[("/tasks/{id}/heartbeat", "extendSeconds", v) for v in (0, -1, -1e308)],
    *[("/tasks/{id}/nack", "delaySeconds", v) for v in (-1, -(10 ** 30), 10 ** 30, 1e308)],
    *[("/admin/queues/A/dlq/redrive", "limit", v) for v in (0, -1, 10 ** 30)],
    *[("/admin/tasks/cleanup", "limit", v) for v in (0, -1, 10 ** 30, 2 ** 64)],
    *[("/workers/subscriptions", "ttlSeconds", v) for v in (0, -1, 10 ** 30, 1e308)],
    *[("/workers/subscriptions", "minIntervalSeconds", v) for v in (-1, -1e308)],
], ids=repr)
@STORE_INDEPENDENT
def test_out_of_range_numbers_are_400(api: httpx.Client, who: Callers, path: str, field: str,
                                      value: Any) -> None:
    headers = who.admin if path.startswith("/admin") else who.worker
    body: dict[str, Any] = {field: value}
    if path.startswith("/workers"):
        body["callbackUrl"] = "http://127.0.0.1:9/h"
    response = api.post(path.replace("{id}", str(uuid.uuid4())), json=body, headers=headers)
    assert refused(response), response.text


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=1001", f"limit={10 ** 30}",
                                   "limit=1e3", "limit=abc", "limit="])
@STORE_INDEPENDENT
def test_out_of_range_query_numbers_are_400(api: httpx.Client, who: Callers, query: str) -> None:
    assert refused(api.get(f"/tasks?{query}", headers=who.producer))
    assert refused(api.get(f"/admin/queues/A/dlq?{query}", headers=who.admin))


def test_huge_lease_seconds_are_capped(api: httpx.Client, who: Callers) -> None:
    command = new_command()
    api.post("/tasks", json={"command": command, "payload": 1}, headers=who.producer)
    claimed = api.post("/tasks/claim", headers=who.worker,
                       json={"commands": [command], "leaseSeconds": 1e308})
    assert claimed.status_code == 200, claimed.text
    left = datetime.fromisoformat(claimed.json()["leaseUntil"]) - datetime.now(UTC)
    # capped at maxLeaseSeconds (1 h), not refused, not cut to some smaller default
    assert timedelta(hours=1, seconds=-30) <= left <= timedelta(hours=1, seconds=5), left


# -- runAt --------------------------------------------------------------------------------------
def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize("run_at,expected", [
    ("2030-12-31T23:59:60Z", datetime(2031, 1, 1, tzinfo=UTC)),  # leap second
    ("2030-06-30T15:59:60.5-08:00", datetime(2030, 7, 1, 0, 0, 0, 500_000, tzinfo=UTC)),
    ("2030-01-01T00:00:00+14:00", datetime(2029, 12, 31, 10, tzinfo=UTC)),
    ("2030-01-01T00:00:00-12:00", datetime(2030, 1, 1, 12, tzinfo=UTC)),
    ("2030-01-01t00:00:00z", datetime(2030, 1, 1, tzinfo=UTC)),
    ("2030-01-01 00:00:00Z", datetime(2030, 1, 1, tzinfo=UTC)),
    ("2030-01-01T00:00:00-00:00", datetime(2030, 1, 1, tzinfo=UTC)),
    # shown to the millisecond
    ("2030-01-01T00:00:00.123456789Z", datetime(2030, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)),
    ("0001-01-02T00:00:00Z", datetime(1, 1, 2, tzinfo=UTC)),  # long past: runs now
    ("9999-12-30T00:00:00+14:00", datetime(9999, 12, 29, 10, tzinfo=UTC)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_run_at_edge_cases_accepted(api: httpx.Client, who: Callers, run_at: str,
                                    expected: datetime) -> None:
    response = api.post("/tasks", headers=who.producer,
                        json={"command": new_command(), "payload": 1, "runAt": run_at})
    assert response.status_code == 202, response.text
    assert instant(response.json()["runAt"]) == expected


@pytest.mark.parametrize("run_at", [
    "2030-01-01T00:00:00", "2030-01-01", "2030-01-01T00:00Z", "2030-01-01T00:00:00+24:00",
    "2030-01-01T00:00:00+0100", "2030-02-30T00:00:00Z", "2030-01-01T24:00:00Z",
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-12:00", "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z",
    "+2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z\n", "yesterday", "", 1893456000,
    "1893456000",
], ids=repr)
@STORE_INDEPENDENT
def test_run_at_edge_cases_refused(api: httpx.Client, who: Callers, run_at: Any) -> None:
    response = api.post("/tasks", headers=who.producer,
                        json={"command": new_command(), "payload": 1, "runAt": run_at})
    assert refused(response), response.text
    assert refused(api.post("/admin/tasks/cleanup", json={"before": run_at},
                            headers=who.admin))


# -- slow clients ---------------------------------------------------------------------------
@dataclass
class SlowClient:
    """One raw connection that sends ``drip`` once a second after ``opening``."""

    opening: bytes
    drip: bytes
    sock: socket.socket = field(init=False)
    reply: bytes = b""
    closed_after: float | None = None

    def open(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.sock.sendall(self.opening)

    def step(self, elapsed: float) -> None:
        """Read what arrived; note when the server closed; then send the next drip."""
        if self.closed_after is not None:
            return
        try:
            while chunk := self.sock.recv(65536):
                self.reply += chunk
            self.closed_after = elapsed  # recv() == b"": the server closed
        except BlockingIOError:
            try:
                if self.drip:
                    self.sock.send(self.drip)
            except OSError:
                self.closed_after = elapsed
        except OSError:
            self.closed_after = elapsed


def test_slow_clients_are_dropped_in_bounded_time(sqlite_server: ServerProcess) -> None:
    """A body trickled at a byte a second gets 408 and a closed connection once the grace is
    over; so do headers trickled a line a second (closed), and a connection that never
    sends anything. Until then none of them blocks the server."""
    head = (f"POST /v1/codeq/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            f"{sqlite_server.token('producer')}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n")
    clients = {"slow body": SlowClient(head.encode() + b'{"command": "S", "payload": "', b"x"),
               "slow headers": SlowClient(b"GET /healthz HTTP/1.1\r\n", b"X-A: b\r\n"),
               "silent": SlowClient(b"", b"")}
    started = time.monotonic()
    for client in clients.values():
        client.open(sqlite_server.port)
    try:
        while time.monotonic() - started < BODY_GRACE_SECONDS + 8 and any(
                c.closed_after is None for c in clients.values()):
            assert httpx.get(f"{sqlite_server.base_url}/healthz").status_code == 200
            time.sleep(1)
            for client in clients.values():
                client.step(time.monotonic() - started)
    finally:
        for client in clients.values():
            client.sock.close()
    assert clients["slow body"].reply.startswith(b"HTTP/1.1 408"), clients["slow body"].reply
    for name, limit in [("slow body", BODY_GRACE_SECONDS), ("slow headers", HEADER_TIMEOUT_SECONDS),
                        ("silent", HEADER_TIMEOUT_SECONDS)]:
        closed = clients[name].closed_after
        assert closed is not None and limit - 1 <= closed <= limit + 3, (name, closed)


# -- constant-time comparisons ---------------------------------------------------------------
def compare_digest_calls(run: Callable[[], Any]) -> tuple[int, Any]:
    """How many times ``run`` calls ``hmac.compare_digest`` (seen by the profiler, so the
    code under test runs unmodified), and what it returned."""
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "c_call" and arg is hmac.compare_digest:
            calls += 1

    sys.setprofile(profile)
    try:
        returned = run()
    finally:
        sys.setprofile(None)
    return calls, returned


def finish(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The value of a coroutine that never suspends (no event loop needed)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine suspended")


def test_static_tokens_are_compared_in_constant_time() -> None:
    """Every configured token is compared, with ``hmac.compare_digest``, whether the
    candidate matches the first, the last or none of them, whatever its length."""
    tokens = StaticTokens(["first-token", "second-token-a-bit-longer",
                           ProducerToken(token="third", sub="ops", admin=True)])
    for candidate, sub in [("first-token", "static-token-1"), ("third", "ops"),
                           ("first-tokeN", None), ("", None), ("x" * 10_000, None)]:
        calls, found = compare_digest_calls(partial(finish, tokens.validate(candidate)))
        assert calls == 3
        assert (found.sub if found else None) == sub


def test_webhook_signatures_are_compared_in_constant_time() -> None:
    body = b'{"taskId": "x"}'
    good = sign("secret", 1_800_000_000, body)
    for signature in (good, "0" * 64, good[:-1] + "0"):
        calls, valid = compare_digest_calls(partial(verify_signature, "secret", 1_800_000_000,
                                                    body, signature, now=1_800_000_000))
        assert calls == 1 and valid == (signature == good)


# -- secrets never reach a log line -------------------------------------------------------------
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records what is POSTed to it (webhooks)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}/hook"

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float = 15.0
                 ) -> tuple[dict[str, str], bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for headers, body in list(self.received):
                if predicate(body):
                    return headers, body
            time.sleep(0.05)
        raise AssertionError(f"nothing matching arrived; got {self.received}")

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def test_no_secret_appears_in_any_log_line(prod_server: ProdServer, receiver: Receiver) -> None:
    """A whole flow at debug level with JSON logs: static producer token, worker JWT,
    admin token, Redis password, webhook HMAC secret, and refused near-miss tokens;
    then none of them (nor a JWT signature) is anywhere in the server's output."""
    server = prod_server.server
    worker_jwt = prod_server.worker_token(sub="log-worker", eventTypes=["LOGGED"])
    producer = {"Authorization": f"Bearer {prod_server.static_token}"}
    worker = {"Authorization": f"Bearer {worker_jwt}"}
    with httpx.Client(base_url=server.api_url, timeout=30.0) as api:
        assert api.post("/workers/subscriptions", headers=worker, json={
            "callbackUrl": receiver.url, "eventTypes": ["LOGGED"],
            "minIntervalSeconds": 0}).status_code == 200
        created = api.post("/tasks", headers=producer, json={
            "command": "LOGGED", "payload": {"n": 1}, "webhook": receiver.url,
            "idempotencyKey": "log-1"})
        assert created.status_code == 202, created.text
        task_id = created.json()["id"]
        claimed = api.post("/tasks/claim", json={"commands": ["LOGGED"]}, headers=worker)
        assert claimed.status_code == 200, claimed.text
        url = f"/tasks/{task_id}"
        assert api.post(f"{url}/heartbeat", json={}, headers=worker).status_code == 200
        assert api.post(f"{url}/nack", json={"delaySeconds": 0, "reason": "again"},
                        headers=worker).status_code == 200
        assert api.post("/tasks/claim", json={"commands": ["LOGGED"]},
                        headers=worker).status_code == 200
        assert api.post(f"{url}/result", json={"status": "COMPLETED", "result": {"ok": 1}},
                        headers=worker).status_code == 200
        assert api.get("/admin/queues", headers={
            "Authorization": f"Bearer {prod_server.admin_token}"}).status_code == 200
        near_misses = [f"Bearer {prod_server.static_token}x", f"Bearer {worker_jwt[:-2]}AA",
                       f"Basic {prod_server.static_token}",
                       f"Bearer {prod_server.static_token} {prod_server.admin_token}",
                       f"Bearer {prod_server.hmac_secret}"]
        for authorization in near_misses:
            assert api.get(url, headers={"Authorization": authorization}).status_code == 401
    headers, body = receiver.wait_for(lambda raw: task_id.encode() in raw
                                      and b"COMPLETED" in raw)
    assert verify_signature(prod_server.hmac_secret, headers["x-codeq-timestamp"], body,
                            headers["x-codeq-signature"])
    receiver.wait_for(lambda raw: b'"available"' in raw)

    logs = server.logs()
    entries = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert len(entries) > 20 and {"info", "debug"} <= {e["level"] for e in entries}
    leaked = {name: value for name, value in {**prod_server.secrets, "worker JWT": worker_jwt,
                                              "JWT signature": worker_jwt.rsplit(".", 1)[1]
                                              }.items() if value in logs}
    assert not leaked, f"secrets found in the server's log: {sorted(leaked)}"
