"""The SDK without a server: request bodies, error mapping, the retry rules."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import httpx
import pytest

from codeq import ApiError, Client, Conflict, ConnectionFailed, NotFound, ServiceUnavailable
from codeq.client import calls
from codeq.client.errors import ServerError, error_for
from codeq.client.http import ClientConfig, _should_retry


def test_bodies_are_camel_case_and_leave_unset_fields_out() -> None:
    call = calls.create_task("RESIZE", {"w": 1}, priority=3, max_attempts=2,
                             idempotency_key="k", delay_seconds=5,
                             run_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert call.body == {"command": "RESIZE", "payload": {"w": 1}, "priority": 3,
                         "maxAttempts": 2, "idempotencyKey": "k", "delaySeconds": 5,
                         "runAt": "2030-01-01T00:00:00+00:00"}
    assert calls.create_task("X").body == {"command": "X", "payload": None}
    assert calls.nack("t", delay_seconds=0).body == {"delaySeconds": 0}
    assert calls.submit_result("t", "COMPLETED", result=None).body == {
        "status": "COMPLETED", "result": None}
    assert "result" not in calls.submit_result("t", "FAILED", error="e").body
    with pytest.raises(ValueError, match="aware"):
        calls.create_task("X", run_at=datetime(2030, 1, 1))


def test_routes_pick_their_token() -> None:
    config = ClientConfig(producer_token="P", worker_token="W", admin=True)
    claim = config.request(calls.claim(["A"], wait_seconds=20), "rid")
    assert claim["headers"]["Authorization"] == "Bearer W"
    assert claim["url"] == "/v1/codeq/tasks/claim" and claim["timeout"] >= 35
    admin = config.request(calls.list_queues(), "rid")
    assert admin["headers"]["Authorization"] == "Bearer P" and admin["headers"]["X-Role"] == "ADMIN"
    assert "X-Role" not in config.request(calls.create_task("A"), "rid")["headers"]
    health = config.request(calls.healthz(), "rid")
    assert health["url"] == "/healthz" and "Authorization" not in health["headers"]
    assert ClientConfig(token="T").request(calls.heartbeat("t"), "r")["headers"][
        "Authorization"] == "Bearer T"


def test_error_answers_become_typed_errors_with_the_server_message() -> None:
    error = error_for(409, {"error": "task is COMPLETED", "taskId": "t"}, "req-1")
    assert isinstance(error, Conflict) and error.status == 409
    assert error.message == "task is COMPLETED" and error.body["taskId"] == "t"
    assert str(error) == "task is COMPLETED (HTTP 409)" and error.request_id == "req-1"
    assert isinstance(error_for(404, {}, None), NotFound)
    odd = error_for(502, "not json", None)
    assert isinstance(odd, ServerError) and odd.status == 502


def test_retry_rules_keep_claims_from_being_repeated_after_they_were_sent() -> None:
    refused = ConnectionFailed("refused")
    refused.__cause__ = httpx.ConnectError("refused")
    reset = ConnectionFailed("reset")
    reset.__cause__ = httpx.ReadError("reset")
    unavailable = ServiceUnavailable("store down", status=503)
    claim, get = calls.claim(), calls.get_task("t")
    assert _should_retry(claim, refused)  # never reached the server
    assert not _should_retry(claim, reset) and not _should_retry(claim, unavailable)
    assert _should_retry(get, reset) and _should_retry(get, unavailable)
    assert not _should_retry(get, NotFound("no", status=404))
    assert _should_retry(calls.submit_result("t", "COMPLETED", result=1), reset)
    assert not _should_retry(calls.create_task("A"), reset)
    assert _should_retry(calls.create_task("A", idempotency_key="k"), reset)


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting the requests it was asked to send."""

    sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


def test_a_refused_connection_is_retried_then_reported() -> None:
    transport = CountingTransport()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        client = Client(f"http://127.0.0.1:{port}", "T", retries=2, retry_backoff=0.05,
                        transport=transport)
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}") as info:
            client.get_task("t")
        client.close()
    assert isinstance(info.value, ApiError) and info.value.status is None
    assert transport.sent == 3  # the first attempt and the two retries
    assert time.monotonic() - started < 5
