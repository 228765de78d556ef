"""Where the contract suite gets a fresh, empty store for each storage backend.

``PROVIDERS`` maps a URL scheme, as registered through the
``register_storage_backends`` hook, to an async context manager factory:
given a temporary directory that belongs to one test, it yields the URL of a
store that is empty and used by nobody else, and cleans up afterwards. The
contract suite refuses to run when a registered scheme has no provider, so a
new backend cannot slip in untested.

A backend that needs a server (Redis, ...) starts one here or points at one
and yields a URL that isolates the test (a fresh database, a unique prefix).
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator, Callable

from codeq.testing import redis_server

Provider = Callable[[pathlib.Path], contextlib.AbstractAsyncContextManager[str]]


@contextlib.asynccontextmanager
async def memory(tmp: pathlib.Path) -> AsyncIterator[str]:
    """Every ``memory://`` store opened is a new one."""
    yield "memory://"


@contextlib.asynccontextmanager
async def sqlite(tmp: pathlib.Path) -> AsyncIterator[str]:
    """A new database file in the test's own directory."""
    yield f"sqlite:///{tmp}/codeq.db"


PROVIDERS: dict[str, Provider] = {
    "memory": memory,
    "sqlite": sqlite,
    # Redis: shared private servers (codeq.testing.redis_server), emptied for each test.
    "redis": redis_server.provider("redis"),
    "rediss": redis_server.provider("rediss"),
    "redis+cluster": redis_server.provider("redis+cluster"),
}
