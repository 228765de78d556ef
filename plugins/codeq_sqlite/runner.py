"""``Runner``: the one thread that holds the SQLite connection and runs every statement.

Coroutines submit jobs and await futures; the thread takes jobs in arrival
order. Jobs that queue up while a transaction runs are committed together
(group commit): each job still runs under its own savepoint, so it is applied
whole or not at all, and a job refused by the lifecycle (a ``Conflict``, a
``NotFound``) rolls back only itself. Nobody hears about a job before the
commit that makes it durable, and a failed commit fails every job of the
batch, none of them applied. This turns the fixed cost of a commit (writing
the WAL frames) into a cost per batch, which is what lets many concurrent
workers get thousands of transitions per second out of one file.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from codeq.core.errors import StoreUnavailable
from codeq_sqlite.tx import Tx

log = logging.getLogger("codeq.sqlite")

#: Most jobs committed in one transaction; bounds how long the write lock is held.
MAX_BATCH = 64

#: Failures of one statement that leave the transaction open (a constraint, a
#: misuse); any other sqlite3 error may have ended the transaction and fails the batch.
STATEMENT_ERRORS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError,
                    sqlite3.DataError, sqlite3.NotSupportedError)

#: "write" and "read" jobs run in a transaction; "bare" ones (connect, disconnect) outside any.
Kind = Literal["write", "read", "bare"]

#: ``on_commit(tx)``: called on the event loop after the commit that made a write job's
#: changes durable, to announce them (see ``Tx.ready`` and ``Tx.available``).
CommitCallback = Callable[[Tx], None]


@dataclass(slots=True)
class Job:
    """``body(tx, *args)`` for a write, ``body(db, *args)`` for a read, ``body(*args)`` bare."""

    kind: Kind
    body: Callable[..., Any]
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    #: The write job's transaction book-keeping, once it applied; None when undone.
    tx: Tx | None = None


_STOP = object()


class Runner:
    def __init__(self, name: str, on_commit: CommitCallback) -> None:
        self._on_commit = on_commit
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: The connection; touched only by the runner's thread.
        self.db: sqlite3.Connection | None = None
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, kind: Kind, body: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put(Job(kind, body, args, loop, future))
        return future

    def stop(self) -> None:
        """Let the thread finish the jobs already submitted, then end it."""
        self._jobs.put(_STOP)
        self._thread.join()

    # -- on the thread -------------------------------------------------------------
    def _serve(self) -> None:
        pending: list[Job] = []
        while True:
            item = self._jobs.get()
            while item is not _STOP:
                if item.kind == "bare":
                    self._flush(pending)
                    self._settle([(item, *self._bare(item))])
                else:
                    pending.append(item)
                    if len(pending) == MAX_BATCH:
                        self._flush(pending)
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
            self._flush(pending)
            if item is _STOP:
                return

    def _bare(self, job: Job) -> tuple[Any, BaseException | None]:
        try:
            return job.body(*job.args), None
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            return None, exc

    def _flush(self, jobs: list[Job]) -> None:
        """Run ``jobs`` in one transaction and report each outcome after the commit."""
        if not jobs:
            return
        batch = list(jobs)
        jobs.clear()
        db = self.db
        if db is None:
            self._finish(batch, None, StoreUnavailable("the sqlite store is closed"))
            return
        # A job alone needs no savepoint: when it fails, the whole transaction is rolled back.
        guard = len(batch) > 1
        outcomes: list[tuple[Any, Exception | None]] = []
        try:
            db.execute("BEGIN IMMEDIATE" if any(j.kind == "write" for j in batch) else "BEGIN")
            for job in batch:
                outcomes.append(self._step(db, job, guard=guard))
            db.execute("ROLLBACK" if not guard and outcomes[0][1] is not None else "COMMIT")
        except sqlite3.Error as exc:
            # The store failed (locked too long, I/O, ...): nothing of the batch is kept.
            self._rollback(db)
            self._finish(batch, None, exc)
            return
        self._settle([(job, result, error)
                      for job, (result, error) in zip(batch, outcomes, strict=True)])

    @staticmethod
    def _step(db: sqlite3.Connection, job: Job, *, guard: bool) -> tuple[Any, Exception | None]:
        """One job inside the batch's transaction; only sqlite3 errors escape."""
        savepoint = guard and job.kind == "write"
        if savepoint:
            db.execute("SAVEPOINT job")
        try:
            if job.kind == "read":
                result = job.body(db, *job.args)
            else:
                tx = Tx(db)
                result = job.body(tx, *job.args)
                tx.flush()
                job.tx = tx
        except sqlite3.Error as exc:
            if not isinstance(exc, STATEMENT_ERRORS) or not db.in_transaction:
                raise
            return Runner._undo(db, job, exc, savepoint=savepoint)
        except Exception as exc:  # noqa: BLE001 - refused by the lifecycle: the caller's error
            return Runner._undo(db, job, exc, savepoint=savepoint)
        if savepoint:
            db.execute("RELEASE job")
        return result, None

    @staticmethod
    def _undo(db: sqlite3.Connection, job: Job, exc: Exception, *, savepoint: bool
              ) -> tuple[Any, Exception]:
        """Undo this job only (the whole transaction when it runs alone)."""
        job.tx = None
        if savepoint:
            db.execute("ROLLBACK TO job")
            db.execute("RELEASE job")
        return None, exc

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the failure that brought us here is the one to report

    def _finish(self, jobs: list[Job], result: Any, error: BaseException | None) -> None:
        for job in jobs:
            job.tx = None
        self._settle([(job, result, error) for job in jobs])

    def _settle(self, outcomes: list[tuple[Job, Any, BaseException | None]]) -> None:
        """Hand the outcomes to their event loops, one wake-up per loop and batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, Any, BaseException | None]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, delivered in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._deliver, delivered)
            except RuntimeError:
                pass  # that event loop is closed: nobody is waiting any more

    def _deliver(self, outcomes: list[tuple[Job, Any, BaseException | None]]) -> None:
        """On the event loop, after the commit: announce the changes, then answer the callers."""
        for job, result, error in outcomes:
            if job.tx is not None:
                try:
                    self._on_commit(job.tx)
                except Exception:  # a listener's bug must not leave the callers waiting
                    log.exception("announcing a committed sqlite step failed")
            if job.future.done():  # the caller was cancelled
                continue
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)
