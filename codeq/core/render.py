"""Domain objects as JSON-ready dicts: camelCase keys, RFC 3339 times with offset."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from codeq.core.domain import QueueStats, ResultRecord, Task


def timestamp(value: float | None, tz: tzinfo) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz).isoformat(timespec="milliseconds")


def task(t: Task, tz: tzinfo, *, lease: bool = False, history: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": t.id,
        "command": t.command,
        "payload": t.payload,
        "priority": t.priority,
        "status": t.status.value,
        "attempts": t.attempts,
        "maxAttempts": t.max_attempts,
        "workerId": t.worker_id,
        "leaseUntil": timestamp(t.lease_until, tz),
        "webhook": t.webhook,
        "error": t.error,
        "createdAt": timestamp(t.created_at, tz),
        "updatedAt": timestamp(t.updated_at, tz),
        "runAt": timestamp(t.run_at, tz),
        "visibleAt": timestamp(t.visible_at, tz),
        "idempotencyKey": t.idempotency_key,
        "cancelRequested": t.cancel_requested,
        "deadLettered": t.dead_lettered,
        "finishedAt": timestamp(t.finished_at, tz),
    }
    if t.backoff is not None:
        out["backoff"] = {"policy": t.backoff.policy, "baseSeconds": t.backoff.base_seconds,
                          "maxSeconds": t.backoff.max_seconds}
    if lease:
        out["leaseId"] = t.lease_id
    if history:
        out["history"] = [{"at": timestamp(h.at, tz), "event": h.event, "workerId": h.worker_id,
                           "reason": h.reason} for h in t.history]
    return out


def result(r: ResultRecord, tz: tzinfo) -> dict[str, Any]:
    return {
        "taskId": r.task_id,
        "status": r.status.value,
        "result": r.result,
        "error": r.error,
        "artifacts": [{"name": a.name, "url": a.url, **({"contentType": a.content_type}
                                                        if a.content_type else {})}
                      for a in r.artifacts],
        "completedAt": timestamp(r.completed_at, tz),
    }


def stats(s: QueueStats, tz: tzinfo) -> dict[str, Any]:
    return {"command": s.command, "ready": s.ready, "delayed": s.delayed,
            "inProgress": s.in_progress, "dlq": s.dlq, "paused": s.paused,
            "oldestReadyAt": timestamp(s.oldest_ready_at, tz)}
