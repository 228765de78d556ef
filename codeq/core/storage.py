"""The storage contract.

Every backend implements ``Storage``; ``codeq.testing.contract`` is the test
suite that defines "correct". Each method is one atomic step in the store: a
crash at any instant leaves each task in exactly one queue with a status that
matches it. Methods that change a task apply the rules of
``codeq.core.lifecycle`` inside that step (or mirror them, as Lua does).

Queues of a command, as a store keeps them:

- *ready*: PENDING tasks that may be claimed, ordered by priority (9 first),
  then by the time they became ready (FIFO), across every command;
- *delayed*: PENDING tasks with a future ``visible_at``; a delayed task whose
  time has come counts as ready (``claim`` and ``queue_stats`` treat it so)
  even before ``promote_due`` moves it;
- *in progress*: IN_PROGRESS tasks ordered by ``lease_until``;
- *DLQ*: tasks that failed with ``MAX_ATTEMPTS``, oldest first.

Result callbacks: every step that ends a task with a ``webhook`` COMPLETED or
FAILED (``complete``, a ``nack`` or ``expire_lease`` that dead-letters) also
writes ``lifecycle.callback(task)`` to the store's *outbox*, in the same
atomic step, so a crash cannot separate the outcome from its callback.

Every method takes ``now`` from the caller (an injectable clock), never from
the wall. Errors are the ones of ``codeq.core.errors``: ``NotFound`` for an
unknown id, ``Conflict`` / ``Forbidden`` as the lifecycle functions raise
them, ``StoreUnavailable`` when the store does not answer.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, TypeAlias

from codeq.core import ids
from codeq.core.domain import (
    Callback,
    Outcome,
    Page,
    QueueStats,
    ResultRecord,
    Status,
    Subscription,
    Task,
)
from codeq.core.errors import CodeqError, InvalidInput, StoreUnavailable
from codeq.core.wakeup import AvailabilityFeed, ReadySignal

#: One result of a batch: ``(task_id, result, lease_id)``.
Completion: TypeAlias = tuple[str, ResultRecord, str | None]
#: The largest listing position a store makes (a 64-bit integer).
MAX_POSITION = 2**63 - 1


def cursor_number(digits: str) -> int | None:
    """The listing position ``digits`` names, or None when no store made it: ASCII digits
    only (``str.isdigit`` also takes ``²``, which ``int`` refuses), at most a 64-bit integer
    (``int`` refuses text of over 4,300 digits)."""
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        return None
    number = int(digits)
    return number if number <= MAX_POSITION else None


def cursor_at(prefix: str, position: int) -> str:
    """The cursor of the page after ``position``, as ``cursor_position`` reads it."""
    return f"{prefix}{position}"


def cursor_position(prefix: str, cursor: str | None) -> int:
    """The position after which a page starts, from a ``<prefix><digits>`` cursor (-1 for
    the first page); ``InvalidInput`` for a cursor this listing did not produce."""
    if cursor is None:
        return -1
    found = cursor_number(cursor[len(prefix):]) if cursor.startswith(prefix) else None
    if found is None:
        raise InvalidInput(f"cursor {cursor[:64]!r} is not one this listing produced; "
                           "pass the nextCursor of the previous page")
    return found


def _item_outcome(reply: Any) -> Any:
    """A batch item's answer or refusal; anything else (the store is down, a bug) is raised."""
    if isinstance(reply, StoreUnavailable) or (
            isinstance(reply, BaseException) and not isinstance(reply, CodeqError)):
        raise reply
    return reply


class Storage(ABC):
    """A codeq store. Construct cheaply; connect in ``open``."""

    #: Human-readable name used in logs and ``codeq plugins``.
    name: str = "storage"

    def __init__(self) -> None:
        #: Notified (``ready.notify(command)``) after every step that may make
        #: work ready for a command: create of a ready task, requeue without
        #: delay, promotion, redrive, resume.
        self.ready = ReadySignal()
        #: Emitted (``available.emit(command)``) by the step that put a task into
        #: ``command``'s ready queue while that queue was empty: a create, a
        #: requeue without delay, a promotion or a redrive. Only the process that
        #: made the step emits, so each transition is announced once.
        self.available = AvailabilityFeed()

    async def open(self) -> None:
        """Connect / create files and schema. Called once before any other method."""

    async def close(self) -> None:
        """Release connections and threads. The store is not used afterwards."""

    @abstractmethod
    async def ping(self) -> None:
        """Return when the store answers; raise ``StoreUnavailable`` otherwise."""

    def new_task_id(self, command: str) -> str:
        """A fresh task id: a UUID carrying the cluster slot of ``command``
        (``codeq.core.ids``), so the task can move to a Redis Cluster as it is."""
        return ids.new_task_id(command)

    # -- producers -------------------------------------------------------
    @abstractmethod
    async def create(self, task: Task, *, now: float) -> tuple[Task, bool]:
        """Store a new PENDING task; ready, or delayed when ``task.visible_at > now``.

        When ``task.idempotency_key`` is set and a task of the same command
        with that key exists, nothing is created and ``(existing, False)`` is
        returned; otherwise ``(task, True)``.
        """

    async def create_many(self, tasks: Sequence[Task], *, now: float) -> list[tuple[Task, bool]]:
        """``create`` for each task in order; backends may do it in one step."""
        return [await self.create(task, now=now) for task in tasks]

    @abstractmethod
    async def get(self, task_id: str) -> Task | None:
        """The task, or None."""

    @abstractmethod
    async def get_result(self, task_id: str) -> ResultRecord | None:
        """The result record of a task, or None while there is none."""

    @abstractmethod
    async def list_tasks(self, *, command: str | None, status: Status | None, limit: int,
                         cursor: str | None) -> Page:
        """Tasks in creation order, filtered; ``cursor`` is an opaque value from a previous page.

        A cursor this store did not produce raises ``InvalidInput``.
        """

    @abstractmethod
    async def cancel(self, task_id: str, *, now: float) -> Task:
        """``lifecycle.cancel``; a cancelled PENDING task leaves its queue."""

    # -- workers ---------------------------------------------------------
    @abstractmethod
    async def claim(self, commands: Sequence[str] | None, *, worker_id: str,
                    lease_seconds: float, count: int, now: float) -> list[Task]:
        """Lease up to ``count`` ready tasks of ``commands`` (None: every command).

        Highest priority first across the commands, FIFO within a command and
        priority, no command of equal priority starved (oldest ready first).
        Paused commands hand out nothing. Each claimed task gets a fresh
        ``lease_id`` and goes through ``lifecycle.claim``. Returns copies.
        """

    @abstractmethod
    async def heartbeat(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                        lease_seconds: float, now: float) -> Task:
        """``lifecycle.heartbeat``: the lease now ends at ``now + lease_seconds``."""

    @abstractmethod
    async def abandon(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                      now: float) -> tuple[Task, Outcome]:
        """``lifecycle.abandon``: back to ready now (or CANCELLED if cancel was requested)."""

    @abstractmethod
    async def nack(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                   delay_seconds: float, reason: str | None, now: float) -> tuple[Task, Outcome]:
        """``lifecycle.nack``: delayed by ``delay_seconds`` (ready when 0), DLQ or CANCELLED."""

    @abstractmethod
    async def complete(self, task_id: str, *, result: ResultRecord, lease_id: str | None,
                       now: float) -> tuple[ResultRecord, str | None]:
        """``lifecycle.complete`` with the stored result; stores ``result`` when new.

        Returns the record and, when this call stored it, the task's command
        (so callers can count it without reading the task again); None for a
        repeat of the same submission.
        """

    async def complete_many(self, items: Sequence[Completion], *, now: float
                            ) -> list[tuple[ResultRecord, str | None] | CodeqError]:
        """``complete`` for each ``(task_id, result, lease_id)``, answers in input order.

        Each item succeeds or fails on its own: a refused one (``NotFound``,
        ``Conflict``, ``Forbidden``) has its error in its place. Only
        ``StoreUnavailable`` fails the whole batch, so the caller can send it
        again. This default runs the items concurrently, which a store that
        commits concurrent writes together (SQLite) turns into a few commits;
        stores with round trips override it to send a batch at once.
        """
        replies = await asyncio.gather(
            *(self.complete(task_id, result=result, lease_id=lease_id, now=now)
              for task_id, result, lease_id in items), return_exceptions=True)
        return [_item_outcome(reply) for reply in replies]

    # -- background work -------------------------------------------------
    @abstractmethod
    async def promote_due(self, *, now: float, limit: int) -> list[str]:
        """Move up to ``limit`` delayed tasks whose time has come to ready; return their commands."""

    @abstractmethod
    async def expired_leases(self, *, now: float, limit: int) -> list[Task]:
        """Up to ``limit`` IN_PROGRESS tasks whose lease ended at or before ``now``, oldest first."""

    @abstractmethod
    async def expire_lease(self, task_id: str, *, lease_id: str, delay_seconds: float,
                           now: float) -> Outcome | None:
        """``lifecycle.expire`` if the task still holds ``lease_id`` and it has run out.

        Returns None (and changes nothing) when the task moved on meanwhile, so
        that several reapers never expire one lease twice.
        """

    @abstractmethod
    async def cleanup(self, *, finished_before: float, limit: int, command: str | None
                      ) -> list[str]:
        """Delete up to ``limit`` terminal tasks finished before ``finished_before``.

        Removes every trace: record, result, queue entries, idempotency key,
        outbox entry. Returns the ids deleted (the caller removes artifacts).
        """

    # -- operators -------------------------------------------------------
    @abstractmethod
    async def commands(self) -> list[str]:
        """Every command ever used (or paused), sorted."""

    @abstractmethod
    async def queue_stats(self, command: str, *, now: float) -> QueueStats:
        """Depths of one command's queues and when its oldest ready task became ready
        (``QueueStats``), read without a scan of any queue; zeros for a command never used."""

    async def all_queue_stats(self, *, now: float) -> list[QueueStats]:
        return [await self.queue_stats(c, now=now) for c in await self.commands()]

    @abstractmethod
    async def dlq(self, command: str, *, limit: int, cursor: str | None) -> Page:
        """Dead-lettered tasks of ``command``, oldest first."""

    @abstractmethod
    async def redrive(self, command: str, *, ids: Sequence[str] | None, limit: int,
                      now: float) -> int:
        """``lifecycle.redrive`` the given DLQ tasks (ids not in this DLQ are skipped),
        or the oldest ``limit`` when ``ids`` is None. Returns how many moved."""

    @abstractmethod
    async def set_paused(self, command: str, paused: bool) -> None:
        """Pause or resume handing out ``command``'s tasks; records the command as known."""

    # -- worker availability subscriptions ---------------------------------------
    @abstractmethod
    async def save_subscription(self, subscription: Subscription) -> None:
        """Store a new subscription (or replace one with the same id)."""

    @abstractmethod
    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        """The subscription, expired or not, or None."""

    @abstractmethod
    async def renew_subscription(self, subscription_id: str, *, expires_at: float) -> bool:
        """Move the expiry of an existing subscription; False when there is none."""

    @abstractmethod
    async def delete_subscription(self, subscription_id: str) -> bool:
        """Remove it; False when there was none."""

    @abstractmethod
    async def subscriptions(self, *, now: float) -> list[Subscription]:
        """Every subscription that has not expired at ``now``, ordered by id."""

    @abstractmethod
    async def sweep_subscriptions(self, *, now: float, limit: int) -> int:
        """Delete up to ``limit`` subscriptions expired at ``now``; return how many."""

    @abstractmethod
    async def mark_notified(self, subscription_id: str, *, now: float,
                            min_interval_seconds: float) -> bool:
        """Claim the right to notify a subscription at ``now``.

        True (and ``now`` remembered) unless it was notified less than
        ``min_interval_seconds`` ago; atomic, so server processes sharing the
        store throttle together.
        """

    @abstractmethod
    async def next_turn(self, key: str) -> int:
        """An atomic counter (1, 2, 3, ...) per ``key``: whose turn it is in a group."""

    # -- result callback outbox -------------------------------------------------------
    @abstractmethod
    async def due_callbacks(self, *, now: float, limit: int, hold_seconds: float
                            ) -> list[Callback]:
        """Take up to ``limit`` outbox entries due at ``now``, oldest due first.

        Each one taken is held: its ``due_at`` moves to ``now + hold_seconds`` in
        the same step, so no other dispatcher sends that attempt meanwhile. The
        returned entries carry the ``due_at`` they had when taken.
        """

    @abstractmethod
    async def callback_attempted(self, task_id: str, *, attempts: int,
                                 retry_at: float | None) -> bool:
        """Record the delivery attempt made on an entry taken with ``attempts``.

        ``retry_at`` None removes the entry (delivered, or given up); otherwise
        ``attempts`` goes up by one and the entry is due at ``retry_at``. False
        (and nothing changed) when the entry is gone or its attempts moved on.
        """

    @abstractmethod
    async def outbox_size(self) -> int:
        """How many callbacks wait in the outbox."""

    @abstractmethod
    async def callbacks(self) -> list[Callback]:
        """Every outbox entry, ordered by task id (for migration and inspection)."""

    @abstractmethod
    async def restore_callback(self, callback: Callback) -> None:
        """Put an outbox entry as it is (replacing one for the same task)."""

    # -- migration -------------------------------------------------------------
    @abstractmethod
    async def restore(self, task: Task, result: ResultRecord | None) -> bool:
        """Insert a task exactly as it is, in the queue its state says, with its result.

        Keeps every field (status, attempts, lease, times, history) and the
        idempotency key; a later ``list_tasks`` shows restored tasks in the
        order they were restored. False, changing nothing, when a task with
        that id exists already (so an interrupted copy can simply run again).
        """

    async def restore_many(self, items: Sequence[tuple[Task, ResultRecord | None]]
                           ) -> list[bool]:
        """``restore`` for each item in order; backends may do it in one step."""
        return [await self.restore(task, result) for task, result in items]
