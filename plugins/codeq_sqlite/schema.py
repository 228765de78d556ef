"""The SQLite schema of codeq and the connection settings it relies on.

One row per task in ``tasks``. Besides the task's own fields, two columns say
where it is: ``queue`` (which of a command's queues holds it, see ``Where``)
and ``qseq`` (its place in that queue: an increasing number drawn from
``meta.qseq`` whenever the task enters the ready queue or the DLQ). Every hot
path is an index range scan over a *partial* index of one queue, so its cost
does not grow with the length of any queue:

- claim: ``tasks_ready`` (command, priority desc, qseq), per requested command;
- due delayed tasks: ``tasks_delayed`` (visible_at), per command ``tasks_delayed_by_command``;
- expired leases: ``tasks_leases`` (lease_until);
- DLQ: ``tasks_dlq`` (command, qseq);
- cleanup: ``tasks_finished`` / ``tasks_finished_by_command`` (finished_at);
- idempotency: the unique ``tasks_idempotency`` (command, idempotency_key);
- listings: the rowid ``seq`` (creation order, never reused), by command or status.

``queues`` holds one small row per command ever used: the paused flag and the
depth of each queue, kept up to date by every transition, so queue statistics
cost O(1) plus the due delayed tasks not yet promoted. ``results`` holds result
records. JSON values (payload, history, result, artifacts, backoff) are text.

Since version 2: ``outbox`` holds the result callbacks owed (one per task, due
first by ``outbox_due``), ``subscriptions`` the workers' availability
subscriptions with the time each was last notified, and ``turns`` the
round-robin counters of subscription groups.

``PRAGMA user_version`` is the schema version. ``UPGRADES[n]`` takes a file
from version ``n`` to ``n + 1``; a new file runs them all, an older one the
ones it lacks, in the transaction that opens it.
"""

from __future__ import annotations

import sqlite3
from enum import IntEnum

from codeq.core.errors import StoreUnavailable

#: How long a statement waits for another connection's write lock before failing (default).
BUSY_TIMEOUT_MS = 5000


class Where(IntEnum):
    """The one queue (or resting place) a task row is in; stored in ``tasks.queue``.

    The first four are the queues whose depths ``queues`` counts, in the order
    of its columns (ready, delayed, in_progress, dlq); the partial indexes name
    these numbers literally.
    """

    READY = 0
    DELAYED = 1
    RUNNING = 2
    DLQ = 3
    DONE = 4


#: Version 1: tasks, their results, the per-command queue depths.
TABLES = (
    """
    CREATE TABLE tasks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        command TEXT NOT NULL,
        queue INTEGER NOT NULL,
        qseq INTEGER,
        priority INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        run_at REAL,
        visible_at REAL,
        lease_until REAL,
        finished_at REAL,
        worker_id TEXT,
        lease_id TEXT,
        error TEXT,
        webhook TEXT,
        idempotency_key TEXT,
        backoff TEXT,
        cancel_requested INTEGER NOT NULL,
        dead_lettered INTEGER NOT NULL,
        payload TEXT NOT NULL,
        history TEXT NOT NULL
    )
    """,
    "CREATE INDEX tasks_ready ON tasks (command, priority DESC, qseq) WHERE queue = 0",
    "CREATE INDEX tasks_delayed ON tasks (visible_at) WHERE queue = 1",
    "CREATE INDEX tasks_delayed_by_command ON tasks (command, visible_at) WHERE queue = 1",
    "CREATE INDEX tasks_leases ON tasks (lease_until) WHERE queue = 2",
    "CREATE INDEX tasks_dlq ON tasks (command, qseq) WHERE queue = 3",
    "CREATE INDEX tasks_finished ON tasks (finished_at) WHERE queue >= 3",
    "CREATE INDEX tasks_finished_by_command ON tasks (command, finished_at) WHERE queue >= 3",
    """
    CREATE UNIQUE INDEX tasks_idempotency ON tasks (command, idempotency_key)
        WHERE idempotency_key IS NOT NULL
    """,
    "CREATE INDEX tasks_by_command ON tasks (command, seq)",
    "CREATE INDEX tasks_by_status ON tasks (status, seq)",
    """
    CREATE TABLE results (
        task_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        result TEXT NOT NULL,
        error TEXT,
        artifacts TEXT NOT NULL,
        completed_at REAL NOT NULL,
        worker_id TEXT
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE queues (
        command TEXT PRIMARY KEY,
        paused INTEGER NOT NULL DEFAULT 0,
        ready INTEGER NOT NULL DEFAULT 0,
        delayed INTEGER NOT NULL DEFAULT 0,
        in_progress INTEGER NOT NULL DEFAULT 0,
        dlq INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID
    """,
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO meta (key, value) VALUES ('qseq', 0)",
)

#: Version 2: the result callback outbox, worker subscriptions, group turns.
DELIVERY_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS outbox (
        task_id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        due_at REAL NOT NULL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (due_at, task_id)",
    """
    CREATE TABLE IF NOT EXISTS subscriptions (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        callback_url TEXT NOT NULL,
        event_types TEXT NOT NULL,
        delivery_mode TEXT NOT NULL,
        group_id TEXT,
        min_interval_seconds REAL NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        notified_at REAL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS subscriptions_expiry ON subscriptions (expires_at)",
    "CREATE TABLE IF NOT EXISTS turns (key TEXT PRIMARY KEY, turn INTEGER NOT NULL) WITHOUT ROWID",
)

#: ``UPGRADES[n]``: the statements that take a file from schema version ``n`` to ``n + 1``.
UPGRADES = (TABLES, DELIVERY_TABLES)
SCHEMA_VERSION = len(UPGRADES)

#: Per-connection settings. WAL lets readers run beside the one writer and
#: with ``synchronous = NORMAL`` a commit costs no fsync; a process crash loses
#: nothing committed, a power cut at most the last commits (never consistency).
#: The page cache (4 MB per connection) is resident memory that fills up to its
#: size as the file grows. The hot pages (the queue indexes, the interior pages of
#: the B-trees, the newest rows) fit in it; any other page is one read from the
#: operating system's file cache. A bigger cache only adds resident memory: a claim
#: costs the same with 32 MB on a 100 MB file.
PRAGMAS = (
    "PRAGMA synchronous = NORMAL",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -4000",
    "PRAGMA journal_size_limit = 67108864",
)


def connect(path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open ``path`` in WAL mode and create, upgrade or check the schema.

    Several processes may open one file at once; the schema is created and
    upgraded inside a write transaction, so exactly one of them does it.
    """
    db = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        for pragma in PRAGMAS:
            db.execute(pragma)
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreUnavailable(f"sqlite database {path} cannot use WAL journaling "
                                   f"(got {mode!r}); put it on a local file system")
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"sqlite database {path} has schema version {version}, but this codeq "
                    f"knows version {SCHEMA_VERSION}; use the codeq release that wrote it")
            if version < SCHEMA_VERSION:
                for upgrade in UPGRADES[version:]:
                    for statement in upgrade:
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except BaseException:
        db.close()
        raise
    return db
