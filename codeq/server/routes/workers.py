"""Worker routes: claim (long poll), batch claim, heartbeat, abandon, nack, results.

Abandon and nack answer where the task went: ``requeued``, ``dlq`` (nack only)
or ``cancelled`` when a producer had asked to cancel it while it ran (the task
then ends CANCELLED instead of being retried). All three are 200: the call did
what it should.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from codeq.core import models, render
from codeq.core.auth import Scope
from codeq.core.domain import Task
from codeq.core.errors import CodeqError
from codeq.server import schemas
from codeq.server.deps import Caller, Svc
from codeq.server.responses import JSON
from codeq.server.routes.tasks import error_item

router = APIRouter(tags=["workers"])
LEASE_MOVED = "the task is not IN_PROGRESS, or leaseId is not its current lease"


def _owned(ok: type[schemas.Out], scope: Scope) -> dict[str, Any]:
    return schemas.route(ok, auth=schemas.worker(scope, owner=True),
                         errors={404: schemas.UNKNOWN_ID, 409: LEASE_MOVED})


CLAIM = schemas.route(schemas.LeasedTask, auth=schemas.worker(Scope.CLAIM))
CLAIM["responses"][204] = {"description": "nothing became ready within waitSeconds"}


async def _disconnected(request: Request) -> None:
    """Return once the client has gone (the body is already read, so only that is left)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Request, claim: Coroutine[Any, Any, list[Task]]
                               ) -> list[Task] | None:
    """Run a waiting claim, stopping it (None) as soon as the client disconnects."""
    claiming = asyncio.ensure_future(claim)
    watching = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({claiming, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (claiming, watching):
            if not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
    if claiming.cancelled():
        return None
    return claiming.result()


async def _claim(request: Request, who: Caller, svc: Svc, body: models.Claim, count: int
                 ) -> list[Task] | None:
    work = svc.scheduler.claim(who, body, count)
    if body.wait_seconds <= 0:
        return await work
    return await _unless_disconnected(request, work)


@router.post("/tasks/claim", **CLAIM)
async def claim(request: Request, who: Caller, svc: Svc,
                body: models.Claim | None = None) -> Response:
    """Lease the next task (200 with ``leaseId``), or 204 when none became ready in
    ``waitSeconds``."""
    tasks = await _claim(request, who, svc, body or models.Claim.model_validate({}), 1)
    if not tasks:
        return Response(status_code=204)
    return JSON(render.task(tasks[0], svc.tz, lease=True))


@router.post("/tasks/claim/batch",
             **schemas.route(schemas.ClaimedBatch, auth=schemas.worker(Scope.CLAIM)))
async def claim_batch(request: Request, who: Caller, svc: Svc,
                      body: models.ClaimBatch | None = None) -> Response:
    """Lease up to ``count`` tasks; ``{"tasks": []}`` when none became ready in ``waitSeconds``."""
    body = body or models.ClaimBatch.model_validate({})
    tasks = await _claim(request, who, svc, body, body.count) or []
    return JSON({"tasks": [render.task(t, svc.tz, lease=True) for t in tasks]})


@router.post("/tasks/{task_id}/heartbeat", **_owned(schemas.HeartbeatOut, Scope.HEARTBEAT))
async def heartbeat(task_id: schemas.TaskId, who: Caller, svc: Svc,
                    body: models.Heartbeat | None = None) -> Response:
    """Extend the lease; ``cancelRequested`` tells the worker to stop and abandon."""
    task = await svc.scheduler.heartbeat(who, task_id,
                                         body or models.Heartbeat.model_validate({}))
    return JSON({"ok": True, "leaseUntil": render.timestamp(task.lease_until, svc.tz),
                 "cancelRequested": task.cancel_requested})


@router.post("/tasks/{task_id}/abandon", **_owned(schemas.AbandonOut, Scope.ABANDON))
async def abandon(task_id: schemas.TaskId, who: Caller, svc: Svc,
                  body: models.Abandon | None = None) -> Response:
    """Give the task back now, attempts unchanged: ``requeued``, or ``cancelled`` when a
    cancel was requested."""
    _, outcome = await svc.scheduler.abandon(who, task_id,
                                             body or models.Abandon.model_validate({}))
    return JSON({"status": outcome.value})


@router.post("/tasks/{task_id}/nack", **_owned(schemas.NackOut, Scope.NACK))
async def nack(task_id: schemas.TaskId, who: Caller, svc: Svc,
               body: models.Nack | None = None) -> Response:
    """Retry later: ``requeued`` with the delay, ``dlq`` after maxAttempts, or ``cancelled``."""
    done = await svc.scheduler.nack(who, task_id, body or models.Nack.model_validate({}))
    return JSON({"status": done.outcome.value, "delaySeconds": done.delay_seconds})


@router.post("/tasks/{task_id}/result", **_owned(schemas.ResultOut, Scope.RESULT))
async def submit_result(task_id: schemas.TaskId, body: models.SubmitResult, who: Caller,
                        svc: Svc) -> Response:
    """Finish the task (COMPLETED or FAILED); re-sending the same submission answers the
    stored record."""
    record = await svc.scheduler.submit_result(who, task_id, body)
    return JSON(render.result(record, svc.tz))


@router.post("/tasks/batch/results",
             **schemas.route(schemas.BatchResultsOut, auth=schemas.worker(Scope.RESULT)))
async def submit_results(body: models.BatchResults, who: Caller, svc: Svc) -> Response:
    """Submit up to 1000 results; each succeeds or fails on its own, in input order."""
    results = await svc.scheduler.submit_results(who, body.results)
    return JSON({"results": [{"taskId": task_id, **error_item(r)} if isinstance(r, CodeqError)
                             else {"taskId": task_id, "result": render.result(r, svc.tz)}
                             for task_id, r in results]})
