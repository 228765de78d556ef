"""Pure ASGI middleware: request id, access log, last-resort 500, request body checks;
and the HTTP protocol ``codeq serve`` hands uvicorn, which times request headers.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps the per-request cost to a couple
of function calls and leaves streaming and disconnect messages untouched.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from codeq.core.jsontext import dumps
from codeq.server import strict_json
from codeq.server.logging import request_id

access_log = logging.getLogger("codeq.access")
error_log = logging.getLogger("codeq.server")

REQUEST_ID_HEADER = b"x-request-id"
#: A connection must deliver a request's line and headers this long after it opens or
#: after the request's first byte (uvicorn itself waits for ever).
HEADER_TIMEOUT_SECONDS = 10.0
#: A request body may take this long to start arriving...
BODY_GRACE_SECONDS = 10.0
#: ...and must then keep coming at this average rate (bytes per second).
BODY_MIN_BYTES_PER_SECOND = 32 * 1024
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")


def loggable(text: str) -> str:
    """``text`` with control characters escaped (``\\x0a``), so it stays on one log line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for an app after the body was read: the body, then what comes next (a
    disconnect, which long polls watch for)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def send_json(send: Send, status: int, body: dict[str, object],
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


#: ``observe(scope, status, seconds)``, once per finished request (status 0: no answer sent).
RequestObserver = Callable[[Scope, int, float], None]


class RequestContextMiddleware:
    """Echo (or make up) ``X-Request-Id``, log one access line, turn a crash into a 500,
    and tell ``observe`` (the request metrics) how each request ended.

    An incoming id is kept when it is short and plain (128 characters of
    ``[A-Za-z0-9._:@/+=-]``); anything else is replaced so that a client cannot
    write arbitrary text into the logs.
    """

    def __init__(self, app: ASGIApp, observe: RequestObserver | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header(scope, REQUEST_ID_HEADER)
        rid = (incoming.decode() if incoming and _VALID_REQUEST_ID.match(incoming)
               else uuid.uuid4().hex)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (REQUEST_ID_HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # noqa: BLE001 - the last resort: log it, answer 500
            error_log.exception("unhandled error on %s %s", scope["method"],
                                loggable(scope["path"]))
            if status == 0:
                await send_json(send_with_id, 500, {"error": "internal error", "requestId": rid})
        finally:
            elapsed = time.perf_counter() - started
            access_log.info("%s %s %s %.1fms", scope["method"], loggable(scope["path"]),
                            status or "-",
                            elapsed * 1000)
            if self.observe is not None:
                self.observe(scope, status, elapsed)
            request_id.reset(token)


class BodyLimitMiddleware:
    """What a request's URL and body may be, checked before the app sees them.

    - no control characters in the path or the query (400): no name or id codeq
      knows contains one, and a newline must not reach a store key or a log line;
    - at most ``max_bytes`` (413): by ``Content-Length`` before reading, and by
      counting the bytes actually received (chunked bodies have no length);
    - sent in time (408, connection closed): after ``grace_seconds`` the body
      must keep arriving at ``min_bytes_per_second`` on average, so a client
      trickling a byte every few seconds (slow loris) is dropped within a bounded
      time while a large upload on a fair line still gets through;
    - when declared JSON, strict JSON (400, ``codeq.server.strict_json``): no duplicate
      keys, no ``NaN`` or ``Infinity``, no number too large for a float, no integer
      longer than Python reads (4300 digits), no lone UTF-16 surrogate, no nesting
      deeper than ``MAX_JSON_DEPTH``, and UTF-8 only (RFC 8259).
      The app would otherwise keep one of two values, or store something else
      than what was sent; nothing a client hands in is silently changed.

    The body is read once here and replayed to the app, followed by whatever the
    client sends next (a disconnect, which long polls watch for). Its value, when the
    check read it, goes along in the scope (``strict_json.PARSED_BODY``) for the hot
    routes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, *, grace_seconds: float = BODY_GRACE_SECONDS,
                 min_bytes_per_second: float = BODY_MIN_BYTES_PER_SECOND) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.grace_seconds = grace_seconds
        self.min_bytes_per_second = min_bytes_per_second

    def _too_large(self) -> dict[str, object]:
        return {"error": f"request body larger than maxBodyBytes ({self.max_bytes} bytes)",
                "maxBodyBytes": self.max_bytes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _CONTROL.search(scope["path"]) or _CONTROL_BYTES.search(
                unquote_to_bytes(scope["query_string"])):
            await send_json(send, 400, {"error": "the URL holds control characters (newline, "
                                                 "NUL ...); no codeq name or id contains any"})
            return
        close = [(b"connection", b"close")]
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_json(send, 413, self._too_large(), close)
            return
        try:
            body = await self._read(receive)
        except BodyTooLarge:
            await send_json(send, 413, self._too_large(), close)
            return
        except BodyTimeout:
            await send_json(send, 408, {"error": "request body not received in time"}, close)
            return
        except ClientGone:
            return
        if body and _is_json(scope):
            checked = strict_json.check(body)
            if checked.problem:
                await send_json(send, 400, {"error": f"request body refused: {checked.problem}"})
                return
            if checked.read:
                scope[strict_json.PARSED_BODY] = checked.value
        await self.app(scope, replaying(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        loop = asyncio.get_running_loop()
        started = loop.time()
        chunks: list[bytes] = []
        received = 0
        while True:
            allowed = self.grace_seconds + received / self.min_bytes_per_second
            try:
                async with asyncio.timeout_at(started + allowed):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout() from None
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                raise BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _is_json(scope: Scope) -> bool:
    """Whether the body is declared JSON the way the app reads it (``application/*json``)."""
    value = header(scope, b"content-type")
    if value is None:
        return False
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/")
                                             and media.endswith(b"+json"))


class BodyTooLarge(Exception):
    """The body went over ``maxBodyBytes`` while it was read."""


class BodyTimeout(Exception):
    """The body did not arrive in the time it was allowed."""


class ClientGone(Exception):
    """The client disconnected before its body was complete."""


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request line and headers do
    not arrive within ``HEADER_TIMEOUT_SECONDS`` (a slow loris on headers, or a connection
    opened and never used). Idle keep-alive connections keep uvicorn's own timeout; bodies
    are timed by ``BodyLimitMiddleware``."""

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._await_headers()

    def on_headers_complete(self) -> None:
        self._headers_arrived()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._headers_arrived()
        self._header_deadline = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._too_slow)

    def _headers_arrived(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
