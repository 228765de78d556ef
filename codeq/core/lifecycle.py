"""The task lifecycle as pure functions on ``Task``.

Stores call these inside their own atomic step (a lock, a transaction), so the
rules live in one place; the Redis Lua scripts mirror them and the contract
suite holds every backend to the same results. Each function either changes
the task and returns, or raises a domain error and leaves the task untouched.
"""

from __future__ import annotations

from codeq.core.domain import Callback, Outcome, ResultRecord, Status, Task
from codeq.core.errors import Conflict, Forbidden
from codeq.core.jsontext import canonical

MAX_ATTEMPTS_ERROR = "MAX_ATTEMPTS"
LEASE_EXPIRED = "LEASE_EXPIRED"


def claim(task: Task, *, worker_id: str, lease_id: str, lease_seconds: float, now: float) -> None:
    task.status = Status.IN_PROGRESS
    task.attempts += 1
    task.worker_id = worker_id
    task.lease_id = lease_id
    task.lease_until = now + lease_seconds
    task.updated_at = now
    task.record(now, "claimed", worker_id)


def check_lease(task: Task, *, worker_id: str | None, lease_id: str | None) -> None:
    """Refuse unless ``task`` is IN_PROGRESS, owned by ``worker_id`` and (when given) on ``lease_id``."""
    if task.status is not Status.IN_PROGRESS:
        raise Conflict(f"task {task.id} is {task.status.value}, not IN_PROGRESS", status=task.status.value)
    if worker_id is not None and task.worker_id != worker_id:
        raise Forbidden(f"task {task.id} is leased by another worker")
    if lease_id is not None and lease_id != task.lease_id:
        raise Conflict(f"leaseId {lease_id} is not the current lease of task {task.id}; "
                       "the lease expired and the task was delivered again")


def heartbeat(task: Task, *, worker_id: str | None, lease_id: str | None, lease_seconds: float,
              now: float) -> None:
    check_lease(task, worker_id=worker_id, lease_id=lease_id)
    task.lease_until = now + lease_seconds
    task.updated_at = now


def _requeue(task: Task, *, delay_seconds: float, now: float, event: str, reason: str | None,
             count_attempts: bool) -> Outcome:
    worker_id = task.worker_id
    task.lease_id = None
    task.lease_until = None
    task.updated_at = now
    if task.cancel_requested:
        task.status = Status.CANCELLED
        task.finished_at = now
        task.record(now, event, worker_id, reason)
        task.record(now, "cancelled", None, "cancel requested while running")
        return Outcome.CANCELLED
    if count_attempts and task.attempts >= task.max_attempts:
        task.status = Status.FAILED
        task.error = MAX_ATTEMPTS_ERROR
        task.dead_lettered = True
        task.finished_at = now
        task.record(now, event, worker_id, reason)
        task.record(now, "dead_lettered", None, MAX_ATTEMPTS_ERROR)
        return Outcome.DLQ
    task.status = Status.PENDING
    task.worker_id = None
    if reason is not None:
        task.error = reason
    task.visible_at = now + delay_seconds if delay_seconds > 0 else None
    task.record(now, event, worker_id, reason)
    return Outcome.REQUEUED


def nack(task: Task, *, worker_id: str | None, lease_id: str | None, delay_seconds: float,
         reason: str | None, now: float) -> Outcome:
    check_lease(task, worker_id=worker_id, lease_id=lease_id)
    return _requeue(task, delay_seconds=delay_seconds, now=now, event="nacked", reason=reason,
                    count_attempts=True)


def abandon(task: Task, *, worker_id: str | None, lease_id: str | None, now: float) -> Outcome:
    """Give the task back now: same priority, attempts unchanged, never to the DLQ."""
    check_lease(task, worker_id=worker_id, lease_id=lease_id)
    return _requeue(task, delay_seconds=0, now=now, event="abandoned", reason=None,
                    count_attempts=False)


def lease_expired(task: Task, *, lease_id: str, now: float) -> bool:
    """True when ``task`` still holds ``lease_id`` and that lease has run out."""
    return (task.status is Status.IN_PROGRESS and task.lease_id == lease_id
            and task.lease_until is not None and task.lease_until <= now)


def expire(task: Task, *, delay_seconds: float, now: float) -> Outcome:
    """Retry a task whose lease ran out, exactly like a NACK with reason LEASE_EXPIRED."""
    return _requeue(task, delay_seconds=delay_seconds, now=now, event="lease_expired",
                    reason=LEASE_EXPIRED, count_attempts=True)


def same_submission(stored: ResultRecord, submitted: ResultRecord) -> bool:
    """The same worker sending the same record; results compare as JSON (``1``, ``1.0`` and
    ``true`` are equal in Python, not here)."""
    return (stored.worker_id == submitted.worker_id and stored.status == submitted.status
            and canonical(stored.result) == canonical(submitted.result)
            and stored.error == submitted.error and stored.artifacts == submitted.artifacts)


def complete(task: Task, *, stored: ResultRecord | None, submitted: ResultRecord,
             lease_id: str | None, now: float) -> bool:
    """Finish ``task`` with ``submitted``; False when it is a repeat of ``stored``.

    ``submitted.worker_id`` is the caller. A repeat of the same submission by
    the same worker is accepted without change so that workers may retry.
    """
    if stored is not None:
        if same_submission(stored, submitted):
            return False
        raise Conflict(f"task {task.id} already has a result", status=task.status.value)
    check_lease(task, worker_id=submitted.worker_id, lease_id=lease_id)
    task.status = submitted.status
    task.error = submitted.error
    task.lease_id = None
    task.lease_until = None
    task.updated_at = now
    task.finished_at = now
    submitted.completed_at = now
    task.record(now, submitted.status.value.lower(), submitted.worker_id, submitted.error)
    return True


def cancel(task: Task, *, now: float) -> None:
    """PENDING -> CANCELLED; IN_PROGRESS -> cancel requested; terminal -> 409."""
    if task.status.terminal:
        raise Conflict(f"task {task.id} is already {task.status.value}", status=task.status.value)
    task.updated_at = now
    if task.status is Status.PENDING:
        task.status = Status.CANCELLED
        task.finished_at = now
        task.record(now, "cancelled")
    elif not task.cancel_requested:
        task.cancel_requested = True
        task.record(now, "cancel_requested", task.worker_id)


def promote(task: Task, *, now: float) -> None:
    task.updated_at = now
    task.record(now, "promoted")


def redrive(task: Task, *, now: float) -> None:
    task.status = Status.PENDING
    task.attempts = 0
    task.dead_lettered = False
    task.error = None
    task.worker_id = None
    task.finished_at = None
    task.visible_at = None
    task.updated_at = now
    task.record(now, "redriven")


def callback(task: Task, *, now: float) -> Callback | None:
    """The result callback a transition owes, written in the same atomic step.

    A task with a ``webhook`` that just ended COMPLETED or FAILED (dead-lettered
    included) gets one; a cancelled task does not.
    """
    if task.webhook is None or task.status not in (Status.COMPLETED, Status.FAILED):
        return None
    return Callback(task_id=task.id, url=task.webhook, attempts=0, due_at=now)
