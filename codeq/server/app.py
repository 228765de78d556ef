"""The ASGI app: ``create_app(settings)`` wires store, scheduler, auth, routes and jobs.

``app_from_environment`` is the import-string factory that ``codeq serve
--workers N`` hands to uvicorn: each worker process rebuilds the app from the
settings its parent resolved (``codeq.core.config.inherited_settings``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

import codeq
from codeq import plugins
from codeq.core.config import Settings, inherited_settings
from codeq.core.errors import ConfigError, InvalidInput
from codeq.core.scheduler import Clock, Scheduler
from codeq.core.storage import Storage
from codeq.server import errors
from codeq.server.auth import build_authenticator
from codeq.server.background import Job
from codeq.server.deps import Services
from codeq.server.logging import setup_logging
from codeq.server.middleware import BodyLimitMiddleware, RequestContextMiddleware
from codeq.server.responses import JSON
from codeq.server.routes import admin, health, tasks, workers

API_PREFIX = "/v1/codeq"


def check_settings(settings: Settings) -> None:
    """Fail before serving (``ConfigError``) on what the lifespan would trip over:
    an unknown storage scheme or backoff policy. Opens nothing."""
    store = plugins.open_storage(settings.storage_url, settings)
    try:
        Scheduler(store, settings, plugins.backoff_policies())
    except InvalidInput as exc:
        raise ConfigError("backoffPolicy", exc.message) from None


def create_app(settings: Settings, *, store: Storage | None = None,
               clock: Clock | None = None) -> FastAPI:
    """The codeq server app. A ``store`` passed in must be open already and stays the
    caller's to close; otherwise the app opens ``settings.storage_url`` and closes it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        active = store if store is not None else plugins.open_storage(settings.storage_url,
                                                                      settings)
        if own:
            await active.open()
        authenticator = build_authenticator(settings)
        try:
            scheduler = Scheduler(active, settings, plugins.backoff_policies(),
                                  clock or time.time)
            app.state.authenticator = authenticator
            app.state.services = Services(settings=settings, scheduler=scheduler,
                                          authenticator=authenticator, tz=settings.tz)
            limit = settings.requeue_inspect_limit
            jobs = [Job("promoter", scheduler.promote_once, limit),
                    Job("reaper", scheduler.reap_once, limit)]
            for job in jobs:
                job.start()
            try:
                yield
            finally:
                for job in jobs:
                    await job.stop()
        finally:
            await authenticator.aclose()
            if own:
                await active.close()

    app = FastAPI(title="codeq", version=codeq.__version__, lifespan=lifespan,
                  default_response_class=JSON, openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None,
                  description="A durable task queue: producers create tasks, workers claim "
                              "them under a lease. See docs/http-api.md.")
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)  # added last: outermost

    app.include_router(health.router)
    api = APIRouter(prefix=API_PREFIX)
    for module in (tasks, workers, admin):
        api.include_router(module.router)
    app.include_router(api)
    extra = APIRouter()
    plugins.manager().hook.register_routes(router=extra, settings=settings)
    app.include_router(extra)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory for ``--workers N``: the parent's settings, this process's app."""
    settings = inherited_settings()
    setup_logging(settings)
    return create_app(settings)
