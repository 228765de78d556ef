"""``codeq serve``: run the HTTP server (uvicorn) with settings from file, env and flags."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from codeq.core.config import Settings, load_settings, settings_environment
from codeq.core.errors import ConfigError, StoreUnavailable

#: Seconds uvicorn lets in-flight requests (long polls included) finish on shutdown.
GRACEFUL_SHUTDOWN_SECONDS = 5
#: Where prometheus_client's multiprocess mode keeps each process's counters.
MULTIPROCESS_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_directory(enabled: bool) -> Iterator[None]:
    """A fresh directory for this run's per-process metric files, removed at the end.

    Set in the environment before the server processes start (prometheus_client
    reads it when first imported); fresh, so that no earlier run's counts are summed in.
    """
    if not enabled:
        yield
        return
    path = tempfile.mkdtemp(prefix="codeq-metrics-")
    os.environ[MULTIPROCESS_METRICS_ENV] = path
    try:
        yield
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _safe_url(url: str) -> str:
    """The storage URL without credentials, for the start-up banner."""
    parts = urlsplit(url)
    if parts.password or parts.username:
        # host and port as written: the text after the last "@"
        netloc = "***@" + parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=netloc).geturl()
    return url


def _check_store(settings: Settings) -> None:
    """Refuse to start when the store does not answer, naming it (not a traceback)."""
    from codeq import plugins

    async def probe() -> None:
        store = plugins.open_storage(settings.storage_url, settings)
        try:
            await store.open()
            await store.ping()
        finally:
            await store.close()

    try:
        asyncio.run(probe())
    except StoreUnavailable as exc:
        raise ConfigError("storage", f"the store {_safe_url(settings.storage_url)} does not "
                                     f"answer ({exc.message}); start it, or point --storage "
                                     "(CODEQ_STORAGE) at one that runs") from None


def _settings(config: Path | None, overrides: dict[str, object], workers: int) -> Settings:
    settings = load_settings(config, overrides=overrides)
    if workers > 1 and settings.storage_url.startswith("memory:"):
        raise ConfigError("workers", "memory:// storage lives in one process; use --workers 1 "
                                     "or a shared store (sqlite, redis)")
    from codeq.server.app import check_settings

    check_settings(settings)
    _check_store(settings)
    # Children must not resolve the data directory again (their environment may differ).
    return settings.model_copy(update={"data_dir": settings.data_path})


def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="CODEQ_CONFIG",
                                                help="YAML configuration file")] = None,
    storage: Annotated[str | None, typer.Option(
        help="store URL: sqlite:///path, memory://, redis://host:port, redis+cluster://...")
    ] = None,
    host: Annotated[str | None, typer.Option(help="bind address (dev: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (8080)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes on one port")] = 1,
    dev: Annotated[bool, typer.Option("--dev", help="force env dev (local signing key)")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="SQLite file and dev key")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error")] = None,
) -> None:
    """Run the codeq server.

    Example: codeq serve --storage sqlite:///var/lib/codeq/codeq.db --port 8080
    """
    overrides: dict[str, object] = {"storage": storage, "host": host, "port": port,
                                    "env": "dev" if dev else None,
                                    "dataDir": str(data_dir) if data_dir else None,
                                    "logLevel": log_level}
    try:
        settings = _settings(config, overrides, workers)
    except ConfigError as exc:
        typer.echo(f"codeq: {exc.message}", err=True)
        raise typer.Exit(2) from None

    import uvicorn

    from codeq.long_running import settle_collector
    from codeq.server.app import create_app
    from codeq.server.logging import setup_logging

    setup_logging(settings)
    where = f"http://{settings.bind_host}:{settings.port}"
    if settings.dev:
        typer.secho(f"codeq: DEV MODE on {where}: tokens signed by the local dev key in "
                    f"{settings.data_path} are trusted, X-Role: ADMIN is honoured. "
                    "Do not expose this server; set env: prod for production.",
                    err=True, fg=typer.colors.YELLOW, bold=True)
    typer.echo(f"codeq: serving {where} with storage {_safe_url(settings.storage_url)} "
               f"({workers} process{'es' if workers > 1 else ''})", err=True)
    common: dict[str, Any] = {"host": settings.bind_host, "port": settings.port,
                              "log_config": None, "access_log": False, "server_header": False,
                              "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
                              # uvicorn's httptools protocol plus a deadline for headers.
                              "http": "codeq.server.middleware:HeaderDeadlineProtocol"}
    if workers > 1:
        os.environ.update(settings_environment(settings))
        with metrics_directory(settings.metrics_enabled):
            uvicorn.run("codeq.server.app:app_from_environment", factory=True, workers=workers,
                        **common)
    else:
        app = create_app(settings)
        settle_collector()
        uvicorn.run(app, **common)
