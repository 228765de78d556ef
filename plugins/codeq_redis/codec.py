"""Tasks, result records, callbacks and subscriptions as Redis values.

A task is a hash of text fields (an absent field is None; numbers are the
``repr`` of the float, so they come back bit for bit) plus a history list of
JSON ``[at, event, workerId, reason]`` entries. The payload is kept as the
JSON text it was sent as and never decoded by a script.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

from codeq.core.domain import (
    Artifact,
    BackoffSpec,
    Callback,
    DeliveryMode,
    HistoryEntry,
    ResultRecord,
    Status,
    Subscription,
    Task,
)
from codeq.core.errors import InvalidInput
from codeq.core.jsontext import loads


def num(value: float) -> str:
    return repr(float(value))


def dumps(value: Any) -> str:
    """Compact JSON; UTF-8 text is kept as is (scripts pass it through untouched)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # a lone surrogate or an integer beyond 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def dumps_ascii(value: Any, what: str = "value") -> str:
    """JSON for user values (payloads, results): UTF-8, or escaped to ASCII when a string
    is not valid UTF-8 (a lone surrogate from a ``\\ud800`` escape), so any string survives.
    ``InvalidInput`` naming ``what`` when it is nested too deeply for Python's encoder."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        try:
            return json.dumps(value, separators=(",", ":"))
        except RecursionError:
            raise InvalidInput(f"{what} is nested too deeply to be stored") from None


def history_entry(entry: HistoryEntry) -> str:
    return dumps([num(entry.at), entry.event, entry.worker_id, entry.reason])


def task_fields(task: Task) -> dict[str, str]:
    """The hash fields of everything set on ``task`` (history apart)."""
    fields: dict[str, str | None] = {
        "id": task.id,
        "command": task.command,
        "payload": dumps_ascii(task.payload, "payload"),
        "priority": str(task.priority),
        "max_attempts": str(task.max_attempts),
        "created_at": num(task.created_at),
        "updated_at": num(task.updated_at),
        "status": task.status.value,
        "attempts": str(task.attempts),
        "worker_id": task.worker_id,
        "lease_id": task.lease_id,
        "lease_until": None if task.lease_until is None else num(task.lease_until),
        "webhook": task.webhook,
        "error": task.error,
        "run_at": None if task.run_at is None else num(task.run_at),
        "visible_at": None if task.visible_at is None else num(task.visible_at),
        "idempotency_key": task.idempotency_key,
        "backoff": None if task.backoff is None else dumps(
            [task.backoff.policy, task.backoff.base_seconds, task.backoff.max_seconds]),
        "cancel_requested": "1" if task.cancel_requested else None,
        "dead_lettered": "1" if task.dead_lettered else None,
        "finished_at": None if task.finished_at is None else num(task.finished_at),
    }
    return {name: value for name, value in fields.items() if value is not None}


def _float(fields: dict[str, str], name: str) -> float | None:
    value = fields.get(name)
    return None if value is None else float(value)


def decode_task(fields: dict[str, str], history: Sequence[str]) -> Task:
    backoff = fields.get("backoff")
    policy = loads(backoff) if backoff is not None else None
    entries = loads(f"[{','.join(history)}]")  # one parse for the whole timeline
    return Task(
        id=fields["id"],
        command=fields["command"],
        payload=loads(fields["payload"]),
        priority=int(fields["priority"]),
        max_attempts=int(fields["max_attempts"]),
        created_at=float(fields["created_at"]),
        updated_at=float(fields["updated_at"]),
        status=Status(fields["status"]),
        attempts=int(fields.get("attempts", "0")),
        worker_id=fields.get("worker_id"),
        lease_id=fields.get("lease_id"),
        lease_until=_float(fields, "lease_until"),
        webhook=fields.get("webhook"),
        error=fields.get("error"),
        run_at=_float(fields, "run_at"),
        visible_at=_float(fields, "visible_at"),
        idempotency_key=fields.get("idempotency_key"),
        backoff=None if policy is None else BackoffSpec(policy[0], policy[1], policy[2]),
        cancel_requested=fields.get("cancel_requested") == "1",
        dead_lettered=fields.get("dead_lettered") == "1",
        finished_at=_float(fields, "finished_at"),
        history=[HistoryEntry(float(at), event, worker, reason)
                 for at, event, worker, reason in entries],
    )


def decode_dumped(dumped: Sequence[Any]) -> Task:
    """A task as a script returns it: ``[HGETALL flat list, LRANGE history]``."""
    flat, history = dumped
    return decode_task(dict(zip(flat[::2], flat[1::2], strict=True)), history)


def result_json(record: ResultRecord) -> str:
    return dumps_ascii({
        "taskId": record.task_id,
        "status": record.status.value,
        "result": record.result,
        "error": record.error,
        "artifacts": [[a.name, a.url, a.content_type] for a in record.artifacts],
        "completedAt": record.completed_at,
        "workerId": record.worker_id,
    }, "result")


def decode_result(text: str) -> ResultRecord:
    data = loads(text)
    return ResultRecord(
        task_id=data["taskId"],
        status=Status(data["status"]),
        result=data["result"],
        error=data["error"],
        artifacts=[Artifact(name, url, content_type) for name, url, content_type in
                   data["artifacts"]],
        completed_at=data["completedAt"],
        worker_id=data["workerId"],
    )


def callback_json(callback: Callback) -> str:
    """An outbox entry's data; its ``due_at`` is the score in the outbox sorted set."""
    return dumps([callback.url, callback.attempts])


def decode_callback(task_id: str, data: str, due_at: float) -> Callback:
    url, attempts = loads(data)
    return Callback(task_id=task_id, url=url, attempts=int(attempts), due_at=due_at)


def subscription_json(subscription: Subscription) -> str:
    """A subscription; its ``expires_at`` is the score in the expiry sorted set."""
    return dumps({
        "id": subscription.id,
        "owner": subscription.owner,
        "callbackUrl": subscription.callback_url,
        "eventTypes": subscription.event_types,
        "deliveryMode": subscription.delivery_mode.value,
        "groupId": subscription.group_id,
        "minIntervalSeconds": subscription.min_interval_seconds,
        "createdAt": subscription.created_at,
    })


def decode_subscription(text: str, expires_at: float) -> Subscription:
    data = loads(text)
    return Subscription(
        id=data["id"],
        owner=data["owner"],
        callback_url=data["callbackUrl"],
        event_types=data["eventTypes"],
        delivery_mode=DeliveryMode(data["deliveryMode"]),
        group_id=data["groupId"],
        min_interval_seconds=data["minIntervalSeconds"],
        created_at=data["createdAt"],
        expires_at=expires_at,
    )
