"""Tasks and result records to and from SQLite rows.

JSON is encoded with orjson. A value orjson refuses (an integer beyond 64 bits,
which Python's JSON parser accepts in a request) is written by the standard
library instead, behind one leading space: still valid JSON for anyone who
inspects the file, and the mark that tells ``loads`` to use the parser that
reads it back exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from codeq.core.domain import Artifact, BackoffSpec, HistoryEntry, ResultRecord, Status, Task
from codeq.core.errors import InvalidInput
from codeq_sqlite.schema import Where

#: The columns every task query selects, in the order ``decode_task`` reads them.
TASK_COLUMNS = ("seq, queue, qseq, id, command, payload, priority, max_attempts, created_at, "
                "updated_at, status, attempts, worker_id, lease_id, lease_until, webhook, error, "
                "run_at, visible_at, idempotency_key, backoff, cancel_requested, dead_lettered, "
                "finished_at, history")

#: Positions in a ``TASK_COLUMNS`` row of the columns a claim orders by.
QSEQ, PRIORITY = 2, 6

INSERT_TASK = (
    "INSERT INTO tasks (queue, qseq, id, command, payload, priority, max_attempts, created_at, "
    "updated_at, status, attempts, worker_id, lease_id, lease_until, webhook, error, run_at, "
    "visible_at, idempotency_key, backoff, cancel_requested, dead_lettered, finished_at, history) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

#: Everything a transition may change; the other columns are fixed at creation.
UPDATE_TASK = (
    "UPDATE tasks SET queue = ?, qseq = ?, status = ?, attempts = ?, worker_id = ?, lease_id = ?, "
    "lease_until = ?, updated_at = ?, error = ?, visible_at = ?, cancel_requested = ?, "
    "dead_lettered = ?, finished_at = ?, history = ? WHERE seq = ?")

INSERT_RESULT = ("INSERT INTO results (task_id, status, result, error, artifacts, completed_at, "
                 "worker_id) VALUES (?, ?, ?, ?, ?, ?, ?)")
SELECT_RESULT = ("SELECT task_id, status, result, error, artifacts, completed_at, worker_id "
                 "FROM results WHERE task_id = ?")

#: Largest value an SQLite INTEGER holds; cursors beyond it are not ours.


def dumps(value: Any, what: str = "value") -> str:
    """A JSON value as text, exactly as it will be read back; ``InvalidInput`` naming
    ``what`` when it is nested too deeply for Python's JSON encoder to write."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        try:
            return " " + json.dumps(value, separators=(",", ":"))
        except RecursionError:
            raise InvalidInput(f"{what} is nested too deeply to be stored") from None


def loads(text: str) -> Any:
    return json.loads(text) if text.startswith(" ") else orjson.loads(text)


@dataclass(slots=True)
class Row:
    """A task as stored: its row id, the queue it is in and its place there."""

    seq: int
    where: Where
    qseq: int | None
    task: Task


def decode_task(row: tuple[Any, ...]) -> Row:
    (seq, queue, qseq, task_id, command, payload, priority, max_attempts, created_at, updated_at,
     status, attempts, worker_id, lease_id, lease_until, webhook, error, run_at, visible_at,
     idempotency_key, backoff, cancel_requested, dead_lettered, finished_at, history) = row
    spec = orjson.loads(backoff) if backoff is not None else None
    task = Task(
        id=task_id, command=command, payload=loads(payload), priority=priority,
        max_attempts=max_attempts, created_at=created_at, updated_at=updated_at,
        status=Status(status), attempts=attempts, worker_id=worker_id, lease_id=lease_id,
        lease_until=lease_until, webhook=webhook, error=error, run_at=run_at,
        visible_at=visible_at, idempotency_key=idempotency_key,
        backoff=BackoffSpec(*spec) if spec is not None else None,
        cancel_requested=bool(cancel_requested), dead_lettered=bool(dead_lettered),
        finished_at=finished_at,
        history=[HistoryEntry(**entry) for entry in orjson.loads(history)],
    )
    return Row(seq, Where(queue), qseq, task)


def insert_params(task: Task, where: Where, qseq: int | None) -> tuple[Any, ...]:
    backoff = task.backoff
    return (where, qseq, task.id, task.command, dumps(task.payload, "payload"), task.priority,
            task.max_attempts, task.created_at, task.updated_at, task.status.value, task.attempts,
            task.worker_id, task.lease_id, task.lease_until, task.webhook, task.error, task.run_at,
            task.visible_at, task.idempotency_key,
            orjson.dumps([backoff.policy, backoff.base_seconds, backoff.max_seconds]).decode()
            if backoff is not None else None,
            task.cancel_requested, task.dead_lettered, task.finished_at,
            orjson.dumps(task.history).decode())


def update_params(row: Row) -> tuple[Any, ...]:
    task = row.task
    return (row.where, row.qseq, task.status.value, task.attempts, task.worker_id, task.lease_id,
            task.lease_until, task.updated_at, task.error, task.visible_at, task.cancel_requested,
            task.dead_lettered, task.finished_at, orjson.dumps(task.history).decode(), row.seq)


def result_params(record: ResultRecord) -> tuple[Any, ...]:
    return (record.task_id, record.status.value, dumps(record.result, "result"), record.error,
            orjson.dumps(record.artifacts).decode(), record.completed_at, record.worker_id)


def decode_result(row: tuple[Any, ...]) -> ResultRecord:
    task_id, status, result, error, artifacts, completed_at, worker_id = row
    return ResultRecord(task_id=task_id, status=Status(status), result=loads(result), error=error,
                        artifacts=[Artifact(**a) for a in orjson.loads(artifacts)],
                        completed_at=completed_at, worker_id=worker_id)
