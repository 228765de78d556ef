"""One real ``codeq serve`` for the API tests, on SQLite in a temporary directory.

Tests share the server and keep out of each other's way with their own
command names (``command`` fixture) and worker ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from codeq.testing.server import ServerProcess

#: Small numbers so that retries and the 413 check are quick to observe.
CONFIG = {"backoffPolicy": "fixed", "backoffBaseSeconds": 0.2, "backoffMaxSeconds": 30,
          "maxBodyBytes": 64 * 1024}

Client = Callable[..., httpx.Client]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess.start(tmp_path_factory.mktemp("server"), config=CONFIG) as running:
        yield running


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def producer(client: Client) -> httpx.Client:
    return client("producer")


@pytest.fixture(scope="session")
def admin(client: Client) -> httpx.Client:
    return client("admin")


@pytest.fixture(scope="session")
def worker(client: Client) -> httpx.Client:
    return client("worker", sub="worker-1")


@pytest.fixture
def command() -> str:
    """A command name no other test uses."""
    return f"T_{uuid.uuid4().hex[:12]}"
