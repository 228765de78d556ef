"""The busiest routes answer the same on their fast path as through the framework.

Every request here is sent twice, to the app and to a second app on the same store
built without ``HotRoutes`` (the framework's path alone), and both answers compared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from codeq_memory import MemoryStorage
from fastapi import FastAPI

from codeq.core.auth import Principal
from codeq.core.config import load_settings
from codeq.core.errors import CodeqError, StoreUnavailable
from codeq.devkeys import mint_token
from codeq.server.app import create_app
from codeq.server.deps import principal
from codeq.server.hot_routes import HotRoutes

API = "/v1/codeq"
#: Fields that differ between two tasks created the same way (and every time: ``…At``).
VARYING = {"id", "leaseId", "leaseUntil", "taskId"}


class SwitchableStore(MemoryStorage):
    down = False

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise StoreUnavailable("the store did not answer (test outage)")
        return await super().create(*args, **kwargs)


@dataclass
class App:
    application: FastAPI
    http: httpx.AsyncClient
    framework_app: FastAPI  # the same app without HotRoutes
    framework: httpx.AsyncClient
    store: SwitchableStore
    producer: dict[str, str]
    worker: dict[str, str]

    async def both(self, path: str, json: Any = None, headers: dict[str, str] | None = None,
                   content: bytes | None = None) -> tuple[httpx.Response, httpx.Response]:
        """The same POST on the fast path and through the framework."""
        answers = []
        for http in (self.http, self.framework):
            answers.append(await http.post(API + path, json=json, content=content,
                                           headers=headers))
        return answers[0], answers[1]

    async def leased(self, command: str = "HOT") -> dict[str, Any]:
        created = await self.http.post(API + "/tasks", json={"command": command, "payload": 1},
                                       headers=self.producer)
        assert created.status_code == 202
        claimed = await self.http.post(API + "/tasks/claim", json={"commands": [command]},
                                       headers=self.worker)
        assert claimed.status_code == 200
        return dict(claimed.json())


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    settings = load_settings(environ={}, overrides={"dataDir": str(tmp_path)})
    store = SwitchableStore()
    await store.open()
    application = create_app(settings, store=store)
    framework_app = create_app(settings, store=store)
    framework_app.user_middleware = [m for m in framework_app.user_middleware
                                     if m.cls is not HotRoutes]
    async with application.router.lifespan_context(application), \
            framework_app.router.lifespan_context(framework_app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=application),
                              base_url="http://codeq") as http, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=framework_app),
                              base_url="http://codeq") as framework:
        yield App(application, http, framework_app, framework, store,
                  {"Authorization": f"Bearer {mint_token(tmp_path, 'producer')}"},
                  {"Authorization": f"Bearer {mint_token(tmp_path, 'worker')}"})
    await store.close()


def same(fast: httpx.Response, framework: httpx.Response) -> None:
    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "<varies>" if k in VARYING or k.endswith("At") else shape(v)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [shape(v) for v in value]
        return value

    assert fast.status_code == framework.status_code
    assert fast.headers.get("content-type") == framework.headers.get("content-type")
    body = (lambda r: shape(r.json()) if r.content else None)
    assert body(fast) == body(framework)


def test_the_fast_path_serves_the_busiest_routes() -> None:
    paths = {(hot.pattern.pattern, hot.route.endpoint.__name__)
             for hot in HotRoutes(lambda *a: None, API).routes}
    assert paths == {
        ("^/v1/codeq/tasks$", "create_task"), ("^/v1/codeq/tasks/batch$", "create_tasks"),
        ("^/v1/codeq/tasks/claim$", "claim"), ("^/v1/codeq/tasks/claim/batch$", "claim_batch"),
        ("^/v1/codeq/tasks/(?P<task_id>[^/]+)/result$", "submit_result"),
        ("^/v1/codeq/tasks/batch/results$", "submit_results"),
        ("^/v1/codeq/tasks/(?P<task_id>[^/]+)/heartbeat$", "heartbeat")}


async def test_a_plain_request_skips_the_frameworks_dependencies(app: App) -> None:
    async def no_framework() -> Principal:
        raise CodeqError("the framework's dependencies ran")

    for application in (app.application, app.framework_app):
        application.dependency_overrides[principal] = no_framework
    fast, framework = await app.both("/tasks", {"command": "HOT", "payload": 1}, app.producer)
    assert fast.status_code == 202
    assert framework.status_code == 500 and "dependencies ran" in framework.text


async def test_creates_answer_alike(app: App) -> None:
    fast, framework = await app.both("/tasks", {"command": "HOT", "payload": {"n": 1},
                                                "priority": 7}, app.producer)
    assert fast.status_code == 202 and fast.json()["priority"] == 7
    same(fast, framework)
    same(*await app.both("/tasks/batch", {"tasks": [{"command": "HOT"}, {"command": "no spaces"}]},
                         app.producer))
    same(*await app.both("/tasks", {"command": "HOT", "payload": 1}, app.worker))  # 403


async def test_claims_answer_alike(app: App) -> None:
    empty = await app.both("/tasks/claim", {"commands": ["NONE"]}, app.worker)
    assert empty[0].status_code == 204
    same(*empty)
    same(*await app.both("/tasks/claim", None, app.worker))  # no body: every command
    same(*await app.both("/tasks/claim/batch", {"count": 3, "commands": ["NONE"]}, app.worker))
    same(*await app.both("/tasks/claim", {"commands": ["HOT"]}, app.producer))  # 403
    for _ in range(2):
        await app.http.post(API + "/tasks", json={"command": "HOT", "payload": 2},
                            headers=app.producer)
    fast, framework = await app.both("/tasks/claim", {"commands": ["HOT"]}, app.worker)
    assert fast.status_code == 200 and fast.json()["leaseId"]
    same(fast, framework)


async def test_results_and_heartbeats_answer_alike(app: App) -> None:
    first, second = await app.leased(), await app.leased()
    beat = await app.both(f"/tasks/{first['id']}/heartbeat", {"leaseId": first["leaseId"]},
                          app.worker)
    assert beat[0].status_code == 200
    same(*beat)
    fast = await app.http.post(f"{API}/tasks/{first['id']}/result",
                               json={"status": "COMPLETED", "result": {"ok": 1},
                                     "leaseId": first["leaseId"]}, headers=app.worker)
    framework = await app.framework.post(f"{API}/tasks/{second['id']}/result",
                                    json={"status": "COMPLETED", "result": {"ok": 1},
                                          "leaseId": second["leaseId"]}, headers=app.worker)
    assert fast.status_code == 200 and fast.json()["result"] == {"ok": 1}
    same(fast, framework)
    unknown = "01a22800-0000-8000-8000-000000000000"
    same(*await app.both(f"/tasks/{unknown}/result", {"status": "COMPLETED"}, app.worker))
    same(*await app.both(f"/tasks/{first['id']}/result",  # another submission: 409
                         {"status": "FAILED", "error": "late", "leaseId": first["leaseId"]},
                         app.worker))
    same(*await app.both("/tasks/not-an-id/heartbeat", {}, app.worker))
    same(*await app.both("/tasks/batch/results", {"results": [
        {"taskId": unknown, "status": "COMPLETED"},
        {"taskId": second["id"], "status": "COMPLETED", "result": {"ok": 1},
         "leaseId": second["leaseId"]}]}, app.worker))


async def test_refusals_read_the_same(app: App) -> None:
    same(*await app.both("/tasks", {"command": "HOT"}))  # no token: 401
    bad = {"Authorization": "Bearer not-a-token"}
    same(*await app.both("/tasks", {"command": "HOT"}, bad))
    invalid = await app.both("/tasks", {"command": "HOT", "priority": 12}, app.producer)
    assert invalid[0].status_code == 400
    same(*invalid)
    same(*await app.both("/tasks", None, app.producer))  # no body
    same(*await app.both("/tasks", [1, 2], app.producer))  # not an object
    same(*await app.both("/tasks", content=b"command=HOT",
                         headers={**app.producer, "Content-Type": "text/plain"}))
    app.store.down = True
    outage = await app.both("/tasks", {"command": "HOT", "payload": 1}, app.producer)
    assert outage[0].status_code == 503
    same(*outage)
