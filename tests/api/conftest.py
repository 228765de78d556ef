"""Real ``codeq serve`` processes for the API tests: one on SQLite in a temporary
directory, one on a private ``redis-server`` (``codeq.testing.redis_server``).

Every test that uses the ``server`` fixture (or a client of it) runs once per
store. Tests share a server and keep out of each other's way with their own
command names (``command`` fixture) and worker ids.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from codeq.testing.redis_server import RedisServer
from codeq.testing.server import ServerProcess

#: Small numbers so that retries and the 413 check are quick to observe.
CONFIG = {"backoffPolicy": "fixed", "backoffBaseSeconds": 0.2, "backoffMaxSeconds": 30,
          "maxBodyBytes": 64 * 1024}

Client = Callable[..., httpx.Client]


@contextlib.contextmanager
def store_url(backend: str, directory: Path) -> Iterator[str | None]:
    """The storage URL of a server on ``backend`` (None: the SQLite file in its data dir).

    Redis is always a private server: the API server's background work (reaper,
    promoter, outbox) must not touch a store other tests use.
    """
    if backend == "sqlite":
        yield None
    else:
        with RedisServer.start(directory / "redis") as redis:
            yield redis.url


@pytest.fixture(scope="package", params=["sqlite", "redis"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp(f"server-{request.param}")
    with store_url(request.param, directory) as storage, \
            ServerProcess.start(directory / "codeq", storage=storage, config=CONFIG) as running:
        yield running


@pytest.fixture(scope="package")
def client(server: ServerProcess) -> Iterator[Client]:
    """``client(role, **token_kwargs)``: an httpx client on the API with a dev token."""
    opened: list[httpx.Client] = []

    def make(role: str | None = None, **token: Any) -> httpx.Client:
        headers = server.headers(role, **token) if role else {}  # type: ignore[arg-type]
        http = httpx.Client(base_url=server.api_url, headers=headers, timeout=40.0)
        opened.append(http)
        return http

    yield make
    for http in opened:
        http.close()


@pytest.fixture(scope="package")
def producer(client: Client) -> httpx.Client:
    return client("producer")


@pytest.fixture(scope="package")
def admin(client: Client) -> httpx.Client:
    return client("admin")


@pytest.fixture(scope="package")
def worker(client: Client) -> httpx.Client:
    return client("worker", sub="worker-1")


@pytest.fixture
def command() -> str:
    """A command name no other test uses."""
    return f"T_{uuid.uuid4().hex[:12]}"
