"""Producer routes: create, batch create, list, get, result, cancel."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from codeq.core import models, render
from codeq.core.errors import CodeqError
from codeq.server import schemas
from codeq.server.deps import Caller, Svc
from codeq.server.responses import JSON

router = APIRouter(tags=["tasks"])


def error_item(exc: CodeqError) -> dict[str, object]:
    """A refused item of a batch: the error body plus the status it would have had alone."""
    return {**exc.to_body(), "code": exc.status}


@router.post("/tasks", **schemas.route(
    schemas.TaskOut, status=202, auth=schemas.PRODUCER,
    errors={409: "idempotencyKey already used for this command with a different payload"}))
async def create_task(body: models.CreateTask, who: Caller, svc: Svc) -> Response:
    """Create a task (producer). Answers 202 with the task; a repeated idempotencyKey
    answers the original task."""
    task, _ = await svc.scheduler.create(who, body)
    return JSON(render.task(task, svc.tz), status_code=202)


@router.post("/tasks/batch", **schemas.route(schemas.BatchCreated, auth=schemas.PRODUCER))
async def create_tasks(body: models.CreateBatch, who: Caller, svc: Svc) -> Response:
    """Create up to 1000 tasks; each item succeeds or fails on its own, in input order."""
    results = await svc.scheduler.create_batch(who, body.tasks)
    return JSON({"results": [error_item(r) if isinstance(r, CodeqError)
                             else {"task": render.task(r, svc.tz)} for r in results]})


@router.get("/tasks", **schemas.route(schemas.TaskPage, auth=schemas.PRODUCER_OR_ADMIN))
async def list_tasks(who: Caller, svc: Svc, command: str | None = None,
                     status: str | None = None, limit: models.QueryInt = 50,
                     cursor: str | None = None) -> Response:
    """List tasks in creation order (producer or admin)."""
    page = await svc.scheduler.list_tasks(who, command=command, status=status, limit=limit,
                                          cursor=cursor)
    return JSON({"tasks": [render.task(t, svc.tz) for t in page.tasks],
                 "nextCursor": page.next_cursor})


@router.get("/tasks/{task_id}", **schemas.route(schemas.TaskOut, auth=schemas.ANY_TOKEN))
async def get_task(task_id: schemas.TaskId, who: Caller, svc: Svc, history: bool = False) -> Response:
    """One task; ``?history=true`` adds its timeline."""
    task = await svc.scheduler.get(who, task_id)
    return JSON(render.task(task, svc.tz, history=history))


@router.get("/tasks/{task_id}/result", **schemas.route(
    schemas.TaskWithResult, auth=schemas.ANY_TOKEN,
    errors={404: "unknown task, or the task has no result yet"}))
async def get_result(task_id: schemas.TaskId, who: Caller, svc: Svc) -> Response:
    """The task and its result record; 404 while there is none."""
    task, record = await svc.scheduler.result(who, task_id)
    return JSON({"task": render.task(task, svc.tz), "result": render.result(record, svc.tz)})


@router.post("/tasks/{task_id}/cancel", **schemas.route(
    schemas.TaskOut, auth=schemas.PRODUCER, errors={409: "the task is already terminal"}))
async def cancel_task(task_id: schemas.TaskId, who: Caller, svc: Svc) -> Response:
    """PENDING -> CANCELLED; IN_PROGRESS -> cancelRequested; 409 when already terminal."""
    task = await svc.scheduler.cancel(who, task_id)
    return JSON(render.task(task, svc.tz))
