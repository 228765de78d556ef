"""``Tx``: the book-keeping of one write transaction.

A transition reads a task row, lets ``codeq.core.lifecycle`` change the task,
and hands it to ``Tx.file`` (``Tx.finish`` when the step may end the task),
which works out the queue the task now belongs in from its state, writes the
row back, and records the change of queue depths and which commands got ready
work. ``flush`` writes the depth counters and the queue sequence once, just
before the commit. A step that adds to a command's ready queue first reads
that queue's depth counter (one primary-key lookup in ``queues``): zero means
the step filled an empty queue, which ``Storage.available`` announces.
"""

from __future__ import annotations

import sqlite3

from codeq.core import lifecycle
from codeq.core.domain import Callback, Status, Task
from codeq.core.errors import NotFound
from codeq_sqlite.rows import (
    INSERT_TASK,
    TASK_COLUMNS,
    UPDATE_TASK,
    Row,
    decode_task,
    insert_params,
    update_params,
)
from codeq_sqlite.schema import Where

SELECT_BY_ID = f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"
READ_QSEQ = "SELECT value FROM meta WHERE key = 'qseq'"
WRITE_QSEQ = "UPDATE meta SET value = ? WHERE key = 'qseq'"
ADD_DEPTHS = (
    "INSERT INTO queues (command, ready, delayed, in_progress, dlq) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (command) DO UPDATE SET ready = ready + excluded.ready, "
    "delayed = delayed + excluded.delayed, in_progress = in_progress + excluded.in_progress, "
    "dlq = dlq + excluded.dlq")
READ_READY_DEPTH = "SELECT ready FROM queues WHERE command = ?"
#: Owe a result callback; a later one for the same task replaces it.
PUT_CALLBACK = "INSERT OR REPLACE INTO outbox (task_id, url, attempts, due_at) VALUES (?, ?, ?, ?)"


def where_of(task: Task, now: float) -> Where:
    """The queue a task in this state belongs in."""
    if task.status is Status.PENDING:
        return Where.DELAYED if task.visible_at is not None and task.visible_at > now else Where.READY
    if task.status is Status.IN_PROGRESS:
        return Where.RUNNING
    return Where.DLQ if task.dead_lettered else Where.DONE


class Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        #: Commands that got ready work in this transaction, to notify after the commit.
        self.ready: set[str] = set()
        #: Commands whose ready queue this transaction took from empty to non-empty
        #: (known after ``flush``), to announce on ``Storage.available``.
        self.available: set[str] = set()
        self._depths: dict[str, list[int]] = {}
        self._qseq: int | None = None
        self._qseq_read: int | None = None

    # -- reading -------------------------------------------------------------
    def find(self, task_id: str) -> Row | None:
        found = self.db.execute(SELECT_BY_ID, (task_id,)).fetchone()
        return decode_task(found) if found is not None else None

    def load(self, task_id: str) -> Row:
        row = self.find(task_id)
        if row is None:
            raise NotFound(f"no task with id {task_id}")
        return row

    # -- writing -------------------------------------------------------------
    def insert(self, task: Task, now: float) -> None:
        where = where_of(task, now)
        qseq = self._next_qseq() if where in (Where.READY, Where.DLQ) else None
        self.db.execute(INSERT_TASK, insert_params(task, where, qseq))
        self._count(task.command, where, +1)

    def file(self, row: Row, now: float) -> None:
        """Write back ``row.task`` after a transition, in the queue its state calls for."""
        where = where_of(row.task, now)
        if where is not row.where:
            self._count(row.task.command, row.where, -1)
            self._count(row.task.command, where, +1)
            row.where = where
            # Entering the ready queue or the DLQ takes the next place at its end.
            row.qseq = self._next_qseq() if where in (Where.READY, Where.DLQ) else None
        self.db.execute(UPDATE_TASK, update_params(row))

    def finish(self, row: Row, now: float) -> None:
        """``file`` after a step that may end the task, writing the result callback it owes."""
        self.file(row, now)
        callback = lifecycle.callback(row.task, now=now)
        if callback is not None:
            self.put_callback(callback)

    def put_callback(self, callback: Callback) -> None:
        """Write an outbox entry (replacing the task's previous one)."""
        self.db.execute(PUT_CALLBACK, (callback.task_id, callback.url, callback.attempts,
                                       callback.due_at))

    def delete(self, row: Row) -> None:
        self.db.execute("DELETE FROM tasks WHERE seq = ?", (row.seq,))
        self.db.execute("DELETE FROM results WHERE task_id = ?", (row.task.id,))
        self.db.execute("DELETE FROM outbox WHERE task_id = ?", (row.task.id,))
        self._count(row.task.command, row.where, -1)

    def flush(self) -> None:
        """Write the queue depth changes and the queue sequence; call once, before COMMIT."""
        for command, (ready, delayed, running, dlq) in self._depths.items():
            if ready > 0 and self._ready_depth(command) == 0:
                self.available.add(command)
            self.db.execute(ADD_DEPTHS, (command, ready, delayed, running, dlq))
        if self._qseq is not None and self._qseq != self._qseq_read:
            self.db.execute(WRITE_QSEQ, (self._qseq,))

    def _count(self, command: str, where: Where, delta: int) -> None:
        depths = self._depths.setdefault(command, [0, 0, 0, 0])
        if where is not Where.DONE:
            depths[where] += delta
        if where is Where.READY and delta > 0:
            self.ready.add(command)

    def _ready_depth(self, command: str) -> int:
        """The depth of ``command``'s ready queue before this transaction's changes."""
        found = self.db.execute(READ_READY_DEPTH, (command,)).fetchone()
        return int(found[0]) if found is not None else 0

    def _next_qseq(self) -> int:
        if self._qseq is None:
            self._qseq = self._qseq_read = self.db.execute(READ_QSEQ).fetchone()[0]
        assert self._qseq is not None
        self._qseq += 1
        return self._qseq
