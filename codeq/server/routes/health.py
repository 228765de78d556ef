"""``/healthz`` (the process is alive) and ``/readyz`` (the store answers)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from codeq.core.errors import CodeqError
from codeq.server import schemas
from codeq.server.deps import Svc
from codeq.server.responses import JSON

router = APIRouter(tags=["health"])


@router.get("/healthz", **schemas.route(schemas.Health, auth=schemas.PUBLIC))
async def healthz() -> Response:
    """Always 200 while the process serves requests."""
    return JSON({"status": "ok"})


@router.get("/readyz", **schemas.route(schemas.Ready, auth=schemas.PUBLIC,
                                       errors={503: "the store does not answer"}))
async def readyz(svc: Svc) -> Response:
    """200 when the store answers a ping, 503 otherwise."""
    try:
        await svc.scheduler.store.ping()
    except (CodeqError, ConnectionError, TimeoutError) as exc:
        return JSON({"status": "unavailable", "error": str(exc)}, status_code=503)
    return JSON({"status": "ok", "storage": svc.scheduler.store.name})
