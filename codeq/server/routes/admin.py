"""Operator routes: queue stats, DLQ, redrive, pause / resume, cleanup (admin tokens)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from codeq.core import models, render
from codeq.server import schemas
from codeq.server.deps import Caller, Svc
from codeq.server.responses import JSON

router = APIRouter(prefix="/admin", tags=["admin"])
STATS = schemas.route(schemas.QueueStatsOut, auth=schemas.ADMIN)


@router.get("/queues", **schemas.route(schemas.QueueList, auth=schemas.ADMIN))
async def queues(who: Caller, svc: Svc) -> Response:
    """Depths of every command's queues."""
    stats = await svc.scheduler.queues(who)
    return JSON({"queues": [render.stats(s, svc.tz) for s in stats]})


@router.get("/queues/{command}", **STATS)
async def queue(command: str, who: Caller, svc: Svc) -> Response:
    """Depths of one command's queues (zeros for a command never used)."""
    return JSON(render.stats(await svc.scheduler.queue(who, command), svc.tz))


@router.get("/queues/{command}/dlq", **schemas.route(schemas.TaskPage, auth=schemas.ADMIN))
async def dlq(command: str, who: Caller, svc: Svc, limit: models.QueryInt = 50,
              cursor: str | None = None) -> Response:
    """Dead-lettered tasks of a command, oldest first."""
    page = await svc.scheduler.dlq(who, command, limit=limit, cursor=cursor)
    return JSON({"tasks": [render.task(t, svc.tz) for t in page.tasks],
                 "nextCursor": page.next_cursor})


@router.post("/queues/{command}/dlq/redrive",
             **schemas.route(schemas.RedriveOut, auth=schemas.ADMIN))
async def redrive(command: str, who: Caller, svc: Svc,
                  body: models.Redrive | None = None) -> Response:
    """Move DLQ tasks (the given ids, or the oldest ``limit``) back to ready, attempts reset."""
    moved = await svc.scheduler.redrive(who, command, body or models.Redrive.model_validate({}))
    return JSON({"redriven": moved})


@router.post("/queues/{command}/pause", **STATS)
async def pause(command: str, who: Caller, svc: Svc) -> Response:
    """Stop handing out the command's tasks (they are still accepted)."""
    return JSON(render.stats(await svc.scheduler.set_paused(who, command, True), svc.tz))


@router.post("/queues/{command}/resume", **STATS)
async def resume(command: str, who: Caller, svc: Svc) -> Response:
    """Hand out the command's tasks again."""
    return JSON(render.stats(await svc.scheduler.set_paused(who, command, False), svc.tz))


@router.post("/tasks/cleanup", **schemas.route(schemas.CleanupOut, auth=schemas.ADMIN))
async def cleanup(who: Caller, svc: Svc, body: models.Cleanup | None = None) -> Response:
    """Delete terminal tasks whose retention ended before ``before``."""
    body = body or models.Cleanup.model_validate({})
    deleted, before = await svc.scheduler.cleanup(who, body)
    return JSON({"deleted": deleted, "before": render.timestamp(before, svc.tz),
                 "limit": body.limit})
