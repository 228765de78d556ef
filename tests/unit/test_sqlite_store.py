"""The sqlite backend beyond the shared contract: files, processes, crashes, failures, indexes.

Every test uses a real database file under ``tmp_path``. ``audit`` reads the
file with a plain sqlite3 connection and checks the invariants the store keeps:
each task in the one queue its status calls for, and the queue depths in
``queues`` equal to what the rows say; ``owed_and_outbox`` compares the result
callbacks the finished tasks owe with the outbox.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from codeq_sqlite import SqliteStorage, delivery, path_of, schema
from codeq_sqlite import store as queries
from codeq_sqlite.schema import Where
from codeq_sqlite.tx import READ_READY_DEPTH

from codeq.core.config import load_settings
from codeq.core.domain import DeliveryMode, Outcome, ResultRecord, Status, Subscription, Task
from codeq.core.errors import ConfigError, StoreUnavailable
from codeq.plugins import open_storage

T0 = 1_700_000_000.0
CMD = "unit.alpha"
OTHER = "unit.beta"
ROOT = Path(__file__).parents[2]


HOOK = "http://127.0.0.1:9/hook"


def new_task(store: SqliteStorage, command: str = CMD, *, priority: int = 5, delay: float = 0,
             key: str | None = None, max_attempts: int = 3, payload: object = None,
             webhook: str | None = None) -> Task:
    task = Task(id=store.new_task_id(command), command=command,
                payload={"n": 1} if payload is None else payload, priority=priority,
                max_attempts=max_attempts, created_at=T0, updated_at=T0,
                visible_at=T0 + delay if delay else None, idempotency_key=key, webhook=webhook)
    task.record(T0, "created")
    return task


async def opened(path: Path, **options: int) -> SqliteStorage:
    store = SqliteStorage(path, **options)
    await store.open()
    return store


def audit(path: Path) -> Counter[tuple[str, Where]]:
    """Check the stored invariants; return how many tasks each (command, queue) holds."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT command, queue, status, dead_lettered, qseq, lease_until, "
                          "finished_at FROM tasks").fetchall()
        held: Counter[tuple[str, Where]] = Counter()
        for command, queue, status, dead, qseq, lease_until, finished_at in rows:
            where = Where(queue)
            expected = {
                Where.READY: {"PENDING"}, Where.DELAYED: {"PENDING"}, Where.RUNNING: {"IN_PROGRESS"},
                Where.DLQ: {"FAILED"}, Where.DONE: {"COMPLETED", "FAILED", "CANCELLED"},
            }[where]
            assert status in expected, (command, where, status)
            assert (where is Where.DLQ) == bool(dead), (command, where, dead)
            assert (qseq is not None) == (where in (Where.READY, Where.DLQ)), (where, qseq)
            assert (lease_until is not None) == (where is Where.RUNNING)
            assert (finished_at is not None) == (where in (Where.DLQ, Where.DONE))
            held[command, where] += 1
        for command, *depths in db.execute(
                "SELECT command, ready, delayed, in_progress, dlq FROM queues"):
            counted = [held[command, where] for where in (Where.READY, Where.DELAYED,
                                                          Where.RUNNING, Where.DLQ)]
            assert depths == counted, (command, depths, counted)
        return held
    finally:
        db.close()


def owed_and_outbox(path: Path) -> tuple[set[str], set[str]]:
    """Ids of the finished tasks that owe a result callback, and the ids in the outbox."""
    db = sqlite3.connect(path)
    try:
        owed = {task_id for (task_id,) in db.execute(
            "SELECT id FROM tasks WHERE webhook IS NOT NULL "
            "AND status IN ('COMPLETED', 'FAILED')")}
        return owed, {task_id for (task_id,) in db.execute("SELECT task_id FROM outbox")}
    finally:
        db.close()


# -- URLs and the plugin ---------------------------------------------------------------------
def test_absolute_and_relative_urls() -> None:
    assert path_of("sqlite:////var/lib/codeq/codeq.db") == "/var/lib/codeq/codeq.db"
    assert path_of("sqlite:///data/codeq.db") == "data/codeq.db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://host/x.db",
                                 "sqlite:///x.db?mode=ro", "memory://",
                                 "sqlite:///data/co\x00deq.db"])  # a YAML "\0" escape
def test_a_url_it_cannot_use_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="sqlite"):
        path_of(url)


async def test_registered_as_the_sqlite_scheme_and_creates_parent_directories(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_storage("sqlite:///nested/dir/codeq.db", load_settings(environ={}))
    assert isinstance(store, SqliteStorage)
    await store.open()
    try:
        await store.ping()
        assert (tmp_path / "nested" / "dir" / "codeq.db").is_file()
    finally:
        await store.close()
    absolute = tmp_path / "abs" / "codeq.db"
    store = open_storage(f"sqlite:///{absolute}", load_settings(environ={}))
    assert isinstance(store, SqliteStorage) and store.path == absolute


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    store = await opened(tmp_path / "codeq.db")
    try:
        db = sqlite3.connect(tmp_path / "codeq.db")
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
    finally:
        await store.close()


# -- durability --------------------------------------------------------------------------------
async def test_everything_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    store = await opened(path)
    ready = await store.create(new_task(store, priority=2, key="k", payload=[1, {"a": None}]),
                               now=T0)
    urgent = await store.create(new_task(store, priority=9), now=T0)
    delayed = await store.create(new_task(store, delay=60), now=T0)
    dead = await store.create(new_task(store, OTHER, max_attempts=1), now=T0)
    (leased_dead,) = await store.claim([OTHER], worker_id="w", lease_seconds=30, count=1, now=T0)
    await store.nack(dead[0].id, worker_id="w", lease_id=leased_dead.lease_id, delay_seconds=0,
                     reason="boom", now=T0 + 1)
    (done,) = await store.claim([CMD], worker_id="w", lease_seconds=30, count=1, now=T0 + 2)
    assert done.id == urgent[0].id
    record, _ = await store.complete(done.id, lease_id=done.lease_id, now=T0 + 3,
                                     result=ResultRecord(done.id, Status.COMPLETED, {"ok": 1},
                                                         worker_id="w"))
    big = await store.create(new_task(store, payload={"huge": 2**80}), now=T0 + 4)
    (running,) = await store.claim([CMD], worker_id="w", lease_seconds=30, count=1, now=T0 + 4)
    await store.set_paused(OTHER, True)
    before = {t.id: await store.get(t.id) for t in (ready[0], delayed[0], dead[0], done, big[0])}
    await store.close()

    store = await opened(path)
    try:
        for task_id, task in before.items():
            assert await store.get(task_id) == task
        assert await store.get_result(done.id) == record
        assert getattr(before[big[0].id], "payload", None) == {"huge": 2**80}
        assert await store.commands() == [CMD, OTHER]
        assert (await store.queue_stats(OTHER, now=T0 + 5)).paused
        assert [t.id for t in (await store.dlq(OTHER, limit=10, cursor=None)).tasks] == [dead[0].id]
        replay, created = await store.create(new_task(store, key="k"), now=T0 + 5)
        assert not created and replay.id == ready[0].id
        expired = await store.expired_leases(now=T0 + 100, limit=10)
        assert [t.id for t in expired] == [running.id]
        assert running.id == big[0].id
        claimed = await store.claim(None, worker_id="w", lease_seconds=30, count=10, now=T0 + 100)
        assert [t.id for t in claimed] == [delayed[0].id, ready[0].id]
        audit(path)
    finally:
        await store.close()


async def test_the_ready_order_continues_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    store = await opened(path)
    first = [(await store.create(new_task(store), now=T0))[0].id for _ in range(3)]
    await store.close()
    store = await opened(path)
    try:
        later = [(await store.create(new_task(store), now=T0))[0].id for _ in range(3)]
        got = await store.claim([CMD], worker_id="w", lease_seconds=30, count=10, now=T0)
        assert [t.id for t in got] == first + later
    finally:
        await store.close()


async def test_a_file_of_the_previous_schema_version_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    store = await opened(path)
    task, _ = await store.create(new_task(store, webhook=HOOK), now=T0)
    await store.close()
    db = sqlite3.connect(path)  # as the previous release left it: its tables, version 1
    for table in ("outbox", "subscriptions", "turns"):
        db.execute(f"DROP TABLE {table}")
    db.execute("PRAGMA user_version = 1")
    db.close()

    store = await opened(path)
    try:
        assert await store.get(task.id) == task
        (leased,) = await store.claim([CMD], worker_id="w", lease_seconds=30, count=1, now=T0)
        await store.complete(leased.id, lease_id=leased.lease_id, now=T0 + 1,
                             result=ResultRecord(leased.id, Status.COMPLETED, 1, worker_id="w"))
        assert [c.task_id for c in await store.callbacks()] == [task.id]
        assert await store.next_turn("group:g") == 1
    finally:
        await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    finally:
        db.close()


# -- several stores on one file ---------------------------------------------------------------
async def test_two_stores_on_one_file_never_hand_out_a_task_twice(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    one, two = await opened(path), await opened(path)
    try:
        total = 400
        for start in range(0, total, 100):
            maker = one if start % 200 else two
            await maker.create_many([new_task(maker, CMD if i % 2 else OTHER, priority=i % 10)
                                     for i in range(100)], now=T0)
        seen: Counter[str] = Counter()

        async def worker(store: SqliteStorage, name: str) -> None:
            while tasks := await store.claim(None, worker_id=name, lease_seconds=30, count=3,
                                             now=T0):
                for task in tasks:
                    seen[task.id] += 1
                    if seen[task.id] % 2:
                        await store.abandon(task.id, worker_id=name, lease_id=task.lease_id,
                                            now=T0)
                    else:
                        await store.complete(task.id, lease_id=task.lease_id, now=T0,
                                             result=ResultRecord(task.id, Status.COMPLETED, 1,
                                                                 worker_id=name))

        await asyncio.gather(*(worker(store, f"{label}{n}") for n in range(8)
                               for label, store in (("a", one), ("b", two))))
        assert len(seen) == total and set(seen.values()) == {2}
        held = audit(path)
        assert held == Counter({(CMD, Where.DONE): total // 2, (OTHER, Where.DONE): total // 2})
        for store in (one, two):
            stats = await store.queue_stats(CMD, now=T0)
            assert (stats.ready, stats.in_progress) == (0, 0)
    finally:
        await one.close()
        await two.close()


async def test_a_commit_by_another_store_wakes_claims_waiting_here(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    one, two = await opened(path), await opened(path)
    try:
        with two.ready.listen([CMD]) as waiter:
            assert not await waiter.wait(0.3)  # nothing happens, nothing wakes
            started = time.monotonic()
            await one.create(new_task(one), now=T0)
            assert await waiter.wait(2.0)
            assert time.monotonic() - started < 1.0  # sooner than the scheduler's fallback
        assert len(await two.claim([CMD], worker_id="w", lease_seconds=30, count=1, now=T0)) == 1
    finally:
        await one.close()
        await two.close()


async def test_only_the_store_that_filled_a_ready_queue_announces_it(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    one, two = await opened(path), await opened(path)
    seen: dict[str, list[str]] = {"one": [], "two": []}
    one.available.subscribe(seen["one"].append)
    two.available.subscribe(seen["two"].append)
    try:
        # Concurrent steps are committed together; the first to fill the queue announces it.
        await asyncio.gather(*(one.create(new_task(one), now=T0) for _ in range(10)))
        assert seen == {"one": [CMD], "two": []}
        leased = await two.claim([CMD], worker_id="w", lease_seconds=30, count=10, now=T0)
        assert len(leased) == 10
        await two.abandon(leased[0].id, worker_id="w", lease_id=leased[0].lease_id, now=T0 + 1)
        await two.abandon(leased[1].id, worker_id="w", lease_id=leased[1].lease_id, now=T0 + 1)
        await asyncio.sleep(3 * queries.FOREIGN_COMMIT_CHECK_SECONDS)  # one notices the commits
        assert seen == {"one": [CMD], "two": [CMD]}
    finally:
        await one.close()
        await two.close()


async def test_throttles_turns_and_outbox_takes_are_decided_once_across_stores(
        tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    one, two = await opened(path), await opened(path)
    stores = (one, two)
    try:
        await one.save_subscription(Subscription(
            id="s-1", owner="w", callback_url=HOOK, event_types=[CMD],
            delivery_mode=DeliveryMode.GROUP, group_id="g", min_interval_seconds=5,
            created_at=T0, expires_at=T0 + 300))
        await one.create_many([new_task(one, webhook=HOOK) for _ in range(12)], now=T0)
        leased = await two.claim([CMD], worker_id="w", lease_seconds=30, count=12, now=T0)
        await asyncio.gather(*(stores[n % 2].complete(
            task.id, lease_id=task.lease_id, now=T0 + 1,
            result=ResultRecord(task.id, Status.COMPLETED, n, worker_id="w"))
            for n, task in enumerate(leased)))
        granted = await asyncio.gather(*(store.mark_notified("s-1", now=T0, min_interval_seconds=5)
                                         for store in stores for _ in range(10)))
        assert granted.count(True) == 1
        turns = await asyncio.gather(*(store.next_turn("group:g") for store in stores
                                       for _ in range(15)))
        assert sorted(turns) == list(range(1, 31))
        batches = await asyncio.gather(*(store.due_callbacks(now=T0 + 10, limit=4, hold_seconds=30)
                                         for store in stores for _ in range(3)))
        taken = [c.task_id for batch in batches for c in batch]
        assert len(taken) == len(set(taken)) == 12
        assert set(taken) == {task.id for task in leased}
    finally:
        await one.close()
        await two.close()


CLAIMER = textwrap.dedent("""
    import asyncio, sys
    from codeq_sqlite import SqliteStorage

    async def main(path, name):
        store = SqliteStorage(path)
        await store.open()
        ids = []
        while tasks := await store.claim(None, worker_id=name, lease_seconds=30, count=2,
                                         now=1_700_000_000.0):
            ids.extend(t.id for t in tasks)
        await store.close()
        print("\\n".join(ids))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


async def test_processes_sharing_one_file_split_the_work(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    store = await opened(path)
    created = {t.id for t, _ in await store.create_many([new_task(store) for _ in range(600)],
                                                        now=T0)}
    await store.close()
    procs = [_python(CLAIMER, str(path), f"p{n}") for n in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    claimed = [line for out, _ in outputs for line in out.split()]
    assert len(claimed) == len(set(claimed)) == len(created)
    assert set(claimed) == created
    assert audit(path) == Counter({(CMD, Where.RUNNING): 600})


# -- crashes ------------------------------------------------------------------------------------
CHURN = textwrap.dedent("""
    import asyncio, sys
    from codeq.core.domain import ResultRecord, Status, Task
    from codeq_sqlite import SqliteStorage

    async def main(path):
        store = SqliteStorage(path)
        await store.open()
        now = 1_700_000_000.0
        print("ready", flush=True)
        n = 0
        while True:
            n += 1
            batch = [Task(id=store.new_task_id("crash"), command="crash", payload={"n": n},
                          priority=n % 10, max_attempts=2, created_at=now, updated_at=now,
                          visible_at=now + 5 if n % 3 == 0 else None,
                          webhook="http://127.0.0.1:9/hook" if i % 2 else None)
                     for i in range(5)]
            await store.create_many(batch, now=now)
            now += 1
            await store.promote_due(now=now, limit=100)
            for task in await store.claim(None, worker_id="w", lease_seconds=3, count=4, now=now):
                if n % 4 == 0:
                    await store.nack(task.id, worker_id="w", lease_id=task.lease_id,
                                     delay_seconds=2, reason="again", now=now)
                elif n % 4 == 1:
                    await store.complete(task.id, lease_id=task.lease_id, now=now,
                                         result=ResultRecord(task.id, Status.COMPLETED, n,
                                                             worker_id="w"))
            for task in await store.expired_leases(now=now, limit=50):
                await store.expire_lease(task.id, lease_id=task.lease_id, delay_seconds=0, now=now)

    asyncio.run(main(sys.argv[1]))
""")


@pytest.mark.parametrize("after", [0.3, 0.8])
async def test_a_kill_9_at_any_moment_leaves_a_consistent_file(tmp_path: Path,
                                                               after: float) -> None:
    path = tmp_path / "codeq.db"
    proc = _python(CHURN, str(path))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    await asyncio.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    held = audit(path)
    assert sum(held.values()) > 0
    owed, outbox = owed_and_outbox(path)
    assert owed and owed == outbox, "each finished task with a webhook owes exactly one callback"
    store = await opened(path)
    try:
        stats = await store.queue_stats("crash", now=T0)
        assert stats.ready + stats.delayed == held["crash", Where.READY] + held["crash", Where.DELAYED]
        drained = await store.claim(None, worker_id="after", lease_seconds=30, count=10**5,
                                    now=T0 + 10**6)
        assert len(drained) == held["crash", Where.READY] + held["crash", Where.DELAYED]
        audit(path)
    finally:
        await store.close()


# -- failures -----------------------------------------------------------------------------------
async def test_a_write_lock_held_too_long_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    store = await opened(path, busy_timeout_ms=100)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        task = new_task(store)
        with pytest.raises(StoreUnavailable, match="write lock"):
            await store.create(task, now=T0)
        assert await store.get(task.id) is None  # reads still work beside the writer
        blocker.execute("ROLLBACK")
        await store.create(task, now=T0)
        assert (await store.get(task.id)) == task
    finally:
        blocker.close()
        await store.close()


async def test_a_file_that_is_not_a_database_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable, match="not a database"):
        await opened(path)


async def test_a_directory_it_cannot_create_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="cannot create the directory"):
        await opened(tmp_path / "file" / "codeq.db")


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "codeq.db"
    await (await opened(path)).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreUnavailable, match="schema version 99"):
        await opened(path)


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = await opened(tmp_path / "codeq.db")
    await store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.ping()
    await store.close()  # twice is fine


async def test_a_refused_step_in_a_batch_changes_only_itself(tmp_path: Path) -> None:
    """Steps that arrive together are committed together; a refusal undoes only its own."""
    store = await opened(tmp_path / "codeq.db")
    try:
        tasks = [t for t, _ in await store.create_many([new_task(store) for _ in range(6)],
                                                        now=T0)]
        leased = await store.claim([CMD], worker_id="w", lease_seconds=30, count=6, now=T0)
        calls = []
        for n, task in enumerate(leased):
            lease = task.lease_id if n % 2 else "not-the-lease"
            calls.append(store.nack(task.id, worker_id="w", lease_id=lease, delay_seconds=0,
                                    reason=None, now=T0 + 1))
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert [isinstance(r, Exception) for r in results] == [True, False] * 3
        assert [r[1] for r in results if isinstance(r, tuple)] == [Outcome.REQUEUED] * 3
        statuses = [getattr(await store.get(t.id), "status", None) for t in leased]
        assert statuses == [Status.IN_PROGRESS, Status.PENDING] * 3
        assert len(tasks) == 6 and audit(tmp_path / "codeq.db")[CMD, Where.READY] == 3
    finally:
        await store.close()


# -- indexes -------------------------------------------------------------------------------------
HOT_QUERIES = {
    "claim": (queries.SELECT_READY_OF, (CMD, 1)),
    "claim: anything due": (queries.ANY_DUE, (T0,)),
    "claim: due of a command": (queries.SELECT_DUE_OF, (CMD, T0, 1)),
    "promote": (queries.SELECT_DUE, (T0, 10)),
    "reap": (queries.SELECT_EXPIRED, (T0, 10)),
    "dlq": (queries.SELECT_DLQ, (CMD, -1, 10)),
    "cleanup": (queries.SELECT_FINISHED, (T0, 10)),
    "cleanup of a command": (queries.SELECT_FINISHED_OF, (CMD, T0, 10)),
    "idempotency": (queries.SELECT_IDEMPOTENT, (CMD, "k")),
    "due count": (queries.COUNT_DUE, (CMD, T0)),
    "oldest ready": (queries.OLDEST_ARRIVAL, (CMD,)),
    "list by command": (queries.SELECT_LIST[True, False], (CMD, -1, 10)),
    "list by status": (queries.SELECT_LIST[False, True], ("PENDING", -1, 10)),
    "restore": (queries.TASK_EXISTS, ("id",)),
    "was the ready queue empty": (READ_READY_DEPTH, (CMD,)),
    "due callbacks": (delivery.SELECT_DUE_CALLBACKS, (T0, 10)),
    "sweep subscriptions": (delivery.SWEEP_SUBSCRIPTIONS, (T0, 10)),
    "throttle": (delivery.MARK_NOTIFIED, (T0, "s-1", T0, 5.0)),
}


@pytest.mark.parametrize("name", sorted(HOT_QUERIES))
async def test_hot_paths_use_an_index_and_no_sort(tmp_path: Path, name: str) -> None:
    await (await opened(tmp_path / "codeq.db")).close()
    db = sqlite3.connect(tmp_path / "codeq.db")
    try:
        sql, params = HOT_QUERIES[name]
        plan = " | ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    finally:
        db.close()
    # The oldest-ready read walks its own ten-row list of priorities, not a table.
    steps = [step for step in plan.split(" | ")
             if step not in ("SCAN 10 CONSTANT ROWS", "SEARCH levels")]
    assert all("USING" in step for step in steps if step.startswith(("SCAN", "SEARCH"))), plan
    assert "TEMP B-TREE" not in plan, plan
