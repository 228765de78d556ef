"""Pure ASGI middleware: request id, access log, last-resort 500, request body limit.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps the per-request cost to a couple
of function calls and leaves streaming and disconnect messages untouched.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codeq.server.logging import request_id
from codeq.server.responses import dumps

access_log = logging.getLogger("codeq.access")
error_log = logging.getLogger("codeq.server")

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def send_json(send: Send, status: int, body: dict[str, object],
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


class RequestContextMiddleware:
    """Echo (or make up) ``X-Request-Id``, log one access line, turn a crash into a 500.

    An incoming id is kept when it is short and plain (128 characters of
    ``[A-Za-z0-9._:@/+=-]``); anything else is replaced so that a client cannot
    write arbitrary text into the logs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER)
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
            error_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if status == 0:
                await send_json(send_with_id, 500, {"error": "internal error", "requestId": rid})
        finally:
            access_log.info("%s %s %s %.1fms", scope["method"], scope["path"], status or "-",
                            (time.perf_counter() - started) * 1000)
            request_id.reset(token)


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``: by ``Content-Length`` before reading,
    and by counting the bytes actually received (chunked bodies have no length)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self) -> dict[str, object]:
        return {"error": f"request body larger than maxBodyBytes ({self.max_bytes} bytes)",
                "maxBodyBytes": self.max_bytes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_json(send, 413, self._refusal(), [(b"connection", b"close")])
            return
        received = 0
        too_large = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return  # whatever the app answers to the aborted read, the answer is 413
            started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await send_json(send, 413, self._refusal(), [(b"connection", b"close")])


class BodyTooLarge(Exception):
    """Raised from ``receive`` to stop reading a body that went over the limit."""
