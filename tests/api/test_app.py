"""The app in-process, over a real memory store that can be taken down on purpose.

Faults a running server cannot be made to show on demand: an unreachable store
(503 and ``/readyz``), an unexpected exception (500 with the request id), and
background jobs that survive a store outage. Time is moved with the app's
injectable clock instead of slept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from codeq_memory import MemoryStorage
from fastapi import APIRouter

from codeq import hookimpl
from codeq.core.config import Settings, load_settings
from codeq.core.domain import Task
from codeq.core.errors import StoreUnavailable
from codeq.devkeys import mint_token
from codeq.plugins import manager
from codeq.server.app import create_app
from codeq.server.deps import Caller, Svc
from codeq.server.logging import RequestIdFilter
from codeq.server.responses import JSON


class FlakyStore(MemoryStorage):
    """The memory store, with switches: ``down`` (StoreUnavailable), ``broken`` (a bug),
    ``refused`` (a dropped connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.broken = False
        self.refused = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the store did not answer (test outage)")
        if self.refused:
            raise ConnectionRefusedError("connection refused")
        if self.broken:
            raise RuntimeError("a bug in the store")

    async def ping(self) -> None:
        self._check()
        await super().ping()

    async def create(self, task: Task, *, now: float) -> tuple[Task, bool]:
        self._check()
        return await super().create(task, now=now)

    async def promote_due(self, *, now: float, limit: int) -> list[str]:
        self._check()
        return await super().promote_due(now=now, limit=limit)


@dataclass
class Harness:
    http: httpx.AsyncClient
    store: FlakyStore
    clock: list[float]
    headers: dict[str, str]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = load_settings(environ={}, overrides={"dataDir": str(tmp_path)})
    store = FlakyStore()
    await store.open()
    clock = [1_800_000_000.0]
    application = create_app(settings, store=store, clock=lambda: clock[0])
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://codeq") as http:
            headers = {"Authorization": f"Bearer {mint_token(tmp_path, 'producer')}"}
            yield Harness(http, store, clock, headers)
    await store.close()


def task_body(**fields: Any) -> dict[str, Any]:
    return {"command": "INPROC", "payload": 1, **fields}


async def test_store_outage_is_503_and_not_ready(app: Harness) -> None:
    assert (await app.http.get("/readyz")).status_code == 200
    app.store.down = True
    ready = await app.http.get("/readyz")
    assert ready.status_code == 503 and "test outage" in ready.json()["error"]
    created = await app.http.post("/v1/codeq/tasks", json=task_body(), headers=app.headers)
    assert created.status_code == 503 and "did not answer" in created.json()["error"]
    assert (await app.http.get("/healthz")).status_code == 200
    app.store.down = False
    assert (await app.http.get("/readyz")).status_code == 200


async def test_connection_errors_are_503(app: Harness) -> None:
    app.store.refused = True
    created = await app.http.post("/v1/codeq/tasks", json=task_body(), headers=app.headers)
    assert created.status_code == 503 and "ConnectionRefusedError" in created.json()["error"]


async def test_unexpected_error_is_500_with_request_id(app: Harness,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    app.store.broken = True
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.ERROR, logger="codeq.server"):
        response = await app.http.post("/v1/codeq/tasks", json=task_body(),
                                       headers={**app.headers, "X-Request-Id": "boom-1"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error", "requestId": "boom-1"}
    assert "a bug in the store" not in response.text
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and all(getattr(r, "request_id", None) == "boom-1" for r in logged)
    assert "RuntimeError: a bug in the store" in caplog.text


async def test_promoter_survives_an_outage(app: Harness) -> None:
    created = await app.http.post("/v1/codeq/tasks", json=task_body(delaySeconds=3600),
                                  headers=app.headers)
    task_id = created.json()["id"]
    app.store.down = True
    app.clock[0] += 3600
    await asyncio.sleep(0.6)  # the promoter fails a few times meanwhile
    app.store.down = False
    for _ in range(100):
        got = await app.http.get(f"/v1/codeq/tasks/{task_id}", params={"history": "true"},
                                 headers=app.headers)
        if "promoted" in [h["event"] for h in got.json()["history"]]:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the promoter did not recover from the outage")


class GreetingPlugin:
    """A third-party plugin adding a route through the ``register_routes`` hook."""

    @hookimpl
    def register_routes(self, router: APIRouter, settings: Settings) -> None:
        @router.get("/v1/codeq/greeting")
        async def greeting(who: Caller, svc: Svc) -> JSON:
            return JSON({"hello": who.sub, "timezone": svc.settings.timezone})


async def test_plugins_add_routes(tmp_path: Path) -> None:
    plugin = GreetingPlugin()
    manager().register(plugin, name="codeq_test_greeting")
    try:
        settings = load_settings(environ={}, overrides={"dataDir": str(tmp_path),
                                                        "storage": "memory://"})
        application = create_app(settings)
    finally:
        manager().unregister(plugin)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://codeq") as http:
            token = mint_token(tmp_path, "producer", sub="alice")
            hello = await http.get("/v1/codeq/greeting",
                                   headers={"Authorization": f"Bearer {token}"})
            assert hello.json() == {"hello": "alice", "timezone": "UTC"}
            assert (await http.get("/v1/codeq/greeting")).status_code == 401
