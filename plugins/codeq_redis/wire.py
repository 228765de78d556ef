"""``Wire``: one pipelined connection for the store's script calls on a single server.

redis-py's asyncio client spends about 100 µs of CPU on a script call beyond the
socket's own cost (a pooled connection taken and given back, a timeout context
and a parser round per reply, its retry and observability wrappers); on a
pipeline of 500 calls it reads each reply on its own. A create, a claim and a
result are each such a call, so this was the largest single item in the
server's CPU per request.

A ``Wire`` keeps one connection and writes every call as soon as it is made.
Calls from concurrent requests share the connection: Redis answers in order,
so each reply goes to the oldest waiting call. hiredis packs the commands and
parses the replies (the same bytes and values as redis-py with hiredis;
error replies become redis-py's exceptions, ``NoScriptError`` among them).

A call that times out gives up waiting, but its place in line stays, so the
reply that comes late is dropped and later replies still find their callers.
A lost connection fails every waiting call with redis-py's ``ConnectionError``
and the next call connects again. Pub/sub, blocking and cluster traffic stay
on redis-py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError, RedisError
from redis.exceptions import TimeoutError as RedisTimeout

Command = tuple[str | int, ...]
_pack = cast(Callable[[Command], bytes], hiredis.pack_command)  # its stub takes one item


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: what redis-py read from the storage URL."""

    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl_context: ssl.SSLContext | None = None
    timeout: float | None = None
    connect_timeout: float | None = None

    @classmethod
    def of(cls, kwargs: dict[str, Any], ssl_context: ssl.SSLContext | None) -> Endpoint:
        """From a redis-py pool's ``connection_kwargs``."""
        return cls(host=kwargs.get("host", "localhost"), port=int(kwargs.get("port", 6379)),
                   db=int(kwargs.get("db") or 0), username=kwargs.get("username"),
                   password=kwargs.get("password"), ssl_context=ssl_context,
                   timeout=kwargs.get("socket_timeout"),
                   connect_timeout=kwargs.get("socket_connect_timeout"))

    def handshake(self) -> list[Command]:
        """What a new connection sends before any call: AUTH, SELECT."""
        out: list[Command] = []
        if self.password is not None:
            out.append(("AUTH", self.username, self.password) if self.username
                       else ("AUTH", self.password))
        if self.db:
            out.append(("SELECT", self.db))
        return out


class _Waiting:
    """Replies owed to one call, in order."""

    __slots__ = ("future", "left", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.left = count
        self.replies: list[Any] = []


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=BaseParser.parse_error, encoding="utf-8")
        self.waiting: deque[_Waiting] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting, gets = self.waiting, self.reader.gets
        while True:
            try:
                reply = gets()
            except hiredis.ProtocolError as exc:
                self._fail(ConnectionError(f"Redis sent something that is not RESP: {exc}"))
                return
            if reply is False:
                return
            if not waiting:  # nobody asked: the stream is out of step
                self._fail(ConnectionError("Redis sent a reply no call was waiting for"))
                return
            head = waiting[0]
            head.replies.append(reply)
            head.left -= 1
            if head.left == 0:
                waiting.popleft()
                if not head.future.done():
                    head.future.set_result(head.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the connection to Redis was lost ({exc or 'closed'})"))

    def _fail(self, error: ConnectionError) -> None:
        self.lost = error
        while self.waiting:
            future = self.waiting.popleft().future
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self) -> bool:
        return self.lost is None and self.transport is not None and \
            not self.transport.is_closing()


class Wire:
    """Script calls (and any other non-blocking command) over one shared connection."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and protocol.usable:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is None or not self._protocol.usable:
                self._protocol = await self._connect()
            return self._protocol

    async def _connect(self) -> _Protocol:
        e = self.endpoint
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(e.connect_timeout):
                _, protocol = await loop.create_connection(
                    _Protocol, e.host, e.port, ssl=e.ssl_context,
                    server_hostname=e.host if e.ssl_context is not None else None)
        except TimeoutError as exc:
            raise RedisTimeout(f"connecting to Redis at {e.host}:{e.port} timed out") from exc
        except OSError as exc:
            raise ConnectionError(f"cannot connect to Redis at {e.host}:{e.port}: {exc}") from exc
        handshake = e.handshake()
        if handshake:
            for reply in await self._send(protocol, handshake):
                if isinstance(reply, RedisError):  # a refused password is no ResponseError
                    protocol.transport.close()  # type: ignore[union-attr]
                    raise reply
        return protocol

    async def _send(self, protocol: _Protocol, commands: Sequence[Command]) -> list[Any]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        protocol.waiting.append(_Waiting(future, len(commands)))
        assert protocol.transport is not None
        protocol.transport.write(b"".join([_pack(c) for c in commands]))
        try:
            # On a timeout the future is cancelled, not removed: its reply, when it comes,
            # is dropped in turn.
            async with asyncio.timeout(self.endpoint.timeout):
                return await future
        except TimeoutError:
            raise RedisTimeout("Redis did not answer in time") from None

    async def call(self, *command: str | int) -> Any:
        """One command's reply; an error reply is raised."""
        (reply,) = await self._send(await self._connected(), [command])
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def pipeline(self, commands: Sequence[Command]) -> list[Any]:
        """Replies in order, in one write and one wait; error replies are returned."""
        if not commands:
            return []
        return await self._send(await self._connected(), commands)

    # The two calls ``codeq_redis.scripts.Scripts`` makes, as redis-py's client spells them.
    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: str) -> Any:
        return await self.call("EVALSHA", sha, numkeys, *keys_and_args)

    async def script_load(self, source: str) -> str:
        return str(await self.call("SCRIPT", "LOAD", source))

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
