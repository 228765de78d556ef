"""Storage URLs to ``redis.asyncio`` clients, and Redis errors to ``StoreUnavailable``.

- ``redis://[user:password@]host:port[/db][?socket_timeout=2]``
- ``rediss://...`` (TLS)
- ``redis+cluster://[user:password@]host:port[,host:port...][?socket_timeout=2]``

Timeouts are short by default so that a frozen server turns into a 503 within
about two seconds, and redis-py's own retries are off: a script that timed
out may have run, so repeating it blindly is not safe.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    RedisSSLContext,
    SSLConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TimeoutError,
    TryAgainError,
)

from codeq.core.errors import ConfigError, StoreUnavailable
from codeq_redis import SCHEMES
from codeq_redis.wire import Endpoint, Wire

SOCKET_TIMEOUT = 2.0
CONNECT_TIMEOUT = 3.0
#: What "the store did not answer" looks like from redis-py.
UNAVAILABLE = (ConnectionError, TimeoutError, BusyLoadingError, ClusterDownError, TryAgainError,
               ReadOnlyError, OSError)
CLUSTER_SCHEME = "redis+cluster"

Client = Redis | RedisCluster
P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


def translate_errors(method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]]
                     ) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """The one place where a Redis outage becomes ``StoreUnavailable`` (HTTP 503)."""

    @functools.wraps(method)
    async def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(self, *args, **kwargs)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"the Redis store did not answer ({type(exc).__name__}: "
                                   f"{exc})") from exc
        except RedisClusterException as exc:
            # "Redis Cluster cannot be connected": no startup node answered.
            if not isinstance(exc.__cause__, UNAVAILABLE):
                raise
            raise StoreUnavailable(f"the Redis cluster did not answer ({exc})") from exc

    return cast(Callable[Concatenate[S, P], Coroutine[Any, Any, R]], wrapper)


TIMEOUT_OPTIONS = ("socket_timeout", "socket_connect_timeout")


def _seconds(name: str, text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ConfigError("storage", f"{name} must be a number of seconds above 0, not {text!r}")
    return seconds


def _database(text: str) -> None:
    """A database number as written in a URL: ASCII digits only. redis-py would read
    ``/abc`` as database 0, ``/1_0`` as 10 and ``/٣`` as 3, and ``/0/1`` as 1."""
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise ConfigError("storage", f"the database of a Redis URL is a number "
                                     f"(redis://host:port/0), not {text[:64]!r}")


def _options(query: str) -> dict[str, Any]:
    """A cluster URL's options: the timeouts, nothing else."""
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    out = {name: _seconds(name, params.pop(name)) for name in TIMEOUT_OPTIONS if name in params}
    if params:
        raise ConfigError("storage", f"unknown Redis URL option(s): {', '.join(sorted(params))}")
    return out


class _SharedContextSSLConnection(SSLConnection):
    """An ``SSLConnection`` that uses its pool's one TLS context.

    redis-py builds an ``SSLContext`` for every new connection, and
    ``ssl.create_default_context()`` parses the system CA bundle on the event
    loop (tens of milliseconds, far more on a busy machine): a burst of
    concurrent calls opening connections could stall the loop past the
    connect timeout.
    """

    def __init__(self, *, shared_ssl_context: RedisSSLContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ssl_context = shared_ssl_context


class _HiredisPacking:
    """Commands packed into the Redis protocol by hiredis, in C.

    redis-py's asyncio connections pack every argument in Python: about 50 µs
    for a script call with 30 arguments against 7 µs here, and a fifth of the
    server's CPU on a batch of creates. The bytes are the same. What hiredis
    does not take (a command name with a space in it, a ``bytearray``, a value
    redis-py refuses with its own error) goes to redis-py's packer.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0] if args else None
        if isinstance(first, str) and " " not in first:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        return super().pack_command(*args)  # type: ignore[misc]


class _PackedConnection(_HiredisPacking, Connection):
    pass


class _PackedSSLConnection(_HiredisPacking, _SharedContextSSLConnection):
    pass


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _PackedConnection,
    _SharedContextSSLConnection: _PackedSSLConnection,
}


def _tune(pool: ConnectionPool) -> None:
    """One TLS context for the pool's connections, and commands packed by hiredis."""
    if pool.connection_class is SSLConnection:
        context = SSLConnection(**pool.connection_kwargs).ssl_context  # not connected
        pool.connection_class = _SharedContextSSLConnection
        pool.connection_kwargs["shared_ssl_context"] = context
    pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)


@dataclass(frozen=True)
class Target:
    """A parsed storage URL."""

    cluster: bool
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> Target:
        scheme = url.split("://", 1)[0]
        if scheme not in SCHEMES:
            raise ConfigError("storage", f"not a Redis URL: {scheme}://...")
        if scheme != CLUSTER_SCHEME:  # redis-py reads its options; the timeouts are checked
            parts = urlsplit(url)
            for name, values in parse_qs(parts.query).items():
                if name in TIMEOUT_OPTIONS:
                    _seconds(name, values[-1])
                if name == "db":
                    _database(values[-1])
            if parts.path not in ("", "/"):
                _database(parts.path[1:])
            target = cls(cluster=False, url=url)
            target.check()
            return target
        rest = url.split("://", 1)[1]
        rest, _, query = rest.partition("?")
        rest = rest.rstrip("/")
        userinfo, _, hosts = rest.rpartition("@")
        username, _, password = userinfo.partition(":")
        nodes = []
        for item in hosts.split(","):
            host, _, port = item.strip().rpartition(":")
            if host.startswith("[") and host.endswith("]"):  # an IPv6 address: [::1]:7000
                host = host[1:-1]
            if (not host or not (port.isascii() and port.isdigit()) or len(port) > 5
                    or not 0 < int(port) <= 65535):
                raise ConfigError("storage", f"cluster node {item!r} is not host:port "
                                             "(a port 1..65535)")
            nodes.append((host, int(port)))
        return cls(cluster=True, url=url, nodes=tuple(nodes), username=unquote(username) or None,
                   password=unquote(password) or None, options=_options(query))

    def check(self) -> None:
        """Refuse a URL redis-py would only fail on when connecting (a port out of range, an
        option it does not know, a value it cannot read) with ``ConfigError``, not a traceback.
        Builds a pool and one connection object; nothing is connected."""
        try:
            pool = ConnectionPool.from_url(self.url, **self.common())
            pool.make_connection()
        except (ValueError, TypeError, RedisError) as exc:
            # redis-py's messages name the part at fault, never the password.
            raise ConfigError("storage", f"the Redis URL is not usable: {exc}") from None

    def common(self) -> dict[str, Any]:
        return {
            "decode_responses": True,
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),
            "driver_info": None,  # no CLIENT SETINFO: older KVRocks lacks it
            **self.options,
        }

    def connect(self) -> Client:
        if not self.cluster:
            client = Redis.from_url(self.url, **self.common())
            _tune(client.connection_pool)
            return client
        cluster = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in self.nodes],
                               username=self.username, password=self.password,
                               **self.common())
        # The nodes found later are made from these arguments; the first ones exist already.
        cluster.connection_kwargs["connection_class"] = _PackedConnection
        for node in cluster.nodes_manager.startup_nodes.values():
            node.connection_class = _PackedConnection
        return cluster

    def wire(self, client: Client) -> Wire | None:
        """The script calls' own connection, to the server ``client`` (made by ``connect``)
        talks to; None on a cluster, whose calls stay with redis-py."""
        if isinstance(client, RedisCluster):
            return None
        kwargs = client.connection_pool.connection_kwargs
        shared = kwargs.get("shared_ssl_context")
        return Wire(Endpoint.of(kwargs, shared.get() if shared is not None else None))

    def node_client(self, host: str, port: int) -> Redis:
        """A plain client for one cluster node (its pub/sub)."""
        client = Redis(host=host, port=port, username=self.username, password=self.password,
                       **self.common())
        _tune(client.connection_pool)
        return client
