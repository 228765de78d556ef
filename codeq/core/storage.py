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

Every method takes ``now`` from the caller (an injectable clock), never from
the wall. Errors are the ones of ``codeq.core.errors``: ``NotFound`` for an
unknown id, ``Conflict`` / ``Forbidden`` as the lifecycle functions raise
them, ``StoreUnavailable`` when the store does not answer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from codeq.core.domain import Outcome, Page, QueueStats, ResultRecord, Status, Task, new_id
from codeq.core.wakeup import ReadySignal


class Storage(ABC):
    """A codeq store. Construct cheaply; connect in ``open``."""

    #: Human-readable name used in logs and ``codeq plugins``.
    name: str = "storage"

    def __init__(self) -> None:
        #: Notified (``ready.notify(command)``) after every step that may make
        #: work ready for a command: create of a ready task, requeue without
        #: delay, promotion, redrive, resume.
        self.ready = ReadySignal()

    async def open(self) -> None:
        """Connect / create files and schema. Called once before any other method."""

    async def close(self) -> None:
        """Release connections and threads. The store is not used afterwards."""

    @abstractmethod
    async def ping(self) -> None:
        """Return when the store answers; raise ``StoreUnavailable`` otherwise."""

    def new_task_id(self, command: str) -> str:
        """A fresh task id (a UUID). Backends may put a routing hint in it."""
        return new_id()

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
                       now: float) -> tuple[ResultRecord, bool]:
        """``lifecycle.complete`` with the stored result; stores ``result`` when new.

        Returns the record and whether it was stored by this call (False for a
        repeat of the same submission).
        """

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
    async def cleanup(self, *, finished_before: float, limit: int, command: str | None) -> int:
        """Delete up to ``limit`` terminal tasks finished before ``finished_before``.

        Removes every trace: record, result, queue entries, idempotency key.
        Returns how many were deleted.
        """

    # -- operators -------------------------------------------------------
    @abstractmethod
    async def commands(self) -> list[str]:
        """Every command ever used (or paused), sorted."""

    @abstractmethod
    async def queue_stats(self, command: str, *, now: float) -> QueueStats:
        """Depths of one command's queues; zeros for a command never used."""

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
