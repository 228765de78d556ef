"""``SqliteStorage``: the storage contract over one SQLite file.

The store owns one thread (``codeq_sqlite.runner``), which holds the
connection and runs every statement; coroutines hand it work and await the
answer, so the event loop never blocks on SQLite. Each contract method is one
atomic step: it reads the rows, applies the ``codeq.core.lifecycle`` function
and writes the rows and queue depths back inside a transaction begun with
``BEGIN IMMEDIATE`` (the file's write lock, shared with every other process
that opened it, taken up front so two writers never deadlock on an upgrade).
A crash at any instant leaves either the whole transition or none of it.
Reads see one consistent snapshot, which WAL lets run beside a writer.

After the commit, on the event loop, the store wakes the claims waiting here
(``ready``), rings the other processes sharing the file to wake theirs
(``codeq_sqlite.doorbell``), and announces the ready queues the step filled
(``available``).
Subscriptions and the callback outbox are in ``codeq_sqlite.delivery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import sqlite3
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from codeq.core import lifecycle
from codeq.core.domain import (
    MAX_PRIORITY,
    MIN_PRIORITY,
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
from codeq.core.errors import Conflict, StoreUnavailable
from codeq.core.storage import Storage, cursor_at, cursor_position
from codeq_sqlite import delivery, schema
from codeq_sqlite.doorbell import Doorbell
from codeq_sqlite.rows import (
    INSERT_RESULT,
    PRIORITY,
    QSEQ,
    SELECT_RESULT,
    TASK_COLUMNS,
    Row,
    decode_result,
    decode_task,
    result_params,
)
from codeq_sqlite.runner import Kind, Runner
from codeq_sqlite.schema import Where
from codeq_sqlite.tx import SELECT_BY_ID, Tx

T = TypeVar("T")

#: How often the store looks for commits by other processes sharing the file, to wake
#: the claims waiting here. The safety net under the doorbell: it also sees commits of
#: other tools, and of processes whose ring was lost or that have no doorbell.
FOREIGN_COMMIT_CHECK_SECONDS = 0.1

LIST_CURSOR = "t"
DLQ_CURSOR = "d"

SELECT_DUE = (f"SELECT {TASK_COLUMNS} FROM tasks WHERE queue = 1 AND visible_at <= ? "
              "ORDER BY visible_at LIMIT ?")
ANY_DUE = "SELECT 1 FROM tasks WHERE queue = 1 AND visible_at <= ? LIMIT 1"
SELECT_DUE_OF = (f"SELECT {TASK_COLUMNS} FROM tasks WHERE queue = 1 AND command = ? "
                 "AND visible_at <= ? ORDER BY visible_at LIMIT ?")
SELECT_READY_OF = (f"SELECT {TASK_COLUMNS} FROM tasks WHERE queue = 0 AND command = ? "
                   "ORDER BY priority DESC, qseq LIMIT ?")
SELECT_EXPIRED = (f"SELECT {TASK_COLUMNS} FROM tasks WHERE queue = 2 AND lease_until <= ? "
                  "ORDER BY lease_until LIMIT ?")
SELECT_FINISHED = (f"SELECT {TASK_COLUMNS} FROM tasks WHERE queue >= 3 AND finished_at < ? "
                   "ORDER BY finished_at LIMIT ?")
SELECT_FINISHED_OF = (f"SELECT {TASK_COLUMNS} FROM tasks WHERE queue >= 3 AND command = ? "
                      "AND finished_at < ? ORDER BY finished_at LIMIT ?")
SELECT_DLQ = (f"SELECT {TASK_COLUMNS} FROM tasks WHERE queue = 3 AND command = ? AND qseq > ? "
              "ORDER BY qseq LIMIT ?")
SELECT_IDEMPOTENT = (f"SELECT {TASK_COLUMNS} FROM tasks "
                     "WHERE command = ? AND idempotency_key = ?")
TASK_EXISTS = "SELECT 1 FROM tasks WHERE id = ?"
#: ``list_tasks`` by filter: (command given, status given) -> SQL taking those, the cursor, the limit.
SELECT_LIST = {
    (False, False): f"SELECT {TASK_COLUMNS} FROM tasks WHERE seq > ? ORDER BY seq LIMIT ?",
    (True, False): (f"SELECT {TASK_COLUMNS} FROM tasks WHERE command = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?"),
    (False, True): (f"SELECT {TASK_COLUMNS} FROM tasks WHERE status = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?"),
    (True, True): (f"SELECT {TASK_COLUMNS} FROM tasks WHERE command = ? AND status = ? "
                   "AND seq > ? ORDER BY seq LIMIT ?"),
}
SELECT_DEPTHS = "SELECT command, paused, ready, delayed, in_progress, dlq FROM queues"
SELECT_DEPTHS_OF = SELECT_DEPTHS + " WHERE command = ?"
#: How many of a command's delayed tasks are due, and the earliest time among them.
COUNT_DUE = ("SELECT count(*), min(visible_at) FROM tasks WHERE queue = 1 AND command = ? "
             "AND visible_at <= ?")
#: When the task that entered a command's ready queue first (lowest ``qseq``) did so: the head
#: of each priority, one ``tasks_ready`` seek each, then the earliest of those.
OLDEST_ARRIVAL = (
    "WITH levels(level) AS (VALUES "
    + ", ".join(f"({level})" for level in range(MIN_PRIORITY, MAX_PRIORITY + 1))
    + ") SELECT min((SELECT updated_at FROM tasks WHERE queue = 0 AND command = ?1 "
    "AND priority = level ORDER BY qseq LIMIT 1)) FROM levels")
SET_PAUSED = ("INSERT INTO queues (command, paused) VALUES (?, ?) "
              "ON CONFLICT (command) DO UPDATE SET paused = excluded.paused")


def _copy_result(record: ResultRecord) -> ResultRecord:
    return dataclasses.replace(record, artifacts=[dataclasses.replace(a) for a in record.artifacts])


def _stats(db: sqlite3.Connection, row: tuple[Any, ...], now: float) -> QueueStats:
    """Stats from a ``queues`` row; delayed tasks already due count as ready."""
    command, paused, ready, delayed, in_progress, dlq = row
    due, first_due = db.execute(COUNT_DUE, (command, now)).fetchone()
    arrived = db.execute(OLDEST_ARRIVAL, (command,)).fetchone()[0] if ready else None
    return QueueStats(command=command, ready=ready + due, delayed=delayed - due,
                      in_progress=in_progress, dlq=dlq, paused=bool(paused),
                      oldest_ready_at=min((t for t in (arrived, first_due) if t is not None),
                                          default=None))


class SqliteStorage(Storage):
    name = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = schema.BUSY_TIMEOUT_MS) -> None:
        super().__init__()
        self.path = Path(path)
        #: How long a write waits for another process's write lock before the store
        #: reports itself unavailable.
        self.busy_timeout_ms = busy_timeout_ms
        self._runner: Runner | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._doorbell: Doorbell | None = None

    # -- the thread --------------------------------------------------------------
    async def open(self) -> None:
        runner = Runner("codeq-sqlite", self._announce)
        try:
            await self._call(runner, "bare", self._connect, runner)
            self._doorbell = await self._call(runner, "bare", Doorbell.bind, self.path)
        except BaseException:
            runner.stop()
            raise
        self._runner = runner
        if self._doorbell is not None:
            self._doorbell.listen(self.ready.notify)
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch_foreign_commits(), name=f"codeq-sqlite-watch {self.path}")

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        try:
            await runner.submit("bare", self._disconnect, runner)
        finally:
            runner.stop()
            if self._doorbell is not None:
                self._doorbell.close()
                self._doorbell = None

    def _connect(self, runner: Runner) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the directory of the sqlite store "
                                   f"{self.path}: {exc}") from exc
        runner.db = schema.connect(str(self.path), busy_timeout_ms=self.busy_timeout_ms)

    @staticmethod
    def _disconnect(runner: Runner) -> None:
        if runner.db is not None:
            runner.db.close()
            runner.db = None

    async def _watch_foreign_commits(self) -> None:
        """Wake every waiting claim when another connection (another process) commits.

        ``PRAGMA data_version`` changes only on commits made by other
        connections, so this costs one tiny read per interval and never fires
        for this store's own writes, which notify the exact commands directly.
        """
        seen: int | None = None
        while True:
            try:
                version: int | None = await self._read(_data_version)
            except StoreUnavailable:
                version = seen  # the store is busy or gone; look again later
            if seen is not None and version != seen:
                self.ready.notify_all()
            seen = version
            await asyncio.sleep(FOREIGN_COMMIT_CHECK_SECONDS)

    def _announce(self, tx: Tx) -> None:
        """After the commit of a step of this process: wake claimers, announce filled queues."""
        self._wake(tx.ready)
        for command in tx.available:
            self.available.emit(command)

    def _wake(self, commands: Collection[str]) -> None:
        """Wake the claims waiting for ``commands``, here and in the other processes."""
        for command in commands:
            self.ready.notify(command)
        if commands and self._doorbell is not None:
            self._doorbell.ring(commands)

    async def _call(self, runner: Runner | None, kind: Kind, body: Callable[..., T],
                    *args: Any) -> T:
        """Run ``body`` on the store's thread; sqlite3 failures become ``StoreUnavailable``."""
        if runner is None:
            raise StoreUnavailable(f"the sqlite store {self.path} is closed")
        try:
            result: T = await runner.submit(kind, body, *args)
        except (sqlite3.OperationalError, sqlite3.InternalError) as exc:
            raise self._unavailable(exc) from exc
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # integrity or programming errors are bugs
                raise
            raise self._unavailable(exc) from exc
        return result

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable:
        code = getattr(exc, "sqlite_errorname", "")
        hint = ""
        if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            hint = (f"; another connection held the write lock for more than "
                    f"{self.busy_timeout_ms} ms")
        return StoreUnavailable(f"the sqlite store {self.path} failed: {exc}"
                                f"{f' ({code})' if code else ''}{hint}")

    async def _write(self, body: Callable[..., T], *args: Any) -> T:
        """``body(tx, *args)`` as one atomic step; claimers are woken after the commit."""
        return await self._call(self._runner, "write", body, *args)

    async def _read(self, body: Callable[..., T], *args: Any) -> T:
        """``body(db, *args)`` over one consistent snapshot."""
        return await self._call(self._runner, "read", body, *args)

    async def ping(self) -> None:
        await self._read(_ping)

    # -- producers ---------------------------------------------------------------
    async def create(self, task: Task, *, now: float) -> tuple[Task, bool]:
        return (await self._write(_create_all, [task], now))[0]

    async def create_many(self, tasks: Sequence[Task], *, now: float) -> list[tuple[Task, bool]]:
        return await self._write(_create_all, list(tasks), now) if tasks else []

    async def get(self, task_id: str) -> Task | None:
        return await self._read(_get, task_id)

    async def get_result(self, task_id: str) -> ResultRecord | None:
        return await self._read(_get_result, task_id)

    async def list_tasks(self, *, command: str | None, status: Status | None, limit: int,
                         cursor: str | None) -> Page:
        after = cursor_position(LIST_CURSOR, cursor)
        return await self._read(_list_tasks, command, status, limit, after)

    async def cancel(self, task_id: str, *, now: float) -> Task:
        return await self._write(_cancel, task_id, now)

    # -- workers -----------------------------------------------------------------
    async def claim(self, commands: Sequence[str] | None, *, worker_id: str,
                    lease_seconds: float, count: int, now: float) -> list[Task]:
        if count <= 0 or (commands is not None and not commands):
            return []
        names = list(dict.fromkeys(commands)) if commands is not None else None
        return await self._write(_claim, names, worker_id, lease_seconds, count, now)

    async def heartbeat(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                        lease_seconds: float, now: float) -> Task:
        return await self._write(_heartbeat, task_id, worker_id, lease_id, lease_seconds, now)

    async def abandon(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                      now: float) -> tuple[Task, Outcome]:
        return await self._write(_abandon, task_id, worker_id, lease_id, now)

    async def nack(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                   delay_seconds: float, reason: str | None, now: float) -> tuple[Task, Outcome]:
        return await self._write(_nack, task_id, worker_id, lease_id, delay_seconds, reason, now)

    async def complete(self, task_id: str, *, result: ResultRecord, lease_id: str | None,
                       now: float) -> tuple[ResultRecord, str | None]:
        return await self._write(_complete, task_id, _copy_result(result), lease_id, now)

    # -- background work ---------------------------------------------------------
    async def promote_due(self, *, now: float, limit: int) -> list[str]:
        if limit <= 0:
            return []
        return await self._write(_promote_due, now, limit)

    async def expired_leases(self, *, now: float, limit: int) -> list[Task]:
        if limit <= 0:
            return []
        return await self._read(_expired_leases, now, limit)

    async def expire_lease(self, task_id: str, *, lease_id: str, delay_seconds: float,
                           now: float) -> Outcome | None:
        return await self._write(_expire_lease, task_id, lease_id, delay_seconds, now)

    async def cleanup(self, *, finished_before: float, limit: int, command: str | None
                      ) -> list[str]:
        if limit <= 0:
            return []
        return await self._write(_cleanup, finished_before, limit, command)

    # -- operators ---------------------------------------------------------------
    async def commands(self) -> list[str]:
        return await self._read(_commands)

    async def queue_stats(self, command: str, *, now: float) -> QueueStats:
        return await self._read(_queue_stats, command, now)

    async def all_queue_stats(self, *, now: float) -> list[QueueStats]:
        return await self._read(_all_queue_stats, now)

    async def dlq(self, command: str, *, limit: int, cursor: str | None) -> Page:
        after = cursor_position(DLQ_CURSOR, cursor)
        return await self._read(_dlq, command, max(limit, 0), after)

    async def redrive(self, command: str, *, ids: Sequence[str] | None, limit: int,
                      now: float) -> int:
        return await self._write(_redrive, command, list(ids) if ids is not None else None,
                                 limit, now)

    async def set_paused(self, command: str, paused: bool) -> None:
        await self._write(_set_paused, command, paused)
        if not paused:
            self._wake([command])

    # -- worker availability subscriptions ------------------------------------------------
    async def save_subscription(self, subscription: Subscription) -> None:
        await self._write(delivery.save_subscription,
                          dataclasses.replace(subscription,
                                              event_types=list(subscription.event_types)))

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        return await self._read(delivery.get_subscription, subscription_id)

    async def renew_subscription(self, subscription_id: str, *, expires_at: float) -> bool:
        return await self._write(delivery.renew_subscription, subscription_id, expires_at)

    async def delete_subscription(self, subscription_id: str) -> bool:
        return await self._write(delivery.delete_subscription, subscription_id)

    async def subscriptions(self, *, now: float) -> list[Subscription]:
        return await self._read(delivery.active_subscriptions, now)

    async def sweep_subscriptions(self, *, now: float, limit: int) -> int:
        if limit <= 0:
            return 0
        return await self._write(delivery.sweep_subscriptions, now, limit)

    async def mark_notified(self, subscription_id: str, *, now: float,
                            min_interval_seconds: float) -> bool:
        return await self._write(delivery.mark_notified, subscription_id, now,
                                 min_interval_seconds)

    async def next_turn(self, key: str) -> int:
        return await self._write(delivery.next_turn, key)

    # -- result callback outbox ------------------------------------------------------------
    async def due_callbacks(self, *, now: float, limit: int, hold_seconds: float
                            ) -> list[Callback]:
        if limit <= 0:
            return []
        return await self._write(delivery.due_callbacks, now, limit, hold_seconds)

    async def callback_attempted(self, task_id: str, *, attempts: int,
                                 retry_at: float | None) -> bool:
        return await self._write(delivery.callback_attempted, task_id, attempts, retry_at)

    async def outbox_size(self) -> int:
        return await self._read(delivery.outbox_size)

    async def callbacks(self) -> list[Callback]:
        return await self._read(delivery.callbacks)

    async def restore_callback(self, callback: Callback) -> None:
        await self._write(Tx.put_callback, dataclasses.replace(callback))

    # -- migration -------------------------------------------------------------------------
    async def restore(self, task: Task, result: ResultRecord | None) -> bool:
        return await self._write(_restore, task.copy(),
                                 _copy_result(result) if result is not None else None)

    async def restore_many(self, items: Sequence[tuple[Task, ResultRecord | None]]
                           ) -> list[bool]:
        copies = [(task.copy(), _copy_result(result) if result is not None else None)
                  for task, result in items]
        return await self._write(_restore_all, copies) if copies else []


# -- job bodies: run on the store's thread, inside a transaction (see ``runner``) ---------------
def _ping(db: sqlite3.Connection) -> None:
    db.execute("SELECT 1").fetchone()


def _data_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA data_version").fetchone()[0])


def _create_all(tx: Tx, tasks: list[Task], now: float) -> list[tuple[Task, bool]]:
    out: list[tuple[Task, bool]] = []
    for task in tasks:
        if task.idempotency_key is not None:
            found = tx.db.execute(SELECT_IDEMPOTENT, (task.command, task.idempotency_key)).fetchone()
            if found is not None:
                out.append((decode_task(found).task, False))
                continue
        tx.insert(task, now)
        out.append((task.copy(), True))
    return out


def _get(db: sqlite3.Connection, task_id: str) -> Task | None:
    found = db.execute(SELECT_BY_ID, (task_id,)).fetchone()
    return decode_task(found).task if found is not None else None


def _get_result(db: sqlite3.Connection, task_id: str) -> ResultRecord | None:
    found = db.execute(SELECT_RESULT, (task_id,)).fetchone()
    return decode_result(found) if found is not None else None


def _list_tasks(db: sqlite3.Connection, command: str | None, status: Status | None, limit: int,
                after: int) -> Page:
    params: list[Any] = [] if command is None else [command]
    if status is not None:
        params.append(status.value)
    found = db.execute(SELECT_LIST[command is not None, status is not None],
                       (*params, after, max(limit, 0) + 1)).fetchall()
    page = [decode_task(row) for row in found[:limit]]
    more = len(found) > limit and bool(page)
    return Page(tasks=[row.task for row in page],
                next_cursor=cursor_at(LIST_CURSOR, page[-1].seq) if more else None)


def _cancel(tx: Tx, task_id: str, now: float) -> Task:
    row = tx.load(task_id)
    lifecycle.cancel(row.task, now=now)
    tx.file(row, now)
    return row.task


def _claimable(db: sqlite3.Connection, commands: list[str] | None) -> list[str]:
    """The requested commands (None: every known one) that are not paused."""
    if commands is None:
        return [c for (c,) in db.execute("SELECT command FROM queues WHERE paused = 0")]
    paused = {c for (c,) in db.execute("SELECT command FROM queues WHERE paused = 1")}
    return [c for c in commands if c not in paused]


def _claim(tx: Tx, commands: list[str] | None, worker_id: str, lease_seconds: float, count: int,
           now: float) -> list[Task]:
    names = _claimable(tx.db, commands)
    # A due delayed task counts as ready: move up to ``count`` per command to the
    # ready queue first, so it competes by priority. Bounded by ``count``, this
    # costs nothing that grows with a backlog the promoter has not reached yet.
    if tx.db.execute(ANY_DUE, (now,)).fetchone() is not None:
        for name in names:
            for found in tx.db.execute(SELECT_DUE_OF, (name, now, count)).fetchall():
                _promote(tx, decode_task(found), now)
    # The best ``count`` of each command, merged: highest priority first, then
    # the order in which they became ready, whatever their command.
    candidates = [found for name in names
                  for found in tx.db.execute(SELECT_READY_OF, (name, count)).fetchall()]
    if len(names) > 1:
        candidates = heapq.nsmallest(count, candidates, key=lambda r: (-r[PRIORITY], r[QSEQ]))
    claimed = []
    for found in candidates:
        row = decode_task(found)
        lifecycle.claim(row.task, worker_id=worker_id, lease_id=new_id(),
                        lease_seconds=lease_seconds, now=now)
        tx.file(row, now)
        claimed.append(row.task)
    return claimed


def _heartbeat(tx: Tx, task_id: str, worker_id: str | None, lease_id: str | None,
               lease_seconds: float, now: float) -> Task:
    row = tx.load(task_id)
    lifecycle.heartbeat(row.task, worker_id=worker_id, lease_id=lease_id,
                        lease_seconds=lease_seconds, now=now)
    tx.file(row, now)
    return row.task


def _abandon(tx: Tx, task_id: str, worker_id: str | None, lease_id: str | None,
             now: float) -> tuple[Task, Outcome]:
    row = tx.load(task_id)
    outcome = lifecycle.abandon(row.task, worker_id=worker_id, lease_id=lease_id, now=now)
    tx.file(row, now)
    return row.task, outcome


def _nack(tx: Tx, task_id: str, worker_id: str | None, lease_id: str | None,
          delay_seconds: float, reason: str | None, now: float) -> tuple[Task, Outcome]:
    row = tx.load(task_id)
    outcome = lifecycle.nack(row.task, worker_id=worker_id, lease_id=lease_id,
                             delay_seconds=delay_seconds, reason=reason, now=now)
    tx.finish(row, now)
    return row.task, outcome


def _complete(tx: Tx, task_id: str, submitted: ResultRecord, lease_id: str | None,
              now: float) -> tuple[ResultRecord, str | None]:
    row = tx.load(task_id)
    found = tx.db.execute(SELECT_RESULT, (task_id,)).fetchone()
    stored = decode_result(found) if found is not None else None
    if not lifecycle.complete(row.task, stored=stored, submitted=submitted, lease_id=lease_id,
                              now=now):
        assert stored is not None  # complete() returns False only for a repeat
        return stored, None
    tx.db.execute(INSERT_RESULT, result_params(submitted))
    tx.finish(row, now)
    return submitted, row.task.command


def _promote(tx: Tx, row: Row, now: float) -> None:
    lifecycle.promote(row.task, now=now)
    tx.file(row, now)


def _promote_due(tx: Tx, now: float, limit: int) -> list[str]:
    rows = [decode_task(found) for found in tx.db.execute(SELECT_DUE, (now, limit)).fetchall()]
    for row in rows:
        _promote(tx, row, now)
    return [row.task.command for row in rows]


def _expired_leases(db: sqlite3.Connection, now: float, limit: int) -> list[Task]:
    return [decode_task(found).task for found in db.execute(SELECT_EXPIRED, (now, limit))]


def _expire_lease(tx: Tx, task_id: str, lease_id: str, delay_seconds: float,
                  now: float) -> Outcome | None:
    row = tx.find(task_id)
    if row is None or not lifecycle.lease_expired(row.task, lease_id=lease_id, now=now):
        return None
    outcome = lifecycle.expire(row.task, delay_seconds=delay_seconds, now=now)
    tx.finish(row, now)
    return outcome


def _cleanup(tx: Tx, finished_before: float, limit: int, command: str | None) -> list[str]:
    if command is None:
        found = tx.db.execute(SELECT_FINISHED, (finished_before, limit)).fetchall()
    else:
        found = tx.db.execute(SELECT_FINISHED_OF, (command, finished_before, limit)).fetchall()
    rows = [decode_task(row) for row in found]
    for row in rows:
        tx.delete(row)
    return [row.task.id for row in rows]


def _commands(db: sqlite3.Connection) -> list[str]:
    return [c for (c,) in db.execute("SELECT command FROM queues ORDER BY command")]


def _queue_stats(db: sqlite3.Connection, command: str, now: float) -> QueueStats:
    found = db.execute(SELECT_DEPTHS_OF, (command,)).fetchone()
    if found is None:
        return QueueStats(command=command, ready=0, delayed=0, in_progress=0, dlq=0, paused=False)
    return _stats(db, found, now)


def _all_queue_stats(db: sqlite3.Connection, now: float) -> list[QueueStats]:
    return [_stats(db, found, now)
            for found in db.execute(SELECT_DEPTHS + " ORDER BY command").fetchall()]


def _dlq(db: sqlite3.Connection, command: str, limit: int, after: int) -> Page:
    found = [decode_task(row) for row in db.execute(SELECT_DLQ, (command, after, limit + 1))]
    page = found[:limit]
    more = len(found) > limit and bool(page)
    return Page(tasks=[row.task for row in page],
                next_cursor=cursor_at(DLQ_CURSOR, page[-1].qseq or 0) if more else None)


def _redrive(tx: Tx, command: str, ids: list[str] | None, limit: int, now: float) -> int:
    if ids is None:
        rows = [decode_task(found) for found in
                tx.db.execute(SELECT_DLQ, (command, -1, max(limit, 0))).fetchall()]
    else:
        rows = [row for task_id in dict.fromkeys(ids) if (row := tx.find(task_id)) is not None]
    moved = 0
    for row in rows:
        if row.where is not Where.DLQ or row.task.command != command:
            continue
        lifecycle.redrive(row.task, now=now)
        tx.file(row, now)
        moved += 1
    return moved


def _set_paused(tx: Tx, command: str, paused: bool) -> None:
    tx.db.execute(SET_PAUSED, (command, paused))


def _restore_all(tx: Tx, items: list[tuple[Task, ResultRecord | None]]) -> list[bool]:
    return [_restore(tx, task, result) for task, result in items]


def _restore(tx: Tx, task: Task, result: ResultRecord | None) -> bool:
    if tx.db.execute(TASK_EXISTS, (task.id,)).fetchone() is not None:
        return False
    try:
        # Filed as of its last change, so a delayed task stays delayed.
        tx.insert(task, task.updated_at)
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"task {task.id} has the idempotency key {task.idempotency_key!r} "
                       f"of another task of {task.command}") from exc
    if result is not None:
        tx.db.execute(INSERT_RESULT, result_params(result))
    return True
