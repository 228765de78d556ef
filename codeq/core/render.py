"""Domain objects as JSON-ready dicts: camelCase keys, RFC 3339 times with offset."""

from __future__ import annotations

import functools
import math
from datetime import datetime, tzinfo
from typing import Any

from codeq.core.domain import QueueStats, ResultRecord, Task


@functools.lru_cache(maxsize=1024)
def _second(whole: float, tz: tzinfo) -> tuple[str, str]:
    """``("2030-01-01T12:00:00", "+00:00")`` for a whole second: the offset is one for the
    whole second, so only the milliseconds differ between the times within it."""
    text = datetime.fromtimestamp(whole, tz).isoformat(timespec="seconds")
    return text[:19], text[19:]


@functools.lru_cache(maxsize=4096)
def timestamp(value: float | None, tz: tzinfo) -> str | None:
    """``datetime.fromtimestamp(value, tz).isoformat(timespec="milliseconds")``, with the
    same rounding (microseconds half to even, then cut to milliseconds), at a fraction of
    its cost: a task's answer holds up to seven times. Remembered, because the tasks of a
    batch share most of theirs (created together, claimed under one lease)."""
    if value is None:
        return None
    fraction, whole = math.modf(value)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    day_and_time, offset = _second(whole, tz)
    return f"{day_and_time}.{micros // 1000:03d}{offset}"


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
