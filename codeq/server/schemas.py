"""The HTTP API's answers and auth, as the OpenAPI document (``/openapi.json``) shows them.

Handlers render domain objects with ``codeq.core.render``; the models here
describe those shapes (camelCase keys, RFC 3339 times) so that clients, and
the schema-driven fuzz test in ``tests/api``, can check every answer.

- ``route(...)`` gives a route decorator its success model, its own error
  statuses and the auth it needs (``x-codeq-auth``, plus the scopes in the
  operation's ``security``);
- ``install(app)`` adds the error contract every secured operation shares
  (400, 401, 403, 503; 413 where there is a body; 404 where an id is in the
  path) and drops
  FastAPI's 422, which codeq never answers (invalid input is a 400).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import FastAPI, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from codeq.core.auth import Scope
from codeq.core.domain import Status

SECURITY_SCHEME = "HTTPBearer"
Timestamp = AwareDatetime
#: A task id in a path, documented as the UUID it must be (anything else is a 400).
TaskId = Annotated[str, Path(description="the task's id (a lowercase UUID)",
                             json_schema_extra={"format": "uuid"})]


class Out(BaseModel):
    """An answer body: camelCase on the wire, extra keys allowed (new fields are not
    breaking changes)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class ErrorBody(BaseModel):
    """Every refusal: a human message, sometimes with fields that say more."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(description="what was wrong and how to fix it")


class BatchError(ErrorBody):
    """A refused item of a batch: the error plus the status it would have had alone."""

    code: int = Field(ge=400, le=599)


class HistoryEntry(Out):
    at: Timestamp
    event: str
    worker_id: str | None
    reason: str | None


class BackoffOut(Out):
    policy: str
    base_seconds: float
    max_seconds: float


class TaskOut(Out):
    """A task. ``history`` only with ``?history=true``; ``backoff`` only when the task
    overrides the policy."""

    id: UUID
    command: str
    payload: Any = Field(description="the JSON value the producer sent, unchanged")
    priority: int = Field(ge=0, le=9)
    status: Status
    attempts: int = Field(ge=0, description="deliveries so far (each claim adds one)")
    max_attempts: int = Field(ge=1)
    worker_id: str | None
    lease_until: Timestamp | None
    webhook: str | None
    error: str | None
    created_at: Timestamp
    updated_at: Timestamp
    run_at: Timestamp | None
    visible_at: Timestamp | None
    idempotency_key: str | None
    cancel_requested: bool
    dead_lettered: bool
    finished_at: Timestamp | None
    backoff: BackoffOut | None = None
    history: list[HistoryEntry] | None = None


class LeasedTask(TaskOut):
    """A claimed task: pass ``leaseId`` to heartbeat, abandon, nack and result."""

    lease_id: str


class ArtifactOut(Out):
    name: str
    url: str | None
    content_type: str | None = None


class ResultOut(Out):
    task_id: UUID
    status: Literal["COMPLETED", "FAILED"]
    result: Any
    error: str | None
    artifacts: list[ArtifactOut]
    completed_at: Timestamp


class TaskWithResult(Out):
    task: TaskOut
    result: ResultOut


class TaskPage(Out):
    tasks: list[TaskOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; "
                                                "null on the last one")


class CreatedItem(Out):
    task: TaskOut


class BatchCreated(Out):
    results: list[CreatedItem | BatchError] = Field(description="in input order")


class ClaimedBatch(Out):
    tasks: list[LeasedTask]


class HeartbeatOut(Out):
    ok: Literal[True]
    lease_until: Timestamp | None
    cancel_requested: bool = Field(description="true: stop the handler and abandon the task")


class AbandonOut(Out):
    status: Literal["requeued", "cancelled"]


class NackOut(Out):
    status: Literal["requeued", "dlq", "cancelled"]
    delay_seconds: float = Field(ge=0)


class ResultItem(Out):
    task_id: str
    result: ResultOut


class ResultItemError(BatchError):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")
    task_id: str | None = Field(description="null when the item had no usable taskId")


class BatchResultsOut(Out):
    results: list[ResultItem | ResultItemError] = Field(description="in input order")


class QueueStatsOut(Out):
    command: str
    ready: int = Field(ge=0)
    delayed: int = Field(ge=0)
    in_progress: int = Field(ge=0)
    dlq: int = Field(ge=0)
    paused: bool
    oldest_ready_at: Timestamp | None = Field(
        description="when the longest-waiting ready task became ready; null when none is ready")


class QueueList(Out):
    queues: list[QueueStatsOut]


class RedriveOut(Out):
    redriven: int = Field(ge=0)


class CleanupOut(Out):
    deleted: int = Field(ge=0)
    before: Timestamp
    limit: int = Field(ge=1)


class Health(Out):
    status: Literal["ok"]


class Ready(Out):
    status: Literal["ok"]
    storage: str


@dataclass(frozen=True, slots=True)
class Auth:
    """Who may call a route: ``role`` for machines, ``text`` for people."""

    role: Literal["none", "any", "producer", "producer-or-admin", "admin", "worker"]
    text: str
    scopes: tuple[str, ...] = ()

    def extension(self) -> dict[str, Any]:
        return {"role": self.role, "scopes": list(self.scopes), "description": self.text}


PUBLIC = Auth("none", "none")
ANY_TOKEN = Auth("any", "any valid token (producer, worker or admin)")
PRODUCER = Auth("producer", "a producer token")
PRODUCER_OR_ADMIN = Auth("producer-or-admin", "a producer or admin token")
ADMIN = Auth("admin", "an admin token: a producer token with claim role ADMIN or scope "
                      "codeq:admin (in dev mode also a producer token plus header X-Role: ADMIN)",
             (Scope.ADMIN.value,))


def worker(scope: Scope, *, owner: bool = False) -> Auth:
    """A worker token with ``scope`` (``owner``: whose ``sub`` holds the task's lease)."""
    text = f"a worker token with scope {scope.value}"
    return Auth("worker", text + (", whose sub owns the task's lease" if owner else ""),
                (scope.value,))


def route(ok: type[BaseModel] | None, *, auth: Auth, status: int = 200,
          errors: Mapping[int, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for a route decorator: success status and model, the statuses
    particular to the route (the shared ones come from ``install``), and its auth.

    ``ok=None`` is an answer that is not JSON: no body (204) or bytes of any type.
    """
    kwargs: dict[str, Any] = {"status_code": status,
                              "openapi_extra": {"x-codeq-auth": auth.extension()}}
    if ok is not None:
        success: dict[str, Any] = {"model": ok}
    else:
        kwargs["response_class"] = Response
        success = {} if status == 204 else {"description": "the stored bytes", "content": {
            "*/*": {"schema": {"type": "string", "format": "binary"}}}}
    responses: dict[int | str, dict[str, Any]] = {status: success}
    for code, why in (errors or {}).items():
        responses[code] = {"model": ErrorBody, "description": why}
    return {**kwargs, "responses": responses}


SHARED_ERRORS = {
    400: "invalid input: the message names the field and the rule",
    401: "no token, or a token this server does not trust (expired, wrong issuer ...)",
    403: "the token lacks the role, scope, event type or ownership the call needs",
    413: "request body over maxBodyBytes",
    503: "the store did not answer; retry",
}
UNKNOWN_ID = "nothing with this id (unknown task, subscription or artifact)"


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


def _finish_operation(op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    responses.pop("422", None)
    if op.get("security"):
        for code, why in SHARED_ERRORS.items():
            if code != 413 or "requestBody" in op:
                responses.setdefault(str(code), _error_response(why))
        if any(p.get("in") == "path" and p["name"].endswith("id")
               for p in op.get("parameters", ())):
            responses.setdefault("404", _error_response(UNKNOWN_ID))
    auth = op.get("x-codeq-auth")
    if auth:
        op["description"] = f"**Auth:** {auth['description']}.\n\n{op.get('description', '')}"
        if auth["scopes"] and op.get("security"):
            op["security"] = [{SECURITY_SCHEME: auth["scopes"]}]
    op["responses"] = dict(sorted(responses.items()))


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Apply the shared error contract and the declared auth to every operation."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["ErrorBody"] = ErrorBody.model_json_schema()
    for operations in document.get("paths", {}).values():
        for op in operations.values():
            _finish_operation(op)
    return document


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (``/openapi.json``) the finished document, built once."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            finish(build())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
