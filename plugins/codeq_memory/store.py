"""``MemoryStorage``: the storage contract in one process's memory.

Every method runs to completion without awaiting, so each one is atomic with
respect to every other on the event loop. The rules of each transition come
from ``codeq.core.lifecycle``; this module only keeps the indexes: which queue
holds a task, in which order, and how to find it again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import count, islice

from codeq.core import lifecycle
from codeq.core.domain import (
    Callback,
    Outcome,
    Page,
    QueueStats,
    ResultRecord,
    Status,
    Subscription,
    Task,
    new_id,
)
from codeq.core.errors import NotFound
from codeq.core.storage import Storage, cursor_at, cursor_position
from codeq_memory.structures import LazyHeap, OrderedLog, merge_heads

LIST_CURSOR = "t"
DLQ_CURSOR = "d"


class Where(Enum):
    """The one queue (or resting place) a task is in."""

    READY = "ready"
    DELAYED = "delayed"
    RUNNING = "in_progress"
    DLQ = "dlq"
    DONE = "done"


@dataclass(slots=True)
class Entry:
    task: Task
    seq: int  # creation order, for list_tasks
    where: Where = Where.DONE
    token: int = 0  # the current placement; heap and log entries with another token are stale


@dataclass(slots=True)
class Queue:
    """One command's queues. ``finished`` holds every terminal task, dead-lettered ones too."""

    ready: LazyHeap  # key (-priority, token): priority desc, then the order tasks became ready
    arrivals: LazyHeap  # the same tasks, key updated_at: when each became ready
    delayed: LazyHeap  # key visible_at
    dlq: OrderedLog  # by the token of the dead-letter placement: oldest first
    finished: LazyHeap  # key finished_at, for cleanup
    running: int = 0
    paused: bool = False


def _copy_result(record: ResultRecord) -> ResultRecord:
    return dataclasses.replace(record, artifacts=[dataclasses.replace(a) for a in record.artifacts])


def _oldest_ready_at(queue: Queue, now: float) -> float | None:
    """The earliest arrival in the ready queue, or the earliest due delayed task's time."""
    times: list[float] = []
    if (arrived := queue.arrivals.peek()) is not None:
        times.append(arrived[0])
    if (due := queue.delayed.peek()) is not None and due[0] <= now:
        times.append(due[0])
    return min(times, default=None)


class MemoryStorage(Storage):
    name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._tasks: dict[str, Entry] = {}
        self._results: dict[str, ResultRecord] = {}
        self._idempotency: dict[tuple[str, str], str] = {}  # (command, key) -> task id
        self._queues: dict[str, Queue] = {}
        self._tokens = count(1)
        self._created = OrderedLog(self._exists)
        self._running = LazyHeap(self._holds)  # key lease_until, every command
        self._subscriptions: dict[str, Subscription] = {}
        self._notified: dict[str, float] = {}  # subscription id -> last notified at
        self._turns: dict[str, int] = {}
        self._outbox: dict[str, Callback] = {}

    # -- indexes -----------------------------------------------------------
    def _exists(self, seq: int, task_id: str) -> bool:
        entry = self._tasks.get(task_id)
        return entry is not None and entry.seq == seq

    def _holds(self, token: int, task_id: str) -> bool:
        entry = self._tasks.get(task_id)
        return entry is not None and entry.token == token

    def _queue(self, command: str) -> Queue:
        queue = self._queues.get(command)
        if queue is None:
            queue = self._queues[command] = Queue(
                ready=LazyHeap(self._holds), arrivals=LazyHeap(self._holds),
                delayed=LazyHeap(self._holds),
                dlq=OrderedLog(self._holds), finished=LazyHeap(self._holds))
        return queue

    def _entry(self, task_id: str) -> Entry:
        entry = self._tasks.get(task_id)
        if entry is None:
            raise NotFound(f"no task with id {task_id}")
        return entry

    def _place(self, entry: Entry, now: float) -> bool:
        """Put the task where its state says it belongs; True when that is the ready queue."""
        task = entry.task
        queue = self._queue(task.command)
        entry.token = token = next(self._tokens)
        if task.status is Status.PENDING:
            if task.visible_at is not None and task.visible_at > now:
                entry.where = Where.DELAYED
                queue.delayed.push(task.visible_at, token, task.id)
                return False
            entry.where = Where.READY
            was_empty = queue.ready.size == 0
            queue.ready.push((-task.priority, token), token, task.id)
            queue.arrivals.push(task.updated_at, token, task.id)
            if was_empty:
                self.available.emit(task.command)
            return True
        if task.status is Status.IN_PROGRESS:
            entry.where = Where.RUNNING
            queue.running += 1
            self._running.push(task.lease_until, token, task.id)
            return False
        entry.where = Where.DLQ if task.dead_lettered else Where.DONE
        if task.dead_lettered:
            queue.dlq.append(token, task.id)
        finished = task.finished_at if task.finished_at is not None else task.updated_at
        queue.finished.push(finished, token, task.id)
        return False

    def _unplace(self, entry: Entry) -> None:
        """Take the task out of its queue: its entries there go stale."""
        queue = self._queue(entry.task.command)
        entry.token = 0
        if entry.where is Where.READY:
            queue.ready.discard()
            queue.arrivals.discard()
        elif entry.where is Where.DELAYED:
            queue.delayed.discard()
        elif entry.where is Where.RUNNING:
            queue.running -= 1
            self._running.discard()
        else:
            if entry.where is Where.DLQ:
                queue.dlq.discard()
            queue.finished.discard()

    def _move(self, entry: Entry, now: float) -> None:
        """Re-file a task after a transition, waking claimers when it became ready."""
        self._unplace(entry)
        if self._place(entry, now):
            self.ready.notify(entry.task.command)

    def _finish(self, entry: Entry, now: float) -> None:
        """Re-file a task after a step that may have ended it, owing its callback."""
        self._move(entry, now)
        callback = lifecycle.callback(entry.task, now=now)
        if callback is not None:
            self._outbox[callback.task_id] = callback

    def _promote(self, entry: Entry, now: float) -> None:
        lifecycle.promote(entry.task, now=now)
        self._move(entry, now)

    # -- lifecycle ---------------------------------------------------------
    async def ping(self) -> None:
        return None

    async def create(self, task: Task, *, now: float) -> tuple[Task, bool]:
        key = (task.command, task.idempotency_key) if task.idempotency_key is not None else None
        if key is not None and key in self._idempotency:
            return self._tasks[self._idempotency[key]].task.copy(), False
        entry = Entry(task=task.copy(), seq=next(self._tokens))
        self._tasks[task.id] = entry
        self._created.append(entry.seq, task.id)
        if key is not None:
            self._idempotency[key] = task.id
        if self._place(entry, now):
            self.ready.notify(task.command)
        return entry.task.copy(), True

    async def get(self, task_id: str) -> Task | None:
        entry = self._tasks.get(task_id)
        return entry.task.copy() if entry is not None else None

    async def get_result(self, task_id: str) -> ResultRecord | None:
        record = self._results.get(task_id)
        return _copy_result(record) if record is not None else None

    async def list_tasks(self, *, command: str | None, status: Status | None, limit: int,
                         cursor: str | None) -> Page:
        after = cursor_position(LIST_CURSOR, cursor)
        found: list[tuple[int, Task]] = []
        for seq, task_id in self._created.after(after):
            task = self._tasks[task_id].task
            if ((command is None or task.command == command)
                    and (status is None or task.status is status)):
                found.append((seq, task))
                if len(found) > limit:
                    break
        page = found[:limit]
        more = len(found) > limit and bool(page)
        return Page(tasks=[task.copy() for _, task in page],
                    next_cursor=cursor_at(LIST_CURSOR, page[-1][0]) if more else None)

    async def cancel(self, task_id: str, *, now: float) -> Task:
        entry = self._entry(task_id)
        lifecycle.cancel(entry.task, now=now)
        if entry.task.status is Status.CANCELLED:
            self._move(entry, now)
        return entry.task.copy()

    async def claim(self, commands: Sequence[str] | None, *, worker_id: str,
                    lease_seconds: float, count: int, now: float) -> list[Task]:
        claimed: list[Task] = []
        if count <= 0:
            return claimed
        names = self._queues if commands is None else dict.fromkeys(commands)
        queues = [q for name in names if (q := self._queues.get(name)) is not None
                  and not q.paused]
        for queue in queues:
            # A delayed task whose time has come counts as ready. Promoting at most
            # ``count`` per command keeps the claim's cost independent of the backlog
            # that the background promoter has not reached yet.
            for _ in range(count):
                head = queue.delayed.peek()
                if head is None or head[0] > now:
                    break
                self._promote(self._tasks[head[2]], now)
        for _, _, task_id in merge_heads([q.ready for q in queues]):
            entry = self._tasks[task_id]
            lifecycle.claim(entry.task, worker_id=worker_id, lease_id=new_id(),
                            lease_seconds=lease_seconds, now=now)
            self._move(entry, now)
            claimed.append(entry.task.copy())
            if len(claimed) == count:
                break
        return claimed

    async def heartbeat(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                        lease_seconds: float, now: float) -> Task:
        entry = self._entry(task_id)
        lifecycle.heartbeat(entry.task, worker_id=worker_id, lease_id=lease_id,
                            lease_seconds=lease_seconds, now=now)
        self._move(entry, now)
        return entry.task.copy()

    async def abandon(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                      now: float) -> tuple[Task, Outcome]:
        entry = self._entry(task_id)
        outcome = lifecycle.abandon(entry.task, worker_id=worker_id, lease_id=lease_id, now=now)
        self._move(entry, now)
        return entry.task.copy(), outcome

    async def nack(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                   delay_seconds: float, reason: str | None, now: float) -> tuple[Task, Outcome]:
        entry = self._entry(task_id)
        outcome = lifecycle.nack(entry.task, worker_id=worker_id, lease_id=lease_id,
                                 delay_seconds=delay_seconds, reason=reason, now=now)
        self._finish(entry, now)
        return entry.task.copy(), outcome

    async def complete(self, task_id: str, *, result: ResultRecord, lease_id: str | None,
                       now: float) -> tuple[ResultRecord, str | None]:
        entry = self._entry(task_id)
        stored = self._results.get(task_id)
        submitted = _copy_result(result)
        if not lifecycle.complete(entry.task, stored=stored, submitted=submitted,
                                  lease_id=lease_id, now=now):
            assert stored is not None  # complete() returns False only for a repeat
            return _copy_result(stored), None
        self._results[task_id] = submitted
        self._finish(entry, now)
        return _copy_result(submitted), entry.task.command

    # -- background work -----------------------------------------------------
    async def promote_due(self, *, now: float, limit: int) -> list[str]:
        promoted: list[str] = []
        if limit <= 0:
            return promoted
        heaps = [q.delayed for q in self._queues.values()]
        for visible_at, _, task_id in merge_heads(heaps):
            if visible_at > now:
                break
            entry = self._tasks[task_id]
            self._promote(entry, now)
            promoted.append(entry.task.command)
            if len(promoted) == limit:
                break
        return promoted

    async def expired_leases(self, *, now: float, limit: int) -> list[Task]:
        return [self._tasks[task_id].task.copy()
                for _, _, task_id in self._running.smallest_upto(now, max(limit, 0))]

    async def expire_lease(self, task_id: str, *, lease_id: str, delay_seconds: float,
                           now: float) -> Outcome | None:
        entry = self._tasks.get(task_id)
        if entry is None or not lifecycle.lease_expired(entry.task, lease_id=lease_id, now=now):
            return None
        outcome = lifecycle.expire(entry.task, delay_seconds=delay_seconds, now=now)
        self._finish(entry, now)
        return outcome

    async def cleanup(self, *, finished_before: float, limit: int, command: str | None
                      ) -> list[str]:
        if command is None:
            heaps = [q.finished for q in self._queues.values()]
        else:
            heaps = [self._queues[command].finished] if command in self._queues else []
        deleted: list[str] = []
        if limit <= 0:
            return deleted
        for finished_at, _, task_id in merge_heads(heaps):
            if finished_at >= finished_before:
                break
            entry = self._tasks[task_id]
            self._unplace(entry)
            del self._tasks[task_id]
            self._created.discard()
            self._results.pop(task_id, None)
            self._outbox.pop(task_id, None)
            key = entry.task.idempotency_key
            if key is not None and self._idempotency.get((entry.task.command, key)) == task_id:
                del self._idempotency[(entry.task.command, key)]
            deleted.append(task_id)
            if len(deleted) == limit:
                break
        return deleted

    # -- operators -----------------------------------------------------------
    async def commands(self) -> list[str]:
        return sorted(self._queues)

    async def queue_stats(self, command: str, *, now: float) -> QueueStats:
        queue = self._queues.get(command)
        if queue is None:
            return QueueStats(command=command, ready=0, delayed=0, in_progress=0, dlq=0,
                              paused=False)
        due = queue.delayed.count_upto(now)
        return QueueStats(command=command, ready=queue.ready.size + due,
                          delayed=queue.delayed.size - due, in_progress=queue.running,
                          dlq=queue.dlq.size, paused=queue.paused,
                          oldest_ready_at=_oldest_ready_at(queue, now))

    async def dlq(self, command: str, *, limit: int, cursor: str | None) -> Page:
        after = cursor_position(DLQ_CURSOR, cursor)
        queue = self._queues.get(command)
        if queue is None:
            return Page(tasks=[], next_cursor=None)
        found = list(islice(queue.dlq.after(after), max(limit, 0) + 1))
        page = found[:limit]
        more = len(found) > limit and bool(page)
        return Page(tasks=[self._tasks[task_id].task.copy() for _, task_id in page],
                    next_cursor=cursor_at(DLQ_CURSOR, page[-1][0]) if more else None)

    async def redrive(self, command: str, *, ids: Sequence[str] | None, limit: int,
                      now: float) -> int:
        queue = self._queues.get(command)
        if queue is None:
            return 0
        if ids is None:
            targets = [task_id for _, task_id in islice(queue.dlq.after(-1), max(limit, 0))]
        else:
            targets = list(ids)
        moved = 0
        for task_id in targets:
            entry = self._tasks.get(task_id)
            if entry is None or entry.where is not Where.DLQ or entry.task.command != command:
                continue
            lifecycle.redrive(entry.task, now=now)
            self._move(entry, now)
            moved += 1
        return moved

    async def set_paused(self, command: str, paused: bool) -> None:
        queue = self._queue(command)
        queue.paused = paused
        if not paused:
            self.ready.notify(command)

    # -- subscriptions ---------------------------------------------------------
    async def save_subscription(self, subscription: Subscription) -> None:
        self._subscriptions[subscription.id] = dataclasses.replace(subscription)

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        found = self._subscriptions.get(subscription_id)
        return dataclasses.replace(found) if found is not None else None

    async def renew_subscription(self, subscription_id: str, *, expires_at: float) -> bool:
        found = self._subscriptions.get(subscription_id)
        if found is None:
            return False
        found.expires_at = expires_at
        return True

    async def delete_subscription(self, subscription_id: str) -> bool:
        self._notified.pop(subscription_id, None)
        return self._subscriptions.pop(subscription_id, None) is not None

    async def subscriptions(self, *, now: float) -> list[Subscription]:
        return [dataclasses.replace(s) for _, s in sorted(self._subscriptions.items())
                if s.expires_at > now]

    async def sweep_subscriptions(self, *, now: float, limit: int) -> int:
        expired = [i for i, s in self._subscriptions.items() if s.expires_at <= now][:max(limit, 0)]
        for subscription_id in expired:
            await self.delete_subscription(subscription_id)
        return len(expired)

    async def mark_notified(self, subscription_id: str, *, now: float,
                            min_interval_seconds: float) -> bool:
        if subscription_id not in self._subscriptions:
            return False
        last = self._notified.get(subscription_id)
        if last is not None and now - last < min_interval_seconds:
            return False
        self._notified[subscription_id] = now
        return True

    async def next_turn(self, key: str) -> int:
        self._turns[key] = turn = self._turns.get(key, 0) + 1
        return turn

    # -- callback outbox -------------------------------------------------------
    async def due_callbacks(self, *, now: float, limit: int, hold_seconds: float
                            ) -> list[Callback]:
        due = sorted((c for c in self._outbox.values() if c.due_at <= now),
                     key=lambda c: (c.due_at, c.task_id))[:max(limit, 0)]
        taken = [dataclasses.replace(c) for c in due]
        for callback in due:
            callback.due_at = now + hold_seconds
        return taken

    async def callback_attempted(self, task_id: str, *, attempts: int,
                                 retry_at: float | None) -> bool:
        callback = self._outbox.get(task_id)
        if callback is None or callback.attempts != attempts:
            return False
        if retry_at is None:
            del self._outbox[task_id]
        else:
            callback.attempts += 1
            callback.due_at = retry_at
        return True

    async def outbox_size(self) -> int:
        return len(self._outbox)

    async def callbacks(self) -> list[Callback]:
        return [dataclasses.replace(c) for _, c in sorted(self._outbox.items())]

    async def restore_callback(self, callback: Callback) -> None:
        self._outbox[callback.task_id] = dataclasses.replace(callback)

    # -- migration -------------------------------------------------------------
    async def restore(self, task: Task, result: ResultRecord | None) -> bool:
        if task.id in self._tasks:
            return False
        entry = Entry(task=task.copy(), seq=next(self._tokens))
        self._tasks[task.id] = entry
        self._created.append(entry.seq, task.id)
        if task.idempotency_key is not None:
            self._idempotency[(task.command, task.idempotency_key)] = task.id
        if result is not None:
            self._results[task.id] = _copy_result(result)
        if self._place(entry, task.updated_at):
            self.ready.notify(task.command)
        return True
