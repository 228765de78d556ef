"""How ``AsyncClient`` sends by default: HTTP/1.1 over kept-alive asyncio connections, with
httptools (uvicorn's C parser) reading the answers.

A worker or producer at full speed spends most of its CPU sending requests, and
every client library measured here spends more than the request itself:
httpx about ten times, aiohttp about three times what this does
(``benchmarks/client_cost.py``). The client speaks to one origin, sends no
request body but JSON, follows no redirect and asks for no compression, so what
it needs of HTTP is small: a request head and body in one write, an answer
parsed as it arrives (``Content-Length`` or chunked), connections kept for
the next request, at most ``max_connections`` of them.

It takes httpx's request arguments and returns httpx's ``Response``, and its
failures are httpx's, mapped so that the client's retry rules stay true: only a
failure before the request could leave (no connection made, none free in the
pool in time) is a ``ConnectError`` / ``ConnectTimeout`` / ``PoolTimeout``. A
failure after that (reset, disconnect, read timeout, a malformed answer) may
hide a request the server processed, so it is a ``ReadError``,
``RemoteProtocolError`` or ``ReadTimeout``. ``AsyncClient(transport=)`` sends
through httpx instead, with any httpx transport.
"""

from __future__ import annotations

import asyncio
import json as stdjson
import re
import ssl
from collections import deque
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import httpx

_NO_BODY = object()
#: What must never reach a request head from a header name or value (or, with a space,
#: from the path): it would end the line or the head early.
_UNSAFE = re.compile(r"[\r\n\0]")
_UNSAFE_TARGET = re.compile(r"[\r\n\0 ]")


def _json_body(value: Any) -> bytes:
    """The body httpx's ``json=`` sends, byte for byte."""
    return stdjson.dumps(value, ensure_ascii=False, separators=(",", ":"),
                         allow_nan=False).encode()


class _Connection(asyncio.Protocol):
    """One kept-alive connection: one request at a time, its answer parsed as it comes."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[httpx.Response] | None = None
        self.closed = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._status = 0

    # -- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed answer from the server: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None:
            self._fail(httpx.ReadError(f"the connection broke: {exc}"))
        else:
            self._fail(httpx.RemoteProtocolError("the server closed the connection without "
                                                 "a complete answer"))

    # -- httptools callbacks --------------------------------------------------
    def on_message_begin(self) -> None:
        self._headers, self._body = [], []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, self.answer = self.answer, None
        if not self.parser.should_keep_alive():
            self.close()
        if answer is not None and not answer.done():
            answer.set_result(httpx.Response(self._status, headers=self._headers,
                                             content=b"".join(self._body)))
        elif answer is None:  # an answer to no request: the stream is out of step
            self.close()

    # -- use ---------------------------------------------------------------------
    def send(self, data: bytes) -> asyncio.Future[httpx.Response]:
        assert self.transport is not None and self.answer is None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.answer

    def _fail(self, error: httpx.TransportError) -> None:
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self) -> bool:
        return not self.closed and self.answer is None and self.transport is not None \
            and not self.transport.is_closing()


class H1Sender:
    """``request(**kwargs)`` and ``aclose()`` like ``httpx.AsyncClient``, for the arguments
    ``ClientConfig.request`` builds. HTTPS verifies like httpx does."""

    def __init__(self, base_url: str, timeout: float, limits: httpx.Limits) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise httpx.UnsupportedProtocol(f"not an http(s) URL: {base_url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._authority = parts.netloc.rpartition("@")[2]
        self._prefix = parts.path.rstrip("/")
        self._default_timeout = timeout
        self._limit = limits.max_connections or 0
        self._ssl: ssl.SSLContext | None = None
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False

    # -- the pool ------------------------------------------------------------------
    async def _connection(self, seconds: float) -> _Connection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            while self._idle:
                connection = self._idle.pop()
                if connection.usable:
                    return connection
                self._open -= 1
            if not self._limit or self._open < self._limit:
                self._open += 1
                try:
                    return await self._connect(deadline - loop.time())
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            turn = loop.create_future()
            self._waiting.append(turn)
            try:
                async with asyncio.timeout_at(deadline):
                    await turn
            except TimeoutError:
                raise httpx.PoolTimeout("no connection to the server came free in "
                                        "time") from None
            finally:
                if turn in self._waiting:
                    self._waiting.remove(turn)

    async def _connect(self, seconds: float) -> _Connection:
        if self._tls and self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        try:
            async with asyncio.timeout(seconds):
                _, connection = await asyncio.get_running_loop().create_connection(
                    _Connection, self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {self._authority} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {self._authority}: {exc}") from exc
        return connection

    def _release(self, connection: _Connection) -> None:
        if connection.usable and not self._closed:
            self._idle.append(connection)
        else:
            connection.close()
            self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    # -- requests ------------------------------------------------------------------
    def _head(self, method: str, url: str, headers: Mapping[str, str],
              params: Mapping[str, Any], body: bytes | None) -> bytes:
        target = self._prefix + url  # quoted already, sent as it is
        if params:
            target += f"?{httpx.QueryParams(params)}"
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {self._authority}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if body is not None:
            lines.append(f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
        elif method not in ("GET", "HEAD", "DELETE"):
            lines.append("Content-Length: 0\r\n")
        lines.append("\r\n")
        if _UNSAFE_TARGET.search(target) or any(
                _UNSAFE.search(name) or _UNSAFE.search(value) for name, value in headers.items()):
            raise ValueError("a header or the path holds a line break, NUL or space")
        return "".join(lines).encode("latin-1")

    async def request(self, method: str, url: str, *, headers: Mapping[str, str],
                      params: Mapping[str, Any], json: Any = _NO_BODY,
                      timeout: float | None = None) -> httpx.Response:
        body = None if json is _NO_BODY else _json_body(json)
        try:
            data = self._head(method, url, headers, params, body)
        except UnicodeEncodeError as exc:
            raise ValueError(f"a header holds a character HTTP cannot carry: {exc}") from None
        seconds = self._default_timeout if timeout is None else timeout
        connection = await self._connection(seconds)
        try:
            answer = connection.send(data + body if body is not None else data)
            try:
                async with asyncio.timeout(seconds):
                    return await answer
            except TimeoutError:
                connection.close()  # the answer may still come: this connection is done
                raise httpx.ReadTimeout("the server did not answer in time") from None
        finally:
            self._release(connection)

    async def aclose(self) -> None:
        """Close the idle connections; one still answering is closed when its answer is in."""
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._open -= len(self._idle)
        self._idle.clear()
