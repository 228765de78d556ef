"""The storage contract suite: what every codeq storage backend must do.

Every test takes a ``store`` fixture: an opened, empty ``codeq.core.storage.Storage``.
codeq's own ``tests/contract`` provides it for every registered backend (see
``codeq.testing.providers``). A third-party backend runs the same tests with::

    # tests/conftest.py
    pytest.register_assert_rewrite("codeq.testing.contract")  # readable assert failures

    @pytest_asyncio.fixture
    async def store(tmp_path):
        s = MyStorage(...)
        await s.open()
        yield s
        await s.close()

    # tests/test_contract.py
    from codeq.testing.contract import *  # noqa: F403

The suite needs pytest-asyncio. Time never comes from the wall: each call gets
an explicit ``now`` and tests move time forward by passing a later one.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from codeq.core.domain import (
    HISTORY_LIMIT,
    Artifact,
    BackoffSpec,
    Outcome,
    QueueStats,
    ResultRecord,
    Status,
    Task,
)
from codeq.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from codeq.core.lifecycle import LEASE_EXPIRED, MAX_ATTEMPTS_ERROR
from codeq.core.storage import Storage

__all__ = [
    "TestAbandon", "TestCancel", "TestClaim", "TestCleanup", "TestComplete", "TestConcurrency",
    "TestCreate", "TestDeadLetterQueue", "TestDelayed", "TestForeignIds", "TestHeartbeat",
    "TestLeaseExpiry", "TestListTasks", "TestNack", "TestOrdering", "TestPause", "TestQueueStats",
    "TestReadySignal", "TestTimeline", "TestUnknownTask",
]

T0 = 1_700_000_000.0
CMD = "contract.alpha"
OTHER = "contract.beta"
KEEP = "contract.gamma"
LEASE = 30.0
WORKER = "worker-1"
STRANGER = "worker-2"
#: How long a test waits for a wake-up that should already have happened.
SIGNAL_WAIT = 2.0

asyncio_test = pytest.mark.asyncio


# -- helpers ---------------------------------------------------------------------
def make_task(store: Storage, command: str = CMD, *, now: float = T0, priority: int = 5,
              max_attempts: int = 3, payload: Any = None, delay: float = 0.0,
              key: str | None = None, webhook: str | None = None,
              backoff: BackoffSpec | None = None) -> Task:
    """A new task as the scheduler builds it (not yet stored)."""
    task = Task(id=store.new_task_id(command), command=command,
                payload={"n": 1} if payload is None else payload, priority=priority,
                max_attempts=max_attempts, created_at=now, updated_at=now, webhook=webhook,
                run_at=now + delay if delay > 0 else None,
                visible_at=now + delay if delay > 0 else None, idempotency_key=key,
                backoff=backoff)
    task.record(now, "created")
    return task


async def add(store: Storage, command: str = CMD, *, now: float = T0, **fields: Any) -> Task:
    """Create a task; it must be new."""
    task, created = await store.create(make_task(store, command, now=now, **fields), now=now)
    assert created
    return task


async def claim(store: Storage, commands: Sequence[str] | None = None, *, worker: str = WORKER,
                now: float = T0, count: int = 1, lease: float = LEASE) -> list[Task]:
    return await store.claim(commands, worker_id=worker, lease_seconds=lease, count=count, now=now)


async def claim_one(store: Storage, commands: Sequence[str] | None = None, *,
                    worker: str = WORKER, now: float = T0, lease: float = LEASE) -> Task:
    tasks = await claim(store, commands, worker=worker, now=now, lease=lease)
    assert len(tasks) == 1, f"expected one task, got {len(tasks)}"
    return tasks[0]


async def claim_ids(store: Storage, commands: Sequence[str] | None = None, *, now: float = T0,
                    count: int = 100) -> list[str]:
    return [t.id for t in await claim(store, commands, now=now, count=count)]


def submission(task_id: str, worker: str = WORKER, *, status: Status = Status.COMPLETED,
               result: Any = None, error: str | None = None,
               artifacts: Sequence[Artifact] = ()) -> ResultRecord:
    return ResultRecord(task_id=task_id, status=status,
                        result={"ok": True} if result is None and status is Status.COMPLETED
                        else result,
                        error=error, artifacts=list(artifacts), worker_id=worker)


async def complete(store: Storage, task: Task, *, now: float = T0,
                   status: Status = Status.COMPLETED) -> ResultRecord:
    record, stored = await store.complete(
        task.id, result=submission(task.id, status=status,
                                   error="failed" if status is Status.FAILED else None),
        lease_id=task.lease_id, now=now)
    assert stored
    return record


async def dead_letter(store: Storage, command: str = CMD, *, now: float = T0) -> Task:
    """A task that went to ``command``'s DLQ at ``now``."""
    task = await add(store, command, now=now, max_attempts=1)
    leased = await claim_one(store, [command], now=now)
    assert leased.id == task.id
    _, outcome = await store.nack(task.id, worker_id=WORKER, lease_id=leased.lease_id,
                                  delay_seconds=0, reason="boom", now=now)
    assert outcome is Outcome.DLQ
    return task


async def stored(store: Storage, task_id: str) -> Task:
    task = await store.get(task_id)
    assert task is not None, f"task {task_id} is gone"
    return task


async def counts(store: Storage, command: str = CMD, *, now: float = T0) -> tuple[int, ...]:
    """(ready, delayed, in progress, dlq) of ``command``."""
    s = await store.queue_stats(command, now=now)
    return s.ready, s.delayed, s.in_progress, s.dlq


def to_the_millisecond(stats: QueueStats) -> QueueStats:
    """``stats`` with ``oldest_ready_at`` rounded to the millisecond: a store may keep it to
    10 microseconds (a sequence number), and the suite's times are whole seconds."""
    if stats.oldest_ready_at is None:
        return stats
    return replace(stats, oldest_ready_at=round(stats.oldest_ready_at, 3))


async def oldest_ready_at(store: Storage, command: str = CMD, *, now: float) -> float | None:
    return to_the_millisecond(await store.queue_stats(command, now=now)).oldest_ready_at


async def all_tasks(store: Storage, *, command: str | None = None, status: Status | None = None,
                    limit: int = 1000) -> list[Task]:
    """Walk every page of ``list_tasks``."""
    out: list[Task] = []
    cursor = None
    while True:
        page = await store.list_tasks(command=command, status=status, limit=limit, cursor=cursor)
        assert len(page.tasks) <= limit
        out.extend(page.tasks)
        if page.next_cursor is None:
            return out
        assert page.tasks, "a page with a next cursor must not be empty"
        cursor = page.next_cursor


def _numbered(cursor: str) -> str:
    if not re.search(r"[0-9]", cursor):
        pytest.skip(f"this store's cursors hold no number ({cursor!r})")
    return cursor


def oversized(cursor: str) -> str:
    """``cursor`` with every number in it made far too large for a 64-bit integer, as a
    client that tampers with a cursor might send it (skips when it holds no number)."""
    return re.sub(r"[0-9]+", "9" * 40, _numbered(cursor))


def superscripted(cursor: str) -> str:
    """``cursor`` with its digits written as ``²``, a digit to ``str.isdigit`` but no number
    to ``int`` (skips when it holds no number)."""
    return re.sub(r"[0-9]", "\u00b2", _numbered(cursor))


def huge(cursor: str) -> str:
    """``cursor`` with every number in it made 5000 digits long: more than ``int`` converts
    from text by default (4300 digits), so reading it as a position needs a length check
    first (skips when it holds no number)."""
    return re.sub(r"[0-9]+", "9" * 5000, _numbered(cursor))


#: A cursor tampered with: an oversized number may be refused (``InvalidInput``) or read as a
#: position; digits that are no number are refused. Never another error (a 500).
TAMPERED = pytest.mark.parametrize(("tamper", "readable"),
                                   [(oversized, True), (huge, True), (superscripted, False)],
                                   ids=["oversized", "huge", "superscripted"])


async def refused_or_read(listing: Awaitable[Any], readable: bool) -> None:
    try:
        await listing
    except InvalidInput:
        return
    assert readable, "a cursor no store could have made was read"


#: Nesting far deeper than Python's JSON encoder can write (it recurses once per level).
TOO_DEEP = 5000


def nested(depth: int) -> list[Any]:
    """``[[[...[1]...]]]``, ``depth`` lists deep."""
    value: list[Any] = [1]
    for _ in range(depth - 1):
        value = [value]
    return value


def depth_of(value: Any) -> int:
    """How many lists deep ``nested`` built ``value`` (-1 when it is not such a value)."""
    depth = 0
    while isinstance(value, list) and len(value) == 1:
        depth, value = depth + 1, value[0]
    return depth if value == 1 and value is not True else -1


def as_json(value: Any) -> str:
    """Exact JSON identity: ``1`` and ``true`` differ, and so does key order."""
    return json.dumps(value)


# -- producers ------------------------------------------------------------------------
@asyncio_test
class TestCreate:
    async def test_a_ready_task_is_stored_as_sent(self, store: Storage) -> None:
        task = make_task(store, payload={"nested": {"list": [1, 2.5, "three", None, True]}},
                         priority=7, max_attempts=4, webhook="https://example.com/hook",
                         key="order-17", backoff=BackoffSpec("fixed", 2.0, 10.0))
        saved, created = await store.create(task, now=T0)
        assert created
        assert saved == task
        got = await stored(store, task.id)
        assert got == task
        assert got.status is Status.PENDING and got.attempts == 0
        assert [h.event for h in got.history] == ["created"]

    async def test_a_delayed_task_is_stored_as_sent(self, store: Storage) -> None:
        task = make_task(store, delay=90, payload=["a"], priority=0)
        saved, created = await store.create(task, now=T0)
        assert created and saved == task
        assert await stored(store, task.id) == task

    async def test_a_visibility_time_already_past_means_ready(self, store: Storage) -> None:
        task = make_task(store)
        task.visible_at = task.run_at = T0 - 10
        await store.create(task, now=T0)
        assert await counts(store, now=T0) == (1, 0, 0, 0)
        assert (await claim_one(store, now=T0)).id == task.id

    @pytest.mark.parametrize("payload", [
        0, 1.5, True, False, "text", [], {}, [1, "a", {"b": None}, [True, 1]],
        {"z": 1, "a": {"y": [1, 2], "b": 2}}, {"unicode": "ñ€😀", "big": 2**53, "neg": -1e-9},
        {"wide": 123456789012345678901234567890, "u64": 2**64, "below_i64": -(2**63) - 1},
    ], ids=repr)
    async def test_payload_comes_back_exactly(self, store: Storage, payload: Any) -> None:
        task = await add(store, payload=payload)
        got = await stored(store, task.id)
        assert as_json(got.payload) == as_json(payload)
        leased = await claim_one(store)
        assert as_json(leased.payload) == as_json(payload)

    async def test_a_null_payload_is_kept(self, store: Storage) -> None:
        task = make_task(store)
        task.payload = None
        await store.create(task, now=T0)
        assert (await stored(store, task.id)).payload is None

    async def test_a_payload_too_deep_to_write_is_refused_or_kept(self, store: Storage) -> None:
        """A store that cannot write a value says so (``InvalidInput``, a 400), never a 500."""
        task = make_task(store, payload=nested(TOO_DEEP))
        try:
            await store.create(task, now=T0)
        except InvalidInput as exc:
            assert "payload" in str(exc)
            assert await store.get(task.id) is None
            assert await counts(store) == (0, 0, 0, 0)
            return
        assert depth_of((await stored(store, task.id)).payload) == TOO_DEEP
        assert depth_of((await claim_one(store)).payload) == TOO_DEEP

    async def test_a_delayed_task_waits_for_its_time(self, store: Storage) -> None:
        task = await add(store, delay=60)
        got = await stored(store, task.id)
        assert got.status is Status.PENDING and got.visible_at == T0 + 60
        assert await counts(store, now=T0) == (0, 1, 0, 0)
        assert await claim(store, now=T0 + 59.5) == []
        assert await counts(store, now=T0 + 60) == (1, 0, 0, 0)
        assert (await claim_one(store, now=T0 + 60)).id == task.id

    async def test_same_key_same_command_returns_the_original(self, store: Storage) -> None:
        first = await add(store, key="k-1", payload={"v": 1})
        again = make_task(store, key="k-1", payload={"v": 2}, now=T0 + 5)
        replay, created = await store.create(again, now=T0 + 5)
        assert not created
        assert replay == first
        assert await store.get(again.id) is None
        assert [t.id for t in await all_tasks(store)] == [first.id]
        assert await counts(store) == (1, 0, 0, 0)

    async def test_the_key_is_per_command(self, store: Storage) -> None:
        first = await add(store, CMD, key="shared")
        second = await add(store, OTHER, key="shared")
        assert first.id != second.id
        assert await counts(store, CMD) == (1, 0, 0, 0)
        assert await counts(store, OTHER) == (1, 0, 0, 0)

    async def test_the_key_still_holds_after_the_task_finished(self, store: Storage) -> None:
        first = await add(store, key="k-2")
        await complete(store, await claim_one(store), now=T0 + 1)
        replay, created = await store.create(make_task(store, key="k-2", now=T0 + 2), now=T0 + 2)
        assert not created and replay.id == first.id and replay.status is Status.COMPLETED

    async def test_create_many_keeps_order_and_replays_keys(self, store: Storage) -> None:
        a = make_task(store, key="x")
        b = make_task(store, OTHER)
        c = make_task(store, key="x", payload={"other": True})
        results = await store.create_many([a, b, c], now=T0)
        assert [(t.id, created) for t, created in results] == [
            (a.id, True), (b.id, True), (a.id, False)]
        assert await store.get(c.id) is None

    async def test_returned_tasks_are_copies(self, store: Storage) -> None:
        saved = await add(store, payload={"v": 1})
        saved.priority = 0
        saved.history.clear()
        fetched = await stored(store, saved.id)
        fetched.status = Status.COMPLETED
        fetched.history.append(fetched.history[0])
        again = await stored(store, saved.id)
        assert again.priority == 5 and again.status is Status.PENDING
        assert len(again.history) == 1
        leased = await claim_one(store)
        leased.lease_id = "forged"
        leased.worker_id = STRANGER
        record = await complete(store, await stored(store, saved.id), now=T0 + 1)
        record.result = "changed"
        record.artifacts.append(Artifact("extra"))
        kept = await store.get_result(saved.id)
        assert kept is not None and kept.result == {"ok": True} and kept.artifacts == []

    async def test_new_ids_are_distinct_uuids(self, store: Storage) -> None:
        ids = {store.new_task_id(CMD) for _ in range(200)}
        assert len(ids) == 200
        for task_id in ids:
            assert str(uuid.UUID(task_id)) == task_id.lower()

    async def test_nothing_is_found_in_an_empty_store(self, store: Storage) -> None:
        await store.ping()
        unknown = str(uuid.uuid4())
        assert await store.get(unknown) is None
        assert await store.get_result(unknown) is None
        assert await store.commands() == []
        assert await store.all_queue_stats(now=T0) == []
        assert await claim(store) == []
        page = await store.list_tasks(command=None, status=None, limit=10, cursor=None)
        assert page.tasks == [] and page.next_cursor is None

    async def test_no_result_while_pending(self, store: Storage) -> None:
        task = await add(store)
        assert await store.get_result(task.id) is None


@asyncio_test
class TestListTasks:
    async def _mixed(self, store: Storage) -> list[Task]:
        """Eight tasks over two commands, one second apart; the 1st runs, the 2nd is done."""
        tasks = [await add(store, CMD if i % 3 else OTHER, now=T0 + i) for i in range(8)]
        running = await claim_one(store, [OTHER], now=T0 + 10)
        assert running.id == tasks[0].id
        done = await claim_one(store, [CMD], now=T0 + 10)
        assert done.id == tasks[1].id
        await complete(store, done, now=T0 + 11)
        return tasks

    async def test_everything_in_creation_order(self, store: Storage) -> None:
        tasks = await self._mixed(store)
        page = await store.list_tasks(command=None, status=None, limit=100, cursor=None)
        assert [t.id for t in page.tasks] == [t.id for t in tasks]
        assert page.next_cursor is None

    async def test_filters(self, store: Storage) -> None:
        tasks = await self._mixed(store)
        other = [t.id for t in tasks if t.command == OTHER]
        assert [t.id for t in await all_tasks(store, command=OTHER)] == other
        assert [t.id for t in await all_tasks(store, status=Status.IN_PROGRESS)] == [tasks[0].id]
        assert [t.id for t in await all_tasks(store, status=Status.COMPLETED)] == [tasks[1].id]
        pending = [t.id for t in tasks[2:]]
        assert [t.id for t in await all_tasks(store, status=Status.PENDING)] == pending
        both = await all_tasks(store, command=CMD, status=Status.PENDING)
        assert [t.id for t in both] == [i for i in pending if i not in other]
        assert await all_tasks(store, command="contract.none") == []
        assert await all_tasks(store, status=Status.CANCELLED) == []

    async def test_delayed_tasks_are_pending(self, store: Storage) -> None:
        task = await add(store, delay=100)
        assert [t.id for t in await all_tasks(store, status=Status.PENDING)] == [task.id]

    @pytest.mark.parametrize("limit", [1, 2, 3, 4, 7, 8])
    async def test_pages_cover_everything_once(self, store: Storage, limit: int) -> None:
        tasks = await self._mixed(store)
        pages = []
        cursor = None
        while True:
            page = await store.list_tasks(command=None, status=None, limit=limit, cursor=cursor)
            pages.append([t.id for t in page.tasks])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            assert len(pages) < 20, "paging does not end"
        assert [i for p in pages for i in p] == [t.id for t in tasks]
        assert all(len(p) == limit for p in pages[:-1])
        assert 1 <= len(pages[-1]) <= limit  # the last page is not an empty one

    async def test_filtered_pages(self, store: Storage) -> None:
        tasks = await self._mixed(store)
        expected = [t.id for t in tasks if t.command == CMD]
        assert [t.id for t in await all_tasks(store, command=CMD, limit=2)] == expected

    async def test_a_cursor_survives_deletions(self, store: Storage) -> None:
        tasks = [await add(store, now=T0 + i) for i in range(4)]
        first = await store.list_tasks(command=None, status=None, limit=2, cursor=None)
        assert [t.id for t in first.tasks] == [tasks[0].id, tasks[1].id]
        await store.cancel(tasks[1].id, now=T0 + 5)
        assert len(await store.cleanup(finished_before=T0 + 6, limit=10, command=None)) == 1
        rest = await store.list_tasks(command=None, status=None, limit=2, cursor=first.next_cursor)
        assert [t.id for t in rest.tasks] == [tasks[2].id, tasks[3].id]

    @pytest.mark.parametrize("cursor", ["not-a-cursor", "%%%", "-1", "9" * 40, "\x00"])
    async def test_a_foreign_cursor_is_invalid_input(self, store: Storage, cursor: str) -> None:
        await add(store)
        with pytest.raises(InvalidInput):
            await store.list_tasks(command=None, status=None, limit=10, cursor=cursor)

    @TAMPERED
    async def test_a_tampered_cursor(self, store: Storage, tamper: Callable[[str], str],
                                     readable: bool) -> None:
        for i in range(3):
            await add(store, now=T0 + i)
        first = await store.list_tasks(command=None, status=None, limit=1, cursor=None)
        assert first.next_cursor is not None
        await refused_or_read(store.list_tasks(command=None, status=None, limit=1,
                                               cursor=tamper(first.next_cursor)), readable)


# -- workers ----------------------------------------------------------------------------
@asyncio_test
class TestClaim:
    async def test_a_claim_leases_the_task(self, store: Storage) -> None:
        task = await add(store, priority=3)
        leased = await claim_one(store, [CMD], worker="w-7", now=T0 + 5, lease=30)
        assert leased.id == task.id
        assert leased.status is Status.IN_PROGRESS
        assert leased.attempts == 1
        assert leased.worker_id == "w-7"
        assert isinstance(leased.lease_id, str) and leased.lease_id
        assert leased.lease_until == T0 + 35
        assert leased.updated_at == T0 + 5
        assert leased.priority == 3 and leased.payload == task.payload
        assert (leased.history[-1].event, leased.history[-1].worker_id) == ("claimed", "w-7")
        assert await stored(store, task.id) == leased
        assert await counts(store, now=T0 + 5) == (0, 0, 1, 0)

    async def test_every_claim_gets_a_fresh_lease(self, store: Storage) -> None:
        await add(store, max_attempts=10)
        leases = []
        for n in range(1, 5):
            leased = await claim_one(store, now=T0 + n)
            assert leased.attempts == n
            leases.append(leased.lease_id)
            await store.abandon(leased.id, worker_id=WORKER, lease_id=leased.lease_id,
                                now=T0 + n)
        assert len(set(leases)) == 4

    async def test_count_takes_several_in_order(self, store: Storage) -> None:
        tasks = [await add(store, now=T0 + i) for i in range(5)]
        batch = await claim(store, count=3, now=T0 + 10)
        assert [t.id for t in batch] == [t.id for t in tasks[:3]]
        assert len({t.lease_id for t in batch}) == 3
        assert all(t.status is Status.IN_PROGRESS and t.attempts == 1 for t in batch)
        rest = await claim(store, count=10, now=T0 + 10)
        assert [t.id for t in rest] == [t.id for t in tasks[3:]]
        assert await claim(store, count=10, now=T0 + 10) == []

    async def test_nothing_to_claim(self, store: Storage) -> None:
        assert await claim(store) == []
        await add(store)
        assert await claim(store, ["contract.unknown"]) == []
        assert await claim(store, []) == []
        assert await counts(store) == (1, 0, 0, 0)

    async def test_only_the_requested_commands(self, store: Storage) -> None:
        mine = await add(store, CMD)
        theirs = await add(store, OTHER, now=T0 + 1)
        assert await claim_ids(store, [OTHER], now=T0 + 2) == [theirs.id]
        assert await claim_ids(store, [OTHER], now=T0 + 2) == []
        assert await claim_ids(store, None, now=T0 + 2) == [mine.id]

    async def test_a_running_task_is_not_handed_out_again(self, store: Storage) -> None:
        await add(store)
        await claim_one(store)
        assert await claim(store, worker=STRANGER, now=T0 + 1) == []


@asyncio_test
class TestOrdering:
    async def test_higher_priority_first_across_commands(self, store: Storage) -> None:
        low = await add(store, CMD, priority=1, now=T0)
        high = await add(store, OTHER, priority=8, now=T0 + 1)
        mid_a = await add(store, CMD, priority=5, now=T0 + 2)
        mid_b = await add(store, OTHER, priority=5, now=T0 + 3)
        top = await add(store, CMD, priority=9, now=T0 + 4)
        expected = [top.id, high.id, mid_a.id, mid_b.id, low.id]
        assert await claim_ids(store, [CMD, OTHER], now=T0 + 5) == expected

    async def test_the_same_order_one_at_a_time_and_for_every_command(self, store: Storage) -> None:
        low = await add(store, CMD, priority=0, now=T0)
        high = await add(store, OTHER, priority=9, now=T0 + 1)
        got = [(await claim_one(store, None, now=T0 + 2)).id for _ in range(2)]
        assert got == [high.id, low.id]

    async def test_fifo_within_a_command_and_tier(self, store: Storage) -> None:
        tasks = [await add(store, now=T0 + i * 0.001) for i in range(12)]
        got = [(await claim_one(store, now=T0 + 1)).id for _ in range(12)]
        assert got == [t.id for t in tasks]

    async def test_equal_priority_commands_interleave_by_age(self, store: Storage) -> None:
        order = [CMD, OTHER, CMD, CMD, OTHER, CMD, OTHER, OTHER]
        tasks = [await add(store, command, now=T0 + i) for i, command in enumerate(order)]
        got = [(await claim_one(store, [CMD, OTHER], now=T0 + 10)).id for _ in tasks]
        assert got == [t.id for t in tasks]

    async def test_a_long_queue_does_not_starve_a_short_one(self, store: Storage) -> None:
        for i in range(30):
            await add(store, CMD, now=T0 + i)
        late = await add(store, OTHER, now=T0 + 30)
        for i in range(31, 40):
            await add(store, CMD, now=T0 + i)
        got = await claim_ids(store, [CMD, OTHER], now=T0 + 50, count=31)
        assert got[-1] == late.id and late.id not in got[:-1]

    async def test_a_requeued_task_goes_behind_tasks_already_ready(self, store: Storage) -> None:
        first, second, third = [await add(store, now=T0 + i) for i in range(3)]
        leased = await claim_one(store, now=T0 + 5)
        assert leased.id == first.id
        await store.abandon(first.id, worker_id=WORKER, lease_id=leased.lease_id, now=T0 + 6)
        assert await claim_ids(store, now=T0 + 7) == [second.id, third.id, first.id]

    async def test_a_requeued_task_keeps_its_priority(self, store: Storage) -> None:
        urgent = await add(store, priority=9)
        leased = await claim_one(store)
        for i in range(3):
            await add(store, priority=4, now=T0 + 1 + i)
        await store.nack(urgent.id, worker_id=WORKER, lease_id=leased.lease_id, delay_seconds=0,
                         reason=None, now=T0 + 5)
        assert (await claim_one(store, now=T0 + 6)).id == urgent.id


@asyncio_test
class TestPause:
    async def test_a_paused_command_hands_out_nothing(self, store: Storage) -> None:
        held = await add(store, CMD)
        free = await add(store, OTHER, now=T0 + 1)
        await store.set_paused(CMD, True)
        assert await claim(store, [CMD], now=T0 + 2) == []
        assert await claim_ids(store, None, now=T0 + 2) == [free.id]
        stats = await store.queue_stats(CMD, now=T0 + 2)
        assert stats.paused and stats.ready == 1
        await store.set_paused(CMD, False)
        assert not (await store.queue_stats(CMD, now=T0 + 2)).paused
        assert await claim_ids(store, [CMD], now=T0 + 3) == [held.id]

    async def test_a_paused_command_still_accepts_tasks(self, store: Storage) -> None:
        await store.set_paused(CMD, True)
        await add(store, CMD)
        await add(store, CMD, delay=5)
        assert await counts(store, now=T0 + 10) == (2, 0, 0, 0)
        assert await claim(store, [CMD], now=T0 + 10, count=5) == []
        assert await store.promote_due(now=T0 + 10, limit=10) in ([], [CMD])
        assert await claim(store, None, now=T0 + 10, count=5) == []

    async def test_pausing_records_the_command(self, store: Storage) -> None:
        await store.set_paused("contract.fresh", True)
        assert await store.commands() == ["contract.fresh"]
        assert await store.queue_stats("contract.fresh", now=T0) == QueueStats(
            "contract.fresh", ready=0, delayed=0, in_progress=0, dlq=0, paused=True)

    async def test_running_work_is_not_touched(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store)
        await store.set_paused(CMD, True)
        record, created = await store.complete(leased.id, result=submission(leased.id),
                                               lease_id=leased.lease_id, now=T0 + 1)
        assert created and record.status is Status.COMPLETED


@asyncio_test
class TestDelayed:
    async def test_claimable_exactly_at_its_time(self, store: Storage) -> None:
        task = await add(store, delay=10)
        assert await claim(store, now=T0 + 9.999) == []
        leased = await claim_one(store, now=T0 + 10)
        assert leased.id == task.id and leased.attempts == 1

    async def test_a_due_task_competes_by_priority(self, store: Storage) -> None:
        ready = await add(store, priority=2)
        due = await add(store, OTHER, priority=8, delay=10, now=T0 + 1)
        assert await claim_ids(store, None, now=T0 + 11) == [due.id, ready.id]

    async def test_promote_due_moves_the_oldest_first(self, store: Storage) -> None:
        d1 = await add(store, CMD, delay=10)
        await add(store, CMD, delay=20)
        await add(store, CMD, delay=30)
        d4 = await add(store, OTHER, delay=15)
        assert await store.promote_due(now=T0 + 5, limit=10) == []
        assert sorted(await store.promote_due(now=T0 + 20, limit=2)) == [CMD, OTHER]
        assert await counts(store, CMD, now=T0 + 20) == (2, 1, 0, 0)
        assert (await stored(store, d1.id)).history[-1].event == "promoted"
        assert (await stored(store, d4.id)).status is Status.PENDING
        assert await store.promote_due(now=T0 + 20, limit=10) == [CMD]
        assert await store.promote_due(now=T0 + 20, limit=10) == []
        assert await counts(store, CMD, now=T0 + 20) == (2, 1, 0, 0)
        assert await counts(store, OTHER, now=T0 + 20) == (1, 0, 0, 0)
        assert [t.id for t in await claim(store, [OTHER], now=T0 + 20)] == [d4.id]

    async def test_promoted_tasks_are_claimed_in_time_order(self, store: Storage) -> None:
        later = await add(store, delay=20)
        sooner = await add(store, delay=10, now=T0 + 1)
        assert len(await store.promote_due(now=T0 + 30, limit=10)) == 2
        assert await claim_ids(store, now=T0 + 30) == [sooner.id, later.id]

    async def test_due_tasks_count_as_ready_before_promotion(self, store: Storage) -> None:
        await add(store, delay=10)
        await add(store, delay=20)
        assert await counts(store, now=T0) == (0, 2, 0, 0)
        assert await counts(store, now=T0 + 10) == (1, 1, 0, 0)
        assert await counts(store, now=T0 + 25) == (2, 0, 0, 0)


@asyncio_test
class TestHeartbeat:
    async def test_extends_the_lease(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store, lease=30)
        beat = await store.heartbeat(leased.id, worker_id=WORKER, lease_id=leased.lease_id,
                                     lease_seconds=60, now=T0 + 20)
        assert beat.lease_until == T0 + 80 and beat.lease_id == leased.lease_id
        assert beat.status is Status.IN_PROGRESS and beat.attempts == 1
        assert not beat.cancel_requested
        assert (await stored(store, leased.id)).lease_until == T0 + 80
        assert await store.expired_leases(now=T0 + 79, limit=10) == []
        assert [t.id for t in await store.expired_leases(now=T0 + 80, limit=10)] == [leased.id]

    async def test_the_lease_id_is_optional(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store)
        beat = await store.heartbeat(leased.id, worker_id=WORKER, lease_id=None,
                                     lease_seconds=10, now=T0 + 1)
        assert beat.lease_until == T0 + 11

    async def test_another_worker_is_forbidden(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store)
        with pytest.raises(Forbidden):
            await store.heartbeat(leased.id, worker_id=STRANGER, lease_id=leased.lease_id,
                                  lease_seconds=60, now=T0 + 1)
        assert await stored(store, leased.id) == leased

    async def test_a_stale_lease_conflicts(self, store: Storage) -> None:
        await add(store)
        old = await claim_one(store)
        await store.abandon(old.id, worker_id=WORKER, lease_id=old.lease_id, now=T0 + 1)
        new = await claim_one(store, now=T0 + 2)
        with pytest.raises(Conflict):
            await store.heartbeat(old.id, worker_id=WORKER, lease_id=old.lease_id,
                                  lease_seconds=60, now=T0 + 3)
        assert await stored(store, new.id) == new

    async def test_a_task_not_in_progress_conflicts(self, store: Storage) -> None:
        pending = await add(store)
        with pytest.raises(Conflict):
            await store.heartbeat(pending.id, worker_id=WORKER, lease_id=None,
                                  lease_seconds=60, now=T0)
        leased = await claim_one(store)
        await complete(store, leased, now=T0 + 1)
        with pytest.raises(Conflict):
            await store.heartbeat(leased.id, worker_id=WORKER, lease_id=leased.lease_id,
                                  lease_seconds=60, now=T0 + 2)

    async def test_it_reports_a_requested_cancel(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store)
        await store.cancel(leased.id, now=T0 + 1)
        beat = await store.heartbeat(leased.id, worker_id=WORKER, lease_id=leased.lease_id,
                                     lease_seconds=60, now=T0 + 2)
        assert beat.cancel_requested and beat.status is Status.IN_PROGRESS


@asyncio_test
class TestAbandon:
    async def test_ready_again_now_same_priority_attempts_unchanged(self, store: Storage) -> None:
        task = await add(store, priority=7)
        leased = await claim_one(store)
        back, outcome = await store.abandon(task.id, worker_id=WORKER, lease_id=leased.lease_id,
                                            now=T0 + 1)
        assert outcome is Outcome.REQUEUED
        assert back.status is Status.PENDING
        assert back.attempts == 1 and back.priority == 7
        assert back.worker_id is None and back.lease_id is None and back.lease_until is None
        assert back.history[-1].event == "abandoned"
        assert await stored(store, task.id) == back
        assert await counts(store, now=T0 + 1) == (1, 0, 0, 0)
        again = await claim_one(store, now=T0 + 1)
        assert again.id == task.id and again.attempts == 2

    async def test_never_dead_letters(self, store: Storage) -> None:
        task = await add(store, max_attempts=1)
        leased = await claim_one(store)
        back, outcome = await store.abandon(task.id, worker_id=WORKER, lease_id=None, now=T0 + 1)
        assert outcome is Outcome.REQUEUED and back.status is Status.PENDING
        assert not back.dead_lettered and leased.attempts == back.attempts == 1

    async def test_refusals_change_nothing(self, store: Storage) -> None:
        pending = await add(store)
        with pytest.raises(Conflict):
            await store.abandon(pending.id, worker_id=WORKER, lease_id=None, now=T0)
        leased = await claim_one(store)
        with pytest.raises(Forbidden):
            await store.abandon(leased.id, worker_id=STRANGER, lease_id=None, now=T0 + 1)
        with pytest.raises(Conflict):
            await store.abandon(leased.id, worker_id=WORKER, lease_id=str(uuid.uuid4()),
                                now=T0 + 1)
        assert await stored(store, leased.id) == leased
        assert await counts(store, now=T0 + 1) == (0, 0, 1, 0)


@asyncio_test
class TestNack:
    async def test_with_a_delay_the_task_waits(self, store: Storage) -> None:
        task = await add(store)
        leased = await claim_one(store)
        back, outcome = await store.nack(task.id, worker_id=WORKER, lease_id=leased.lease_id,
                                         delay_seconds=30, reason="flaky", now=T0 + 1)
        assert outcome is Outcome.REQUEUED
        assert back.status is Status.PENDING and back.error == "flaky"
        assert back.visible_at == T0 + 31 and back.attempts == 1
        assert back.worker_id is None and back.lease_id is None
        assert await stored(store, task.id) == back
        assert await counts(store, now=T0 + 1) == (0, 1, 0, 0)
        assert await claim(store, now=T0 + 30) == []
        again = await claim_one(store, now=T0 + 31)
        assert again.id == task.id and again.attempts == 2

    async def test_without_a_delay_it_is_ready_at_once(self, store: Storage) -> None:
        task = await add(store)
        leased = await claim_one(store)
        back, outcome = await store.nack(task.id, worker_id=WORKER, lease_id=leased.lease_id,
                                         delay_seconds=0, reason=None, now=T0 + 1)
        assert outcome is Outcome.REQUEUED and back.status is Status.PENDING
        assert await counts(store, now=T0 + 1) == (1, 0, 0, 0)
        assert (await claim_one(store, now=T0 + 1)).id == task.id

    async def test_the_last_attempt_goes_to_the_dlq(self, store: Storage) -> None:
        task = await add(store, max_attempts=2)
        first = await claim_one(store)
        _, outcome = await store.nack(task.id, worker_id=WORKER, lease_id=first.lease_id,
                                      delay_seconds=0, reason="one", now=T0 + 1)
        assert outcome is Outcome.REQUEUED
        second = await claim_one(store, now=T0 + 2)
        assert second.attempts == 2
        dead, outcome = await store.nack(task.id, worker_id=WORKER, lease_id=second.lease_id,
                                         delay_seconds=60, reason="two", now=T0 + 3)
        assert outcome is Outcome.DLQ
        assert dead.status is Status.FAILED and dead.error == MAX_ATTEMPTS_ERROR
        assert dead.dead_lettered and dead.finished_at == T0 + 3
        assert dead.lease_id is None and dead.lease_until is None
        assert [h.event for h in dead.history[-2:]] == ["nacked", "dead_lettered"]
        assert await stored(store, task.id) == dead
        assert await counts(store, now=T0 + 100) == (0, 0, 0, 1)
        assert await claim(store, now=T0 + 100) == []
        assert [t.id for t in (await store.dlq(CMD, limit=10, cursor=None)).tasks] == [task.id]

    async def test_refusals_change_nothing(self, store: Storage) -> None:
        pending = await add(store)
        with pytest.raises(Conflict):
            await store.nack(pending.id, worker_id=WORKER, lease_id=None, delay_seconds=0,
                             reason=None, now=T0)
        leased = await claim_one(store)
        with pytest.raises(Forbidden):
            await store.nack(leased.id, worker_id=STRANGER, lease_id=leased.lease_id,
                             delay_seconds=0, reason=None, now=T0 + 1)
        with pytest.raises(Conflict):
            await store.nack(leased.id, worker_id=WORKER, lease_id="another-lease",
                             delay_seconds=0, reason=None, now=T0 + 1)
        assert await stored(store, leased.id) == leased


@asyncio_test
class TestComplete:
    async def test_completed_with_its_result(self, store: Storage) -> None:
        task = await add(store)
        leased = await claim_one(store)
        artifacts = [Artifact("log", "https://files.example/log.txt", "text/plain"),
                     Artifact("out", "https://files.example/out.bin")]
        sent = submission(task.id, result={"answer": 42, "list": [1, None]}, artifacts=artifacts)
        record, command = await store.complete(task.id, result=sent, lease_id=leased.lease_id,
                                               now=T0 + 3)
        assert command == CMD
        assert record.task_id == task.id and record.status is Status.COMPLETED
        assert record.result == {"answer": 42, "list": [1, None]} and record.error is None
        assert record.artifacts == artifacts
        assert record.completed_at == T0 + 3 and record.worker_id == WORKER
        assert await store.get_result(task.id) == record
        done = await stored(store, task.id)
        assert done.status is Status.COMPLETED and done.finished_at == T0 + 3
        assert done.lease_id is None and done.lease_until is None
        assert done.error is None and not done.dead_lettered
        assert done.history[-1].event == "completed"
        assert await counts(store, now=T0 + 3) == (0, 0, 0, 0)

    async def test_failed_is_terminal_but_not_dead_lettered(self, store: Storage) -> None:
        task = await add(store)
        leased = await claim_one(store)
        record, created = await store.complete(
            task.id, result=submission(task.id, status=Status.FAILED, error="bad input"),
            lease_id=leased.lease_id, now=T0 + 1)
        assert created and record.status is Status.FAILED and record.error == "bad input"
        done = await stored(store, task.id)
        assert done.status is Status.FAILED and done.error == "bad input"
        assert not done.dead_lettered
        assert (await store.dlq(CMD, limit=10, cursor=None)).tasks == []
        assert await counts(store, now=T0 + 1) == (0, 0, 0, 0)

    async def test_the_same_submission_again_returns_the_record(self, store: Storage) -> None:
        task = await add(store)
        leased = await claim_one(store)
        first, command = await store.complete(task.id, result=submission(task.id),
                                              lease_id=leased.lease_id, now=T0 + 1)
        assert command == CMD
        for lease_id in (leased.lease_id, None):
            again, command = await store.complete(task.id, result=submission(task.id),
                                                  lease_id=lease_id, now=T0 + 9)
            assert command is None and again == first and again.completed_at == T0 + 1
        assert (await stored(store, task.id)).finished_at == T0 + 1

    async def test_a_different_submission_conflicts(self, store: Storage) -> None:
        task = await add(store)
        leased = await claim_one(store)
        first = await complete(store, leased, now=T0 + 1)
        others = [submission(task.id, result={"ok": False}),
                  submission(task.id, status=Status.FAILED, error="nope"),
                  submission(task.id, worker=STRANGER)]
        for other in others:
            with pytest.raises(Conflict):
                await store.complete(task.id, result=other, lease_id=leased.lease_id, now=T0 + 2)
        assert await store.get_result(task.id) == first

    async def test_refusals_before_a_result(self, store: Storage) -> None:
        pending = await add(store)
        with pytest.raises(Conflict):
            await store.complete(pending.id, result=submission(pending.id), lease_id=None, now=T0)
        leased = await claim_one(store)
        with pytest.raises(Forbidden):
            await store.complete(leased.id, result=submission(leased.id, STRANGER),
                                 lease_id=None, now=T0 + 1)
        with pytest.raises(Conflict):
            await store.complete(leased.id, result=submission(leased.id),
                                 lease_id=str(uuid.uuid4()), now=T0 + 1)
        assert await store.get_result(leased.id) is None
        assert await stored(store, leased.id) == leased
        record, created = await store.complete(leased.id, result=submission(leased.id),
                                               lease_id=None, now=T0 + 2)
        assert created and record.completed_at == T0 + 2

    async def test_an_expired_attempt_cannot_finish(self, store: Storage) -> None:
        await add(store)
        old = await claim_one(store, lease=10)
        assert old.lease_id is not None
        assert await store.expire_lease(old.id, lease_id=old.lease_id, delay_seconds=0,
                                        now=T0 + 10) is Outcome.REQUEUED
        with pytest.raises(Conflict):
            await store.complete(old.id, result=submission(old.id), lease_id=old.lease_id,
                                 now=T0 + 11)
        new = await claim_one(store, worker=STRANGER, now=T0 + 12)
        with pytest.raises(Forbidden):
            await store.complete(old.id, result=submission(old.id), lease_id=None, now=T0 + 13)
        with pytest.raises(Conflict):
            await store.complete(old.id, result=submission(old.id, STRANGER),
                                 lease_id=old.lease_id, now=T0 + 13)
        assert await stored(store, new.id) == new

    async def test_a_dead_lettered_or_cancelled_task_takes_no_result(self, store: Storage) -> None:
        dead = await dead_letter(store)
        cancelled = await add(store)
        await store.cancel(cancelled.id, now=T0 + 1)
        for task in (dead, cancelled):
            with pytest.raises(Conflict):
                await store.complete(task.id, result=submission(task.id), lease_id=None,
                                     now=T0 + 2)
            assert await store.get_result(task.id) is None

    async def test_a_batch_answers_each_item_on_its_own(self, store: Storage) -> None:
        for _ in range(4):
            await add(store)
        first, second, other, third = await claim(store, count=4)
        await store.complete(second.id, result=submission(second.id), lease_id=None, now=T0 + 1)
        missing = store.new_task_id(CMD)
        failed = submission(third.id, status=Status.FAILED, error="bad input")
        answers = await store.complete_many(
            [(first.id, submission(first.id, result={"n": 1}), first.lease_id),
             (second.id, submission(second.id), None),
             (missing, submission(missing), None),
             (other.id, submission(other.id, STRANGER), None),
             (third.id, failed, third.lease_id)], now=T0 + 2)
        assert len(answers) == 5
        assert isinstance(answers[0], tuple)
        record, command = answers[0]
        assert command == CMD and record.result == {"n": 1} and record.completed_at == T0 + 2
        assert await store.get_result(first.id) == record
        assert answers[1] == (await store.get_result(second.id), None)
        assert isinstance(answers[2], NotFound) and isinstance(answers[3], Forbidden)
        assert isinstance(answers[4], tuple)
        record, command = answers[4]
        assert command == CMD and record.status is Status.FAILED
        assert (await stored(store, third.id)).status is Status.FAILED
        assert (await stored(store, other.id)).status is Status.IN_PROGRESS
        assert await store.complete_many([], now=T0 + 3) == []

    async def test_a_result_too_deep_to_write_is_refused_or_kept(self, store: Storage) -> None:
        task, other = await add(store), await add(store)
        leases = {t.id: t.lease_id for t in await claim(store, count=2)}
        deep = submission(task.id, result=nested(TOO_DEEP))
        answers = await store.complete_many(
            [(task.id, deep, leases[task.id]), (other.id, submission(other.id), leases[other.id])],
            now=T0 + 1)
        assert isinstance(answers[1], tuple), "the other item is answered on its own"
        assert (await stored(store, other.id)).status is Status.COMPLETED
        if not isinstance(answers[0], InvalidInput):
            kept = await store.get_result(task.id)
            assert kept is not None and depth_of(kept.result) == TOO_DEEP
            return
        assert "result" in str(answers[0])
        with pytest.raises(InvalidInput, match="result"):
            await store.complete(task.id, result=deep, lease_id=leases[task.id], now=T0 + 2)
        assert (await stored(store, task.id)).status is Status.IN_PROGRESS
        assert await store.get_result(task.id) is None
        record, _ = await store.complete(task.id, result=submission(task.id),
                                         lease_id=leases[task.id], now=T0 + 3)
        assert record.result == {"ok": True}


@asyncio_test
class TestCancel:
    async def test_a_pending_task_is_cancelled_for_good(self, store: Storage) -> None:
        task = await add(store)
        cancelled = await store.cancel(task.id, now=T0 + 1)
        assert cancelled.status is Status.CANCELLED and cancelled.finished_at == T0 + 1
        assert cancelled.history[-1].event == "cancelled"
        assert await stored(store, task.id) == cancelled
        assert await counts(store, now=T0 + 1) == (0, 0, 0, 0)
        assert await claim(store, now=T0 + 1) == []
        assert await store.get_result(task.id) is None

    async def test_a_delayed_task_is_cancelled_for_good(self, store: Storage) -> None:
        task = await add(store, delay=10)
        await store.cancel(task.id, now=T0 + 1)
        assert await counts(store, now=T0 + 20) == (0, 0, 0, 0)
        assert await store.promote_due(now=T0 + 20, limit=10) == []
        assert await claim(store, now=T0 + 20) == []
        assert (await stored(store, task.id)).status is Status.CANCELLED

    async def test_a_running_task_gets_cancel_requested(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store)
        marked = await store.cancel(leased.id, now=T0 + 1)
        assert marked.status is Status.IN_PROGRESS and marked.cancel_requested
        assert marked.lease_id == leased.lease_id and marked.worker_id == WORKER
        again = await store.cancel(leased.id, now=T0 + 2)
        assert again.cancel_requested and again.status is Status.IN_PROGRESS
        assert await counts(store, now=T0 + 2) == (0, 0, 1, 0)

    async def test_abandon_then_ends_it(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store)
        await store.cancel(leased.id, now=T0 + 1)
        done, outcome = await store.abandon(leased.id, worker_id=WORKER,
                                            lease_id=leased.lease_id, now=T0 + 2)
        assert outcome is Outcome.CANCELLED
        assert done.status is Status.CANCELLED and done.finished_at == T0 + 2
        assert not done.dead_lettered
        assert await claim(store, now=T0 + 3) == []
        assert await counts(store, now=T0 + 3) == (0, 0, 0, 0)

    async def test_nack_then_ends_it(self, store: Storage) -> None:
        await add(store, max_attempts=5)
        leased = await claim_one(store)
        await store.cancel(leased.id, now=T0 + 1)
        done, outcome = await store.nack(leased.id, worker_id=WORKER, lease_id=leased.lease_id,
                                         delay_seconds=0, reason="stopped", now=T0 + 2)
        assert outcome is Outcome.CANCELLED and done.status is Status.CANCELLED
        assert await claim(store, now=T0 + 3) == []
        assert (await store.dlq(CMD, limit=10, cursor=None)).tasks == []

    async def test_lease_expiry_then_ends_it(self, store: Storage) -> None:
        await add(store, max_attempts=5)
        leased = await claim_one(store, lease=10)
        assert leased.lease_id is not None
        await store.cancel(leased.id, now=T0 + 1)
        outcome = await store.expire_lease(leased.id, lease_id=leased.lease_id, delay_seconds=0,
                                           now=T0 + 10)
        assert outcome is Outcome.CANCELLED
        assert (await stored(store, leased.id)).status is Status.CANCELLED
        assert await claim(store, now=T0 + 11) == []

    async def test_a_result_before_that_is_accepted(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store)
        await store.cancel(leased.id, now=T0 + 1)
        record = await complete(store, leased, now=T0 + 2)
        assert record.status is Status.COMPLETED
        assert (await stored(store, leased.id)).status is Status.COMPLETED

    async def test_a_finished_task_conflicts(self, store: Storage) -> None:
        completed = await add(store)
        await complete(store, await claim_one(store), now=T0 + 1)
        cancelled = await add(store, now=T0 + 2)
        await store.cancel(cancelled.id, now=T0 + 3)
        dead = await dead_letter(store, now=T0 + 4)
        for task in (completed, cancelled, dead):
            before = await stored(store, task.id)
            with pytest.raises(Conflict):
                await store.cancel(task.id, now=T0 + 5)
            assert await stored(store, task.id) == before


# -- background work ----------------------------------------------------------------------
@asyncio_test
class TestLeaseExpiry:
    async def test_expired_leases_are_listed_oldest_first(self, store: Storage) -> None:
        leases = {}
        for i, seconds in enumerate([30, 10, 20, 100]):
            await add(store, now=T0 + i * 0.001)
            leased = await claim_one(store, lease=seconds)
            leases[seconds] = leased
        expired = await store.expired_leases(now=T0 + 30, limit=10)
        assert [t.id for t in expired] == [leases[s].id for s in (10, 20, 30)]
        assert [t.lease_id for t in expired] == [leases[s].lease_id for s in (10, 20, 30)]
        limited = await store.expired_leases(now=T0 + 30, limit=2)
        assert [t.id for t in limited] == [leases[10].id, leases[20].id]
        assert await store.expired_leases(now=T0 + 9, limit=10) == []
        # Listing changes nothing.
        assert [t.id for t in await store.expired_leases(now=T0 + 30, limit=10)] == \
            [t.id for t in expired]
        assert await counts(store, now=T0 + 30) == (0, 0, 4, 0)

    async def test_an_expired_lease_is_retried_like_a_nack(self, store: Storage) -> None:
        await add(store, max_attempts=3)
        leased = await claim_one(store, lease=10)
        assert leased.lease_id is not None
        outcome = await store.expire_lease(leased.id, lease_id=leased.lease_id,
                                           delay_seconds=15, now=T0 + 12)
        assert outcome is Outcome.REQUEUED
        back = await stored(store, leased.id)
        assert back.status is Status.PENDING and back.error == LEASE_EXPIRED
        assert back.visible_at == T0 + 27 and back.attempts == 1
        assert back.worker_id is None and back.lease_id is None
        assert back.history[-1].event == "lease_expired"
        assert await counts(store, now=T0 + 12) == (0, 1, 0, 0)
        assert await store.expired_leases(now=T0 + 100, limit=10) == []
        assert await claim(store, now=T0 + 26) == []
        assert (await claim_one(store, now=T0 + 27)).attempts == 2

    async def test_without_delay_it_is_ready_at_once(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store, lease=10)
        assert leased.lease_id is not None
        assert await store.expire_lease(leased.id, lease_id=leased.lease_id, delay_seconds=0,
                                        now=T0 + 10) is Outcome.REQUEUED
        assert await counts(store, now=T0 + 10) == (1, 0, 0, 0)

    async def test_the_last_attempt_goes_to_the_dlq(self, store: Storage) -> None:
        await add(store, max_attempts=1)
        leased = await claim_one(store, lease=10)
        assert leased.lease_id is not None
        assert await store.expire_lease(leased.id, lease_id=leased.lease_id, delay_seconds=5,
                                        now=T0 + 10) is Outcome.DLQ
        dead = await stored(store, leased.id)
        assert dead.status is Status.FAILED and dead.error == MAX_ATTEMPTS_ERROR
        assert dead.dead_lettered and dead.finished_at == T0 + 10
        assert await counts(store, now=T0 + 10) == (0, 0, 0, 1)

    async def test_never_expired_twice(self, store: Storage) -> None:
        await add(store, max_attempts=3)
        leased = await claim_one(store, lease=10)
        assert leased.lease_id is not None
        first = await store.expire_lease(leased.id, lease_id=leased.lease_id, delay_seconds=0,
                                         now=T0 + 10)
        assert first is Outcome.REQUEUED
        after = await stored(store, leased.id)
        assert await store.expire_lease(leased.id, lease_id=leased.lease_id, delay_seconds=0,
                                        now=T0 + 11) is None
        assert await stored(store, leased.id) == after

    async def test_a_lease_that_has_not_run_out_is_kept(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store, lease=10)
        assert leased.lease_id is not None
        assert await store.expire_lease(leased.id, lease_id=leased.lease_id, delay_seconds=0,
                                        now=T0 + 9) is None
        assert await stored(store, leased.id) == leased

    async def test_a_lease_that_moved_on_is_kept(self, store: Storage) -> None:
        await add(store, max_attempts=5)
        old = await claim_one(store, lease=10)
        assert old.lease_id is not None
        await store.heartbeat(old.id, worker_id=WORKER, lease_id=old.lease_id, lease_seconds=60,
                              now=T0 + 5)
        assert await store.expire_lease(old.id, lease_id=old.lease_id, delay_seconds=0,
                                        now=T0 + 10) is None
        await store.abandon(old.id, worker_id=WORKER, lease_id=old.lease_id, now=T0 + 20)
        new = await claim_one(store, worker=STRANGER, now=T0 + 21, lease=10)
        assert new.lease_id is not None
        assert await store.expire_lease(old.id, lease_id=old.lease_id, delay_seconds=0,
                                        now=T0 + 1000) is None
        assert await stored(store, new.id) == new
        assert await store.expire_lease(new.id, lease_id=new.lease_id, delay_seconds=0,
                                        now=T0 + 1000) is Outcome.REQUEUED

    async def test_a_finished_or_unknown_task_is_left_alone(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store, lease=10)
        assert leased.lease_id is not None
        await complete(store, leased, now=T0 + 1)
        done = await stored(store, leased.id)
        assert await store.expire_lease(leased.id, lease_id=leased.lease_id, delay_seconds=0,
                                        now=T0 + 100) is None
        assert await stored(store, leased.id) == done
        assert await store.expire_lease(str(uuid.uuid4()), lease_id="x", delay_seconds=0,
                                        now=T0 + 100) is None


# -- operators --------------------------------------------------------------------------------
@asyncio_test
class TestQueueStats:
    async def test_every_queue_is_counted(self, store: Storage) -> None:
        await dead_letter(store, CMD)
        await add(store, now=T0 + 1)
        await complete(store, await claim_one(store, now=T0 + 1), now=T0 + 2)
        await add(store, now=T0 + 3)
        running = await claim_one(store, now=T0 + 3)
        await add(store, priority=9, now=T0 + 4)
        await add(store, priority=0, now=T0 + 4)
        await add(store, delay=50, now=T0 + 4)
        cancelled = await add(store, now=T0 + 4)
        await store.cancel(cancelled.id, now=T0 + 5)
        await store.cancel(running.id, now=T0 + 5)  # still running, cancel requested
        await add(store, OTHER, now=T0 + 6)
        await store.set_paused(OTHER, True)
        cmd = QueueStats(CMD, ready=2, delayed=1, in_progress=1, dlq=1, paused=False,
                         oldest_ready_at=T0 + 4)
        other = QueueStats(OTHER, ready=1, delayed=0, in_progress=0, dlq=0, paused=True,
                           oldest_ready_at=T0 + 6)
        assert to_the_millisecond(await store.queue_stats(CMD, now=T0 + 10)) == cmd
        assert to_the_millisecond(await store.queue_stats(OTHER, now=T0 + 10)) == other
        assert await store.commands() == [CMD, OTHER]
        every = await store.all_queue_stats(now=T0 + 10)
        assert sorted(map(to_the_millisecond, every), key=lambda s: s.command) == [cmd, other]

    async def test_a_command_never_used_is_all_zeros(self, store: Storage) -> None:
        await add(store)
        assert await store.queue_stats("contract.never", now=T0) == QueueStats(
            "contract.never", ready=0, delayed=0, in_progress=0, dlq=0, paused=False)
        assert await store.commands() == [CMD]

    async def test_the_oldest_ready_task_is_the_earliest_ready_whatever_its_priority(
            self, store: Storage) -> None:
        assert await oldest_ready_at(store, now=T0) is None
        urgent = await add(store, priority=9, now=T0 + 1)
        await add(store, priority=0, now=T0 + 2)
        await add(store, priority=5, now=T0 + 3)
        assert await oldest_ready_at(store, now=T0 + 4) == T0 + 1
        assert (await claim_one(store, now=T0 + 4)).id == urgent.id
        assert await oldest_ready_at(store, now=T0 + 4) == T0 + 2  # not the priority 5 one
        assert [to_the_millisecond(s).oldest_ready_at
                for s in await store.all_queue_stats(now=T0 + 4)] == [T0 + 2]
        await claim(store, now=T0 + 5, count=2)
        assert await oldest_ready_at(store, now=T0 + 5) is None
        assert await counts(store, now=T0 + 5) == (0, 0, 3, 0)

    async def test_a_delayed_task_counts_once_its_time_has_come(self, store: Storage) -> None:
        await add(store, delay=10, now=T0)
        assert await oldest_ready_at(store, now=T0 + 9) is None
        assert await oldest_ready_at(store, now=T0 + 10) == T0 + 10  # due at exactly its time
        assert await oldest_ready_at(store, now=T0 + 11) == T0 + 10  # due, not yet promoted
        assert await store.promote_due(now=T0 + 12, limit=10) == [CMD]
        assert await oldest_ready_at(store, now=T0 + 13) == T0 + 12  # in the ready queue since

    async def test_a_requeued_task_counts_from_its_requeue(self, store: Storage) -> None:
        await add(store, now=T0)
        leased = await claim_one(store, now=T0 + 1)
        await store.nack(leased.id, worker_id=WORKER, lease_id=leased.lease_id,
                         delay_seconds=0, reason="retry", now=T0 + 5)
        assert await oldest_ready_at(store, now=T0 + 6) == T0 + 5
        await add(store, OTHER, now=T0 + 7, max_attempts=1)
        await store.nack((await claim_one(store, [OTHER], now=T0 + 7)).id, worker_id=WORKER,
                         lease_id=None, delay_seconds=0, reason="boom", now=T0 + 8)
        assert await oldest_ready_at(store, OTHER, now=T0 + 9) is None  # dead-lettered
        assert await store.redrive(OTHER, ids=None, limit=10, now=T0 + 20) == 1
        assert await oldest_ready_at(store, OTHER, now=T0 + 21) == T0 + 20

    async def test_commands_are_remembered_after_cleanup(self, store: Storage) -> None:
        task = await add(store, OTHER)
        await store.cancel(task.id, now=T0)
        assert len(await store.cleanup(finished_before=T0 + 1, limit=10, command=None)) == 1
        assert await store.commands() == [OTHER]
        assert await store.queue_stats(OTHER, now=T0 + 1) == QueueStats(
            OTHER, ready=0, delayed=0, in_progress=0, dlq=0, paused=False)
        await add(store, CMD, now=T0 + 2)  # used after OTHER, sorted before it
        assert await store.commands() == [CMD, OTHER]


@asyncio_test
class TestDeadLetterQueue:
    async def test_listed_oldest_first_in_pages(self, store: Storage) -> None:
        dead = [await dead_letter(store, CMD, now=T0 + i) for i in range(5)]
        await dead_letter(store, OTHER, now=T0 + 10)
        await add(store, CMD, now=T0 + 11)
        seen: list[str] = []
        cursor = None
        for expected_size in (2, 2, 1):
            page = await store.dlq(CMD, limit=2, cursor=cursor)
            assert len(page.tasks) == expected_size
            assert all(t.dead_lettered and t.status is Status.FAILED for t in page.tasks)
            seen.extend(t.id for t in page.tasks)
            cursor = page.next_cursor
        assert cursor is None
        assert seen == [t.id for t in dead]

    async def test_the_order_is_the_order_of_dead_lettering(self, store: Storage) -> None:
        first = await add(store, max_attempts=1)
        second = await add(store, max_attempts=1, now=T0 + 1)
        a, b = await claim(store, count=2, now=T0 + 2)
        assert [a.id, b.id] == [first.id, second.id]
        await store.nack(second.id, worker_id=WORKER, lease_id=b.lease_id, delay_seconds=0,
                         reason=None, now=T0 + 3)
        await store.nack(first.id, worker_id=WORKER, lease_id=a.lease_id, delay_seconds=0,
                         reason=None, now=T0 + 4)
        page = await store.dlq(CMD, limit=10, cursor=None)
        assert [t.id for t in page.tasks] == [second.id, first.id]

    async def test_an_empty_or_unknown_dlq(self, store: Storage) -> None:
        await add(store)
        for command in (CMD, "contract.never"):
            page = await store.dlq(command, limit=10, cursor=None)
            assert page.tasks == [] and page.next_cursor is None
        assert await store.commands() == [CMD]  # reading a DLQ does not make a command known

    @pytest.mark.parametrize("cursor", ["not-a-cursor", "-5", "🙂"])
    async def test_a_foreign_cursor_is_invalid_input(self, store: Storage, cursor: str) -> None:
        await dead_letter(store)
        with pytest.raises(InvalidInput):
            await store.dlq(CMD, limit=10, cursor=cursor)

    @TAMPERED
    async def test_a_tampered_cursor(self, store: Storage, tamper: Callable[[str], str],
                                     readable: bool) -> None:
        for i in range(3):
            await dead_letter(store, now=T0 + i)
        first = await store.dlq(CMD, limit=1, cursor=None)
        assert first.next_cursor is not None
        await refused_or_read(store.dlq(CMD, limit=1, cursor=tamper(first.next_cursor)),
                              readable)

    async def test_redrive_by_ids(self, store: Storage) -> None:
        d1, d2, d3 = [await dead_letter(store, CMD, now=T0 + i) for i in range(3)]
        foreign = await dead_letter(store, OTHER, now=T0 + 3)
        pending = await add(store, CMD, now=T0 + 4)
        ids = [d1.id, d3.id, foreign.id, pending.id, str(uuid.uuid4()), d1.id]
        assert await store.redrive(CMD, ids=ids, limit=100, now=T0 + 10) == 2
        again = await stored(store, d1.id)
        assert again.status is Status.PENDING and again.attempts == 0
        assert not again.dead_lettered and again.error is None
        assert again.finished_at is None and again.worker_id is None
        assert again.history[-1].event == "redriven"
        assert (await stored(store, foreign.id)).dead_lettered
        assert [t.id for t in (await store.dlq(CMD, limit=10, cursor=None)).tasks] == [d2.id]
        assert await counts(store, CMD, now=T0 + 10) == (3, 0, 0, 1)
        assert await counts(store, OTHER, now=T0 + 10) == (0, 0, 0, 1)
        leased = await claim(store, [CMD], now=T0 + 11, count=3)
        assert leased[0].id == pending.id  # it was ready before the others came back
        assert {t.id for t in leased[1:]} == {d1.id, d3.id}
        assert [t.attempts for t in leased] == [1, 1, 1]

    async def test_redrive_the_oldest_up_to_a_limit(self, store: Storage) -> None:
        d1, d2, d3 = [await dead_letter(store, CMD, now=T0 + i) for i in range(3)]
        assert await store.redrive(CMD, ids=None, limit=2, now=T0 + 10) == 2
        assert [t.id for t in (await store.dlq(CMD, limit=10, cursor=None)).tasks] == [d3.id]
        assert set(await claim_ids(store, [CMD], now=T0 + 10)) == {d1.id, d2.id}
        assert await store.redrive(CMD, ids=None, limit=10, now=T0 + 11) == 1
        assert await store.redrive(CMD, ids=None, limit=10, now=T0 + 11) == 0
        assert await store.redrive("contract.never", ids=None, limit=10, now=T0 + 11) == 0

    async def test_a_redriven_task_can_fail_again(self, store: Storage) -> None:
        task = await dead_letter(store)
        await store.redrive(CMD, ids=[task.id], limit=10, now=T0 + 1)
        leased = await claim_one(store, now=T0 + 2)
        _, outcome = await store.nack(task.id, worker_id=WORKER, lease_id=leased.lease_id,
                                      delay_seconds=0, reason=None, now=T0 + 3)
        assert outcome is Outcome.DLQ
        assert [t.id for t in (await store.dlq(CMD, limit=10, cursor=None)).tasks] == [task.id]
        assert await counts(store, now=T0 + 3) == (0, 0, 0, 1)


@asyncio_test
class TestCleanup:
    async def _finished(self, store: Storage) -> dict[str, Task]:
        """One task of each terminal kind, finished at distinct times, and live ones in KEEP."""
        tasks = {"running": await add(store, KEEP, now=T0 - 1000)}
        assert (await claim_one(store, [KEEP], now=T0 - 1000, lease=10)).id == tasks["running"].id
        tasks["pending"] = await add(store, KEEP, now=T0 - 999)
        tasks["delayed"] = await add(store, KEEP, now=T0 - 999, delay=5000)
        tasks["completed"] = await add(store, key="done-key")
        await complete(store, await claim_one(store, [CMD], now=T0 + 10), now=T0 + 10)
        tasks["failed"] = await add(store, now=T0 + 1)
        await complete(store, await claim_one(store, [CMD], now=T0 + 20), now=T0 + 20,
                       status=Status.FAILED)
        tasks["cancelled"] = await add(store, now=T0 + 2)
        await store.cancel(tasks["cancelled"].id, now=T0 + 30)
        tasks["dead"] = await dead_letter(store, now=T0 + 40)
        tasks["other"] = await add(store, OTHER, now=T0 + 3)
        await complete(store, await claim_one(store, [OTHER], now=T0 + 15), now=T0 + 15)
        return tasks

    async def test_only_tasks_finished_before_the_cutoff(self, store: Storage) -> None:
        tasks = await self._finished(store)
        gone = {"completed", "failed", "cancelled", "other"}
        deleted = await store.cleanup(finished_before=T0 + 35, limit=100, command=None)
        assert sorted(deleted) == sorted(tasks[name].id for name in gone)
        for name, task in tasks.items():
            assert (await store.get(task.id) is None) == (name in gone), name
        for name in gone:
            assert await store.get_result(tasks[name].id) is None
        listed = {t.id for t in await all_tasks(store)}
        assert listed == {tasks[n].id for n in tasks if n not in gone}
        assert await counts(store, now=T0 + 35) == (0, 0, 0, 1)
        assert await counts(store, KEEP, now=T0 + 35) == (1, 1, 1, 0)
        assert len(await store.cleanup(finished_before=T0 + 35, limit=100, command=None)) == 0
        # "before" is strict: the task dead-lettered at T0 + 40 is not finished before T0 + 40.
        assert await store.cleanup(finished_before=T0 + 40, limit=100, command=None) == []
        assert (await stored(store, tasks["dead"].id)).dead_lettered

    async def test_pending_and_running_tasks_are_never_removed(self, store: Storage) -> None:
        tasks = await self._finished(store)
        assert len(await store.cleanup(finished_before=T0 + 10**9, limit=100, command=None)) == 5
        left = {t.id for t in await all_tasks(store)}
        assert left == {tasks[n].id for n in ("pending", "delayed", "running")}
        assert (await store.dlq(CMD, limit=10, cursor=None)).tasks == []
        assert await counts(store, KEEP, now=T0 + 100) == (1, 1, 1, 0)
        assert await counts(store, now=T0 + 100) == (0, 0, 0, 0)
        assert [t.id for t in await store.expired_leases(now=T0 + 100, limit=10)] == \
            [tasks["running"].id]

    async def test_only_the_given_command(self, store: Storage) -> None:
        tasks = await self._finished(store)
        # "other" finished at T0 + 15 exactly: not before T0 + 15.
        assert await store.cleanup(finished_before=T0 + 15, limit=100, command=OTHER) == []
        assert len(await store.cleanup(finished_before=T0 + 10**9, limit=100, command=OTHER)) == 1
        assert await store.get(tasks["other"].id) is None
        assert await store.get(tasks["completed"].id) is not None
        assert len(await store.cleanup(finished_before=T0 + 10**9, limit=100,
                                   command="contract.never")) == 0

    async def test_up_to_the_limit(self, store: Storage) -> None:
        for i in range(5):
            task = await add(store, now=T0 + i)
            await store.cancel(task.id, now=T0 + i)
        deleted = [len(await store.cleanup(finished_before=T0 + 100, limit=2, command=None))
                   for _ in range(4)]
        assert deleted == [2, 2, 1, 0]
        assert await all_tasks(store) == []

    async def test_the_idempotency_key_is_freed(self, store: Storage) -> None:
        tasks = await self._finished(store)
        kept = await add(store, OTHER, key="done-key", now=T0 + 50)
        assert len(await store.cleanup(finished_before=T0 + 11, limit=100, command=None)) == 1
        again, created = await store.create(make_task(store, key="done-key", now=T0 + 60),
                                            now=T0 + 60)
        assert created and again.id != tasks["completed"].id
        replay, created = await store.create(make_task(store, OTHER, key="done-key", now=T0 + 60),
                                             now=T0 + 60)
        assert not created and replay.id == kept.id


@asyncio_test
class TestTimeline:
    async def test_the_story_of_a_task(self, store: Storage) -> None:
        task = await add(store)
        first = await claim_one(store, now=T0 + 1)
        await store.nack(task.id, worker_id=WORKER, lease_id=first.lease_id, delay_seconds=0,
                         reason="flaky", now=T0 + 2)
        second = await claim_one(store, worker=STRANGER, now=T0 + 3)
        await store.complete(task.id, result=submission(task.id, STRANGER),
                             lease_id=second.lease_id, now=T0 + 4)
        history = (await stored(store, task.id)).history
        assert [(h.at, h.event, h.worker_id) for h in history] == [
            (T0, "created", None), (T0 + 1, "claimed", WORKER), (T0 + 2, "nacked", WORKER),
            (T0 + 3, "claimed", STRANGER), (T0 + 4, "completed", STRANGER)]
        assert history[2].reason == "flaky"

    async def test_only_the_last_entries_are_kept(self, store: Storage) -> None:
        task = await add(store, max_attempts=100)
        for n in range(1, 31):
            leased = await claim_one(store, now=T0 + n)
            await store.abandon(task.id, worker_id=WORKER, lease_id=leased.lease_id,
                                now=T0 + n + 0.5)
        events = ["created"] + ["claimed", "abandoned"] * 30
        history = (await stored(store, task.id)).history
        assert len(history) == HISTORY_LIMIT
        assert [h.event for h in history] == events[-HISTORY_LIMIT:]
        assert history[-1].at == T0 + 30.5 and history[0].at == T0 + 6


@asyncio_test
class TestReadySignal:
    """A waiting claim is woken by every step that makes work ready."""

    async def _wakes(self, store: Storage, command: str,
                     action: Callable[[], Awaitable[object]]) -> None:
        with store.ready.listen([command]) as waiter:
            await action()
            assert await waiter.wait(SIGNAL_WAIT), "the waiting claim was not woken"

    async def test_create(self, store: Storage) -> None:
        await self._wakes(store, OTHER, lambda: add(store, OTHER))

    async def test_create_many(self, store: Storage) -> None:
        await self._wakes(store, CMD,
                          lambda: store.create_many([make_task(store, CMD)], now=T0))

    async def test_abandon_and_nack(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store)
        await self._wakes(store, CMD, lambda: store.abandon(
            leased.id, worker_id=WORKER, lease_id=None, now=T0 + 1))
        leased = await claim_one(store, now=T0 + 2)
        await self._wakes(store, CMD, lambda: store.nack(
            leased.id, worker_id=WORKER, lease_id=None, delay_seconds=0, reason=None, now=T0 + 3))

    async def test_lease_expiry(self, store: Storage) -> None:
        await add(store)
        leased = await claim_one(store, lease=5)
        lease_id = leased.lease_id
        assert lease_id is not None
        await self._wakes(store, CMD, lambda: store.expire_lease(
            leased.id, lease_id=lease_id, delay_seconds=0, now=T0 + 5))

    async def test_promotion(self, store: Storage) -> None:
        await add(store, delay=5)
        await self._wakes(store, CMD, lambda: store.promote_due(now=T0 + 5, limit=10))

    async def test_redrive(self, store: Storage) -> None:
        await dead_letter(store)
        await self._wakes(store, CMD, lambda: store.redrive(CMD, ids=None, limit=10, now=T0 + 1))

    async def test_resume(self, store: Storage) -> None:
        await store.set_paused(CMD, True)
        await add(store)
        await self._wakes(store, CMD, lambda: store.set_paused(CMD, False))

    async def test_a_listener_for_every_command(self, store: Storage) -> None:
        with store.ready.listen(None) as waiter:
            await add(store, "contract.any")
            assert await waiter.wait(SIGNAL_WAIT)


@asyncio_test
class TestUnknownTask:
    """Every call on a task id the store does not know is ``NotFound``."""

    @pytest.mark.parametrize("call", ["cancel", "heartbeat", "abandon", "nack", "complete"])
    async def test_not_found(self, store: Storage, call: str) -> None:
        unknown = str(uuid.uuid4())
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "cancel": lambda: store.cancel(unknown, now=T0),
            "heartbeat": lambda: store.heartbeat(unknown, worker_id=WORKER, lease_id=None,
                                                 lease_seconds=10, now=T0),
            "abandon": lambda: store.abandon(unknown, worker_id=WORKER, lease_id=None, now=T0),
            "nack": lambda: store.nack(unknown, worker_id=WORKER, lease_id=None,
                                       delay_seconds=0, reason=None, now=T0),
            "complete": lambda: store.complete(unknown, result=submission(unknown),
                                               lease_id=None, now=T0),
        }
        with pytest.raises(NotFound):
            await calls[call]()


# -- ids another store made --------------------------------------------------------------------
FOREIGN_HOOK = "http://receiver.test/foreign"


async def restore_foreign(store: Storage, command: str = CMD, **fields: Any) -> Task:
    """A new PENDING task as an older store made it, with a random (version 4) UUID id,
    restored as a migration does: ids never change."""
    task = make_task(store, command, **fields)
    task.id = str(uuid.uuid4())
    assert await store.restore(task, None)
    return task


@asyncio_test
class TestForeignIds:
    """A task restored with an id this store would not make lives a full life by that id."""

    async def test_from_ready_to_cleaned_up(self, store: Storage) -> None:
        task = await restore_foreign(store, webhook=FOREIGN_HOOK, key="foreign-key")
        assert await stored(store, task.id) == task
        again, created = await store.create(make_task(store, key="foreign-key"), now=T0)
        assert not created and again.id == task.id
        leased = await claim_one(store)
        assert leased.id == task.id
        beat = await store.heartbeat(task.id, worker_id=WORKER, lease_id=leased.lease_id,
                                     lease_seconds=60, now=T0 + 1)
        assert beat.lease_until == T0 + 61
        _, outcome = await store.nack(task.id, worker_id=WORKER, lease_id=leased.lease_id,
                                      delay_seconds=0, reason="again", now=T0 + 2)
        assert outcome is Outcome.REQUEUED
        record = await complete(store, await claim_one(store, now=T0 + 3), now=T0 + 4)
        assert await store.get_result(task.id) == record
        [callback] = await store.due_callbacks(now=T0 + 5, limit=10, hold_seconds=30)
        assert (callback.task_id, callback.url) == (task.id, FOREIGN_HOOK)
        assert await store.callback_attempted(task.id, attempts=0, retry_at=T0 + 6)
        assert [c.attempts for c in await store.callbacks()] == [1]
        assert await store.cleanup(finished_before=T0 + 5, limit=10, command=None) == [task.id]
        assert await store.get(task.id) is None
        assert await store.get_result(task.id) is None
        assert await store.callbacks() == []
        with pytest.raises(NotFound):
            await store.cancel(task.id, now=T0 + 7)

    async def test_cancel_abandon_expiry_and_the_dlq(self, store: Storage) -> None:
        cancelled = await restore_foreign(store, OTHER)
        dead = await restore_foreign(store, max_attempts=1)
        assert (await store.cancel(cancelled.id, now=T0)).status is Status.CANCELLED
        leased = await claim_one(store, [CMD])
        await store.abandon(dead.id, worker_id=WORKER, lease_id=leased.lease_id, now=T0 + 1)
        leased = await claim_one(store, [CMD], now=T0 + 2)
        [expired] = await store.expired_leases(now=T0 + 2 + LEASE, limit=10)
        assert expired.id == dead.id
        outcome = await store.expire_lease(dead.id, lease_id=expired.lease_id or "",
                                           delay_seconds=0, now=T0 + 2 + LEASE)
        assert outcome is Outcome.DLQ
        assert [t.id for t in (await store.dlq(CMD, limit=10, cursor=None)).tasks] == [dead.id]
        assert await store.redrive(CMD, ids=[dead.id], limit=10, now=T0 + 40) == 1
        assert (await claim_one(store, [CMD], now=T0 + 41)).id == dead.id


# -- many workers at once ---------------------------------------------------------------------
@dataclass
class _Load:
    """Book-keeping of a load run, checked at the end and while it runs."""

    total: int
    #: task id -> (lease, lease_until) of the worker holding it right now
    holders: dict[str, tuple[str, float]] = field(default_factory=dict)
    leases: set[str] = field(default_factory=set)
    ended: dict[str, str] = field(default_factory=dict)  # task id -> how it ended
    violations: list[tuple[str, str]] = field(default_factory=list)  # (task id, what went wrong)
    actions: Counter[str] = field(default_factory=Counter)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    now: float = T0

    def take(self, task: Task, worker: str) -> None:
        """A claim returned ``task``: nobody else may hold it while its lease runs."""
        assert task.lease_id is not None and task.lease_until is not None
        if task.lease_id in self.leases:
            self.flag(task.id, f"lease {task.lease_id} issued twice")
        self.leases.add(task.lease_id)
        if task.status is not Status.IN_PROGRESS or task.worker_id != worker:
            self.flag(task.id, f"claimed as {task.status} by {task.worker_id}")
        if task.lease_until <= self.now:
            # A slow store answered after the clock ran past this lease: a reaper may
            # already have taken the task back and handed it on. Holding it proves
            # nothing; this worker's report will be refused or accepted as the store sees fit.
            self.actions["late claim"] += 1
            return
        held = self.holders.get(task.id)
        if held is not None and held[1] > self.now:
            self.flag(task.id, f"handed to {worker} while lease {held[0]} still runs")
        self.holders[task.id] = (task.lease_id, task.lease_until)

    def flag(self, task_id: str, problem: str) -> None:
        self.violations.append((task_id, problem))

    def release(self, task_id: str, lease_id: str) -> None:
        """The holder gives the task up (or the reaper takes it): from now on it is free."""
        held = self.holders.get(task_id)
        if held is not None and held[0] == lease_id:
            del self.holders[task_id]

    def end(self, task_id: str, how: str) -> None:
        if task_id in self.ended:
            self.flag(task_id, f"ended twice: {self.ended[task_id]}, then {how}")
        self.ended[task_id] = how
        self.actions[how] += 1
        if len(self.ended) == self.total:
            self.done.set()


async def _worker(store: Storage, load: _Load, name: str, commands: list[str] | None,
                  rng: random.Random) -> None:
    while not load.done.is_set():
        with store.ready.listen(commands) as waiter:
            tasks = await store.claim(commands, worker_id=name, lease_seconds=5,
                                      count=rng.randint(1, 5), now=load.now)
            if not tasks:
                await waiter.wait(0.05)
                continue
        for task in tasks:
            load.take(task, name)
        await asyncio.sleep(0)  # the "work": other workers and the reaper run meanwhile
        for task in tasks:
            await _finish(store, load, name, task, rng.random())


async def _finish(store: Storage, load: _Load, name: str, task: Task, roll: float) -> None:
    assert task.lease_id is not None
    if roll < 0.10:
        load.actions["left to expire"] += 1  # the reaper takes it from here
        return
    if roll < 0.14:
        # Overrun the lease: by the time this worker reports, the reaper took the task back.
        assert task.lease_until is not None
        while load.now <= task.lease_until + 1 and not load.done.is_set():
            await asyncio.sleep(0.001)
        load.actions["overran"] += 1
    load.release(task.id, task.lease_id)
    # Someone else was handed the task since: this attempt is over and must be refused.
    rival = load.holders.get(task.id)
    try:
        if roll < 0.68:
            status = Status.COMPLETED if roll < 0.61 else Status.FAILED
            _, created = await store.complete(
                task.id, result=submission(task.id, name, status=status,
                                           error="no" if status is Status.FAILED else None),
                lease_id=task.lease_id, now=load.now)
            if created:
                load.end(task.id, status.value)
        elif roll < 0.86:
            _, outcome = await store.nack(task.id, worker_id=name, lease_id=task.lease_id,
                                          delay_seconds=0, reason="again", now=load.now)
            load.actions["nack"] += 1
            if outcome is Outcome.DLQ:
                load.end(task.id, "dlq")
        else:
            await store.abandon(task.id, worker_id=name, lease_id=task.lease_id, now=load.now)
            load.actions["abandon"] += 1
        if rival is not None:
            load.flag(task.id, f"finished by lease {task.lease_id} although lease {rival[0]} "
                               "superseded it")
    except (Conflict, Forbidden):
        # Fenced: the lease ran out and the reaper got there first.
        current = await stored(store, task.id)
        if current.lease_id == task.lease_id:
            load.flag(task.id, f"refused although lease {task.lease_id} is current")
        load.actions["fenced"] += 1


async def _reaper(store: Storage, load: _Load, rng: random.Random, *, tick: bool) -> None:
    """Expire leases (and move the clock one second per round when ``tick``).

    Two of these run at once, and each yields between listing and expiring,
    so they race each other and the workers for the same leases.
    """
    while not load.done.is_set():
        if tick:
            load.now += 1.0
        for task in await store.expired_leases(now=load.now, limit=500):
            assert task.lease_id is not None
            if not tick and rng.random() < 0.5:
                continue  # the second reaper races for half of them, to keep the run short
            for _ in range(rng.randint(0, 3)):  # leave room for the other reaper and workers
                await asyncio.sleep(0)
            load.release(task.id, task.lease_id)
            outcome = await store.expire_lease(task.id, lease_id=task.lease_id,
                                               delay_seconds=rng.choice([0.0, 1.0]), now=load.now)
            if outcome is not None:
                load.actions["expired"] += 1
            if outcome is Outcome.DLQ:
                load.end(task.id, "dlq")
        await store.promote_due(now=load.now, limit=1000)
        await asyncio.sleep(0.001)


async def run_load(store: Storage, *, tasks: int, workers: int, seed: int,
                   timeout: float) -> _Load:
    """``tasks`` tasks worked by ``workers`` claimers and two reapers, until every one is done."""
    rng = random.Random(seed)
    commands = [f"contract.load{i}" for i in range(4)]
    load = _Load(total=tasks)
    created: list[str] = []
    for start in range(0, tasks, 500):
        batch = [make_task(store, rng.choice(commands), priority=rng.randint(0, 9),
                           max_attempts=3, payload={"n": n})
                 for n in range(start, min(start + 500, tasks))]
        created.extend(t.id for t, _ in await store.create_many(batch, now=T0))
    # Workers share ids four by four, like a pool under one token ``sub``: only the
    # lease id tells their attempts apart.
    claimers = [asyncio.create_task(_worker(store, load, f"w{n // 4}",
                                            None if n % 2 else rng.sample(commands, 2),
                                            random.Random(rng.random())))
                for n in range(workers)]
    reapers = [asyncio.create_task(_reaper(store, load, random.Random(rng.random()), tick=tick))
               for tick in (True, False)]
    finished = asyncio.create_task(load.done.wait())
    try:
        # A claimer or reaper that stops early has raised: gather() below reports it.
        await asyncio.wait([finished, *claimers, *reapers], timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        load.done.set()
        await asyncio.gather(finished, *claimers, *reapers)
    if len(load.ended) < tasks:
        pytest.fail(f"after {timeout}s only {len(load.ended)} of {tasks} tasks ended; "
                    f"{dict(load.actions)}")
    if load.violations:
        first = await store.get(load.violations[0][0])
        story = [(h.at - T0, h.event, h.worker_id, h.reason)
                 for h in (first.history if first else [])]
        pytest.fail(f"{len(load.violations)} violations, first ones: {load.violations[:5]}; "
                    f"timeline of the first task: {story}")
    assert sorted(load.ended) == sorted(created)
    return load


@asyncio_test
class TestConcurrency:
    async def _check(self, store: Storage, tasks: int) -> None:
        started = time.monotonic()
        load = await run_load(store, tasks=tasks, workers=32, seed=tasks, timeout=240)
        for action in ("COMPLETED", "FAILED", "dlq", "nack", "abandon", "expired", "fenced"):
            assert load.actions[action] > 0, f"the run never did {action}: {dict(load.actions)}"
        final = await all_tasks(store)
        assert len(final) == tasks
        for task in final:
            how = load.ended[task.id]
            assert task.status is (Status.FAILED if how == "dlq" else Status(how)), task
            assert task.dead_lettered == (how == "dlq")
            assert task.attempts >= (task.max_attempts if how == "dlq" else 1), task
        dead = Counter(t.command for t in final if t.dead_lettered)
        for command in await store.commands():
            stats = await store.queue_stats(command, now=load.now)
            assert (stats.ready, stats.delayed, stats.in_progress, stats.dlq) == \
                (0, 0, 0, dead[command])
        assert await store.expired_leases(now=load.now + 10**6, limit=10) == []
        elapsed = time.monotonic() - started
        print(f"{tasks} tasks in {elapsed:.1f}s: {dict(load.actions)}")

    async def test_a_thousand_tasks_32_workers(self, store: Storage) -> None:
        await self._check(store, 1_000)

    @pytest.mark.slow
    async def test_ten_thousand_tasks_32_workers(self, store: Storage) -> None:
        await self._check(store, 10_000)
