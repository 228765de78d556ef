"""Log lines: the request id on each, JSON or text, and never a token."""

from __future__ import annotations

import logging

import orjson

from codeq.server.logging import JsonFormatter, RequestIdFilter, TextFormatter, request_id

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3MSJ9.c2lnbmF0dXJl"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("codeq.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    RequestIdFilter().filter(made)
    return made


def test_json_lines_carry_the_request_id_and_extras() -> None:
    token = request_id.set("req-7")
    try:
        line = JsonFormatter().format(record("lease expired %s", "x", taskId="t-1"))
    finally:
        request_id.reset(token)
    entry = orjson.loads(line)
    assert entry["requestId"] == "req-7" and entry["taskId"] == "t-1"
    assert entry["message"] == "lease expired x" and entry["level"] == "info"


def test_text_lines_outside_a_request() -> None:
    line = TextFormatter().format(record("started", port=8080))
    assert "[-] started port=8080" in line


def test_tokens_are_redacted() -> None:
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record("header was Bearer abc.def and %s", JWT))
        assert "abc.def" not in line and JWT not in line and "[redacted]" in line


def test_tokens_are_redacted_in_any_case_and_without_a_scheme() -> None:
    for message, secret in (("auth BEARER s3cr3t-value", "s3cr3t-value"),
                            ("auth bEaReR s3cr3t-value", "s3cr3t-value"),
                            (f"token={JWT} seen", JWT)):
        line = TextFormatter().format(record(message))
        assert secret not in line and "[redacted]" in line, line


def test_a_line_without_a_token_is_left_as_it_is() -> None:
    line = TextFormatter().format(record("POST /v1/codeq/tasks 202 1.0ms (eye, bear)"))
    assert line.endswith("POST /v1/codeq/tasks 202 1.0ms (eye, bear)")


def test_text_extras_keep_the_order_they_were_given_in() -> None:
    line = TextFormatter().format(record("done", zeta=1, alpha=2, middle=3))
    assert line.endswith("done zeta=1 alpha=2 middle=3")
