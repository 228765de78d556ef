"""The ASGI app: ``create_app(settings)`` wires store, scheduler, auth, routes and jobs.

``app_from_environment`` is the import-string factory that ``codeq serve
--workers N`` hands to uvicorn: each worker process rebuilds the app from the
settings its parent resolved (``codeq.core.config.inherited_settings``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

import codeq
from codeq import plugins
from codeq.core.config import Settings, inherited_settings
from codeq.core.errors import ConfigError, InvalidInput
from codeq.core.events import NO_RECORDER
from codeq.core.scheduler import Clock, Scheduler
from codeq.core.storage import Storage
from codeq.core.subscriptions import SWEEP_BATCH, Subscriptions
from codeq.long_running import settle_collector
from codeq.server import errors, schemas
from codeq.server.auth import build_authenticator
from codeq.server.background import Job
from codeq.server.deps import Services, known_query
from codeq.server.hot_routes import HotRoutes
from codeq.server.logging import setup_logging
from codeq.server.metrics import Metrics
from codeq.server.middleware import BodyLimitMiddleware, RequestContextMiddleware
from codeq.server.responses import JSON
from codeq.server.routes import admin, artifacts, health, subscriptions, tasks, workers
from codeq.server.webhooks import CALLBACK_BATCH, CallbackDispatcher, Notifier

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
               clock: Clock | None = None, multiprocess: bool = False) -> FastAPI:
    """The codeq server app. A ``store`` passed in must be open already and stays the
    caller's to close; otherwise the app opens ``settings.storage_url`` and closes it.
    ``multiprocess``: one of the processes of ``codeq serve --workers N``, whose
    ``/metrics`` sums the counters of all of them."""
    metrics = Metrics(multiprocess=multiprocess) if settings.metrics_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            active = store
            if active is None:
                active = plugins.open_storage(settings.storage_url, settings)
                await active.open()
                stack.push_async_callback(active.close)
            authenticator = build_authenticator(settings)
            stack.push_async_callback(authenticator.aclose)
            artifact_store = plugins.open_artifact_store(settings)
            stack.push_async_callback(artifact_store.close)
            scheduler = Scheduler(active, settings, plugins.backoff_policies(),
                                  clock or time.time, metrics or NO_RECORDER,
                                  artifacts=artifact_store)
            watchers = Subscriptions(active, settings, scheduler.outbound, scheduler.as_worker,
                                     scheduler.clock)
            notifier = Notifier(scheduler, watchers, settings)
            stack.push_async_callback(notifier.aclose)
            dispatcher = CallbackDispatcher(scheduler, settings)
            stack.push_async_callback(dispatcher.aclose)
            app.state.authenticator = authenticator
            app.state.services = Services(settings=settings, scheduler=scheduler,
                                          subscriptions=watchers,
                                          authenticator=authenticator, tz=settings.tz)
            limit = settings.requeue_inspect_limit
            for job in (Job("promoter", scheduler.promote_once, limit),
                        Job("reaper", scheduler.reap_once, limit),
                        Job("callbacks", dispatcher.step, CALLBACK_BATCH),
                        Job("subscription-sweep", watchers.sweep_once, SWEEP_BATCH,
                            interval=settings.subscription_cleanup_interval_seconds)):
                job.start()
                stack.push_async_callback(job.stop)
            yield

    app = FastAPI(title="codeq", version=codeq.__version__, lifespan=lifespan,
                  # FastAPI's native OpenTelemetry looks up three global providers on
                  # every request; codeq reports through /metrics and its logs instead.
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  default_response_class=JSON, openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None,
                  description="A durable task queue: producers create tasks, workers claim "
                              "them under a lease. See docs/http-api.md.")
    errors.install(app)
    schemas.install(app)
    app.add_middleware(HotRoutes, prefix=API_PREFIX)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware,  # added last: outermost
                       observe=metrics.observe_request if metrics is not None else None)

    app.include_router(health.router)
    if metrics is not None:
        app.include_router(metrics.router())
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(known_query)])
    for module in (tasks, artifacts, workers, subscriptions, admin):
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
    app = create_app(settings, multiprocess=True)
    settle_collector()
    return app
