"""One function per route of the HTTP API, each describing its call as a ``Call``.

The sync and async clients execute the same ``Call`` objects, so a route is
written once. ``idempotent`` says whether a call may be repeated after an
answer was lost (see ``codeq.client.http`` for the retry rules).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx

from codeq.client.errors import InvalidRequest
from codeq.core import jsontext

T = TypeVar("T")
JSON = dict[str, Any]
#: Which configured token a call sends: producer routes, worker routes, admin
#: routes (producer token plus ``X-Role: ADMIN`` when asked), any token, none.
Role = Literal["producer", "worker", "admin", "any", "none"]

API = "/v1/codeq"
#: Extra seconds a long-poll claim's HTTP timeout gets beyond ``waitSeconds``.
LONG_POLL_MARGIN = 15.0


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    role: Role = "producer"
    body: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    idempotent: bool = False
    timeout: float | None = None


def _json(response: httpx.Response) -> JSON:
    """What ``response.json()`` reads, at half its cost on a batch of tasks."""
    data: JSON = jsontext.loads(response.content)
    return data


def _optional_task(response: httpx.Response) -> JSON | None:
    return None if response.status_code == 204 else _json(response)


def _tasks(response: httpx.Response) -> list[JSON]:
    tasks: list[JSON] = _json(response)["tasks"]
    return tasks


def _results(response: httpx.Response) -> list[JSON]:
    results: list[JSON] = _json(response)["results"]
    return results


def _nothing(response: httpx.Response) -> None:
    return None


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def _text(response: httpx.Response) -> str:
    return response.text


def _compact(**fields: Any) -> JSON:
    """The request body: camelCase keys, unset (None) fields left out."""
    out: JSON = {}
    for name, value in fields.items():
        if value is None:
            continue
        head, *rest = name.split("_")
        out[head + "".join(p.title() for p in rest)] = value
    return out


def _time(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("give an aware datetime (with a time zone) for runAt / before")
        return value.isoformat()
    return value


def _id(task_id: str) -> str:
    """One path segment. ``.`` and ``..`` are percent-encoded: sent bare, the URL would be
    normalised into another route (``tasks/.`` is the task list)."""
    if not task_id:
        raise InvalidRequest("an id or command name in the path must not be empty")
    try:
        segment = quote(task_id, safe="")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{task_id!r} holds characters that cannot be sent (lone "
                             "surrogates)") from None
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


def task_body(command: str, payload: Any, *, priority: int | None = None,
              max_attempts: int | None = None, webhook: str | None = None,
              idempotency_key: str | None = None, run_at: datetime | str | None = None,
              delay_seconds: float | None = None, backoff: Mapping[str, Any] | None = None
              ) -> JSON:
    """The body of one task creation (also an item of ``create_tasks``)."""
    body = _compact(command=command, priority=priority, max_attempts=max_attempts,
                    webhook=webhook, idempotency_key=idempotency_key, run_at=_time(run_at),
                    delay_seconds=delay_seconds, backoff=dict(backoff) if backoff else None)
    body["payload"] = payload
    return body


# -- producers ----------------------------------------------------------------
def create_task(command: str, payload: Any = None, *, priority: int | None = None,
                max_attempts: int | None = None, webhook: str | None = None,
                idempotency_key: str | None = None, run_at: datetime | str | None = None,
                delay_seconds: float | None = None, backoff: Mapping[str, Any] | None = None
                ) -> Call[JSON]:
    """``POST /tasks``: create a task; returns it. Repeated safely only with an idempotency key."""
    body = task_body(command, payload, priority=priority, max_attempts=max_attempts,
                     webhook=webhook, idempotency_key=idempotency_key, run_at=run_at,
                     delay_seconds=delay_seconds, backoff=backoff)
    return Call("POST", "/tasks", _json, body=body, idempotent=idempotency_key is not None)


def create_tasks(tasks: Sequence[Mapping[str, Any]]) -> Call[list[JSON]]:
    """``POST /tasks/batch``: ``[{"task": ...} or {"error": ...}]`` in input order."""
    return Call("POST", "/tasks/batch", _results, body={"tasks": [dict(t) for t in tasks]},
                idempotent=all(t.get("idempotencyKey") for t in tasks))


def list_tasks(*, command: str | None = None, status: str | None = None,
               limit: int | None = None, cursor: str | None = None) -> Call[JSON]:
    """``GET /tasks``: ``{"tasks": [...], "nextCursor": ...}``."""
    return Call("GET", "/tasks", _json, params=_compact(command=command, status=status,
                                                        limit=limit, cursor=cursor),
                idempotent=True)


def get_task(task_id: str, *, history: bool = False) -> Call[JSON]:
    """``GET /tasks/{id}``, with the timeline when ``history``."""
    return Call("GET", f"/tasks/{_id(task_id)}", _json, role="any",
                params={"history": "true"} if history else {}, idempotent=True)


def get_result(task_id: str) -> Call[JSON]:
    """``GET /tasks/{id}/result``: ``{"task": ..., "result": ...}``; NotFound while none."""
    return Call("GET", f"/tasks/{_id(task_id)}/result", _json, role="any", idempotent=True)


def cancel_task(task_id: str) -> Call[JSON]:
    """``POST /tasks/{id}/cancel``: the task (CANCELLED, or cancelRequested when running)."""
    return Call("POST", f"/tasks/{_id(task_id)}/cancel", _json, body={}, idempotent=True)


def get_artifact(task_id: str, name: str) -> Call[bytes]:
    """``GET /tasks/{id}/artifacts/{name}``: the stored bytes."""
    return Call("GET", f"/tasks/{_id(task_id)}/artifacts/{_id(name)}", _bytes,
                role="any", idempotent=True)


# -- workers --------------------------------------------------------------------
def claim(commands: Sequence[str] | None = None, *, lease_seconds: float | None = None,
          wait_seconds: float | None = None) -> Call[JSON | None]:
    """``POST /tasks/claim``: a leased task (with ``leaseId``) or None.

    Not idempotent: repeated only when the request never reached the server.
    """
    body = _compact(commands=list(commands) if commands else None, lease_seconds=lease_seconds,
                    wait_seconds=wait_seconds)
    return Call("POST", "/tasks/claim", _optional_task, role="worker", body=body,
                timeout=(wait_seconds or 0) + LONG_POLL_MARGIN)


def claim_batch(count: int, commands: Sequence[str] | None = None, *,
                lease_seconds: float | None = None, wait_seconds: float | None = None
                ) -> Call[list[JSON]]:
    """``POST /tasks/claim/batch``: up to ``count`` leased tasks (maybe none)."""
    body = _compact(count=count, commands=list(commands) if commands else None,
                    lease_seconds=lease_seconds, wait_seconds=wait_seconds)
    return Call("POST", "/tasks/claim/batch", _tasks, role="worker", body=body,
                timeout=(wait_seconds or 0) + LONG_POLL_MARGIN)


def heartbeat(task_id: str, *, extend_seconds: float | None = None,
              lease_id: str | None = None) -> Call[JSON]:
    """``POST /tasks/{id}/heartbeat``: ``{"ok", "leaseUntil", "cancelRequested"}``."""
    return Call("POST", f"/tasks/{_id(task_id)}/heartbeat", _json, role="worker",
                body=_compact(extend_seconds=extend_seconds, lease_id=lease_id), idempotent=True)


def abandon(task_id: str, *, lease_id: str | None = None) -> Call[JSON]:
    """``POST /tasks/{id}/abandon``: give the task back now (attempts unchanged)."""
    return Call("POST", f"/tasks/{_id(task_id)}/abandon", _json, role="worker",
                body=_compact(lease_id=lease_id))


def nack(task_id: str, *, delay_seconds: float | None = None, reason: str | None = None,
         lease_id: str | None = None) -> Call[JSON]:
    """``POST /tasks/{id}/nack``: retry later (backoff when no delay) or dead-letter."""
    return Call("POST", f"/tasks/{_id(task_id)}/nack", _json, role="worker",
                body=_compact(delay_seconds=delay_seconds, reason=reason, lease_id=lease_id))


def submit_result(task_id: str, status: Literal["COMPLETED", "FAILED"], *,
                  result: Any = None, error: str | None = None,
                  artifacts: Sequence[Mapping[str, Any]] | None = None,
                  lease_id: str | None = None) -> Call[JSON]:
    """``POST /tasks/{id}/result``: the result record. Safe to repeat (the server
    returns the stored record to the same worker)."""
    body = _compact(status=status, error=error, lease_id=lease_id,
                    artifacts=[dict(a) for a in artifacts] if artifacts else None)
    if status == "COMPLETED":
        body["result"] = result
    return Call("POST", f"/tasks/{_id(task_id)}/result", _json, role="worker", body=body,
                idempotent=True)


def submit_results(results: Sequence[Mapping[str, Any]]) -> Call[list[JSON]]:
    """``POST /tasks/batch/results``: ``[{"taskId", "result"} or {"taskId", "error"}]``."""
    return Call("POST", "/tasks/batch/results", _results, role="worker",
                body={"results": [dict(r) for r in results]}, idempotent=True)


def subscribe(callback_url: str, *, event_types: Sequence[str] | None = None,
              ttl_seconds: float | None = None, delivery_mode: str | None = None,
              group_id: str | None = None, min_interval_seconds: float | None = None
              ) -> Call[JSON]:
    """``POST /workers/subscriptions``: ``{"subscriptionId", "expiresAt"}``."""
    body = _compact(callback_url=callback_url, event_types=list(event_types) if event_types
                    else None, ttl_seconds=ttl_seconds, delivery_mode=delivery_mode,
                    group_id=group_id, min_interval_seconds=min_interval_seconds)
    return Call("POST", "/workers/subscriptions", _json, role="worker", body=body)


def renew_subscription(subscription_id: str, *, ttl_seconds: float | None = None
                       ) -> Call[JSON]:
    """``POST /workers/subscriptions/{id}/heartbeat``: the new ``expiresAt``."""
    return Call("POST", f"/workers/subscriptions/{_id(subscription_id)}/heartbeat", _json,
                role="worker", body=_compact(ttl_seconds=ttl_seconds), idempotent=True)


def unsubscribe(subscription_id: str) -> Call[None]:
    """``DELETE /workers/subscriptions/{id}``."""
    return Call("DELETE", f"/workers/subscriptions/{_id(subscription_id)}", _nothing,
                role="worker", idempotent=True)


# -- operators --------------------------------------------------------------------
def list_queues() -> Call[list[JSON]]:
    """``GET /admin/queues``: the stats of every command ever used."""
    return Call("GET", "/admin/queues", lambda r: list(_json(r)["queues"]), role="admin",
                idempotent=True)


def get_queue(command: str) -> Call[JSON]:
    """``GET /admin/queues/{command}``: ready, delayed, inProgress, dlq, paused, oldestReadyAt."""
    return Call("GET", f"/admin/queues/{_id(command)}", _json, role="admin", idempotent=True)


def list_dlq(command: str, *, limit: int | None = None, cursor: str | None = None
             ) -> Call[JSON]:
    """``GET /admin/queues/{command}/dlq``: ``{"tasks": [...], "nextCursor": ...}``."""
    return Call("GET", f"/admin/queues/{_id(command)}/dlq", _json, role="admin",
                params=_compact(limit=limit, cursor=cursor), idempotent=True)


def redrive(command: str, *, ids: Sequence[str] | None = None, limit: int | None = None
            ) -> Call[JSON]:
    """``POST /admin/queues/{command}/dlq/redrive``: ``{"redriven": n}``."""
    return Call("POST", f"/admin/queues/{_id(command)}/dlq/redrive", _json, role="admin",
                body=_compact(ids=list(ids) if ids is not None else None, limit=limit),
                idempotent=ids is not None)


def pause_queue(command: str) -> Call[JSON]:
    """``POST /admin/queues/{command}/pause``: the queue's stats."""
    return Call("POST", f"/admin/queues/{_id(command)}/pause", _json, role="admin", body={},
                idempotent=True)


def resume_queue(command: str) -> Call[JSON]:
    """``POST /admin/queues/{command}/resume``: the queue's stats."""
    return Call("POST", f"/admin/queues/{_id(command)}/resume", _json, role="admin", body={},
                idempotent=True)


def cleanup(*, limit: int | None = None, before: datetime | str | None = None,
            command: str | None = None) -> Call[JSON]:
    """``POST /admin/tasks/cleanup``: ``{"deleted", "before", "limit"}``."""
    return Call("POST", "/admin/tasks/cleanup", _json, role="admin",
                body=_compact(limit=limit, before=_time(before), command=command),
                idempotent=True)


# -- probes -------------------------------------------------------------------------
def healthz() -> Call[JSON]:
    """``GET /healthz``: ``{"status": "ok"}`` while the process is alive."""
    return Call("GET", "/healthz", _json, role="none", idempotent=True)


def readyz() -> Call[JSON]:
    """``GET /readyz``: succeeds when the store answers (ServiceUnavailable otherwise)."""
    return Call("GET", "/readyz", _json, role="none", idempotent=True)


def metrics() -> Call[str]:
    """``GET /metrics``: Prometheus text."""
    return Call("GET", "/metrics", _text, role="none", idempotent=True)


#: Routes outside ``/v1/codeq``.
ROOT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
