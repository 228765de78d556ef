"""Serving uploaded result artifacts."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from codeq.server import schemas
from codeq.server.deps import Caller, Svc

router = APIRouter(tags=["tasks"])


@router.get("/tasks/{task_id}/artifacts/{name}",
            **schemas.route(None, auth=schemas.ANY_TOKEN, errors={404: schemas.UNKNOWN_ID}))
async def artifact(task_id: schemas.TaskId, name: str, who: Caller, svc: Svc) -> Response:
    """The bytes of an artifact uploaded with the task's result, with its content type."""
    data, content_type = await svc.scheduler.artifact(who, task_id, name)
    return Response(data, media_type=content_type,
                    headers={"x-content-type-options": "nosniff",
                             "content-disposition": "attachment"})
