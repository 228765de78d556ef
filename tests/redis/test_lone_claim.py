"""A claim for one command whose ready set just went from empty to one task takes that
task without peeking first, and so does a claim after another, taking the best tasks
the previous claim answered; either falls back to peeking whenever its candidates are
not the ones to take."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

import redis.asyncio as aioredis
from codeq_redis import RedisStorage
from codeq_redis.store import CHAIN_HEADS, CLAIM_SLACK

from codeq.core.domain import Task
from codeq.testing.redis_server import RedisServer
from tests.redis.conftest import OpenStore, created, new_task

LEASE = 30.0
T = TypeVar("T")


async def claim(store: RedisStorage, command: str, now: float, count: int = 1) -> list[Task]:
    return await store.claim([command], worker_id="w", lease_seconds=LEASE, count=count, now=now)


async def peeks_during(server: RedisServer, step: Awaitable[T]) -> tuple[T, int]:
    """Run ``step`` and count the peeks (``ZRANGE … WITHSCORES`` sent by the client, which
    no script sends) the server logged meanwhile."""
    admin = aioredis.Redis.from_url(server.url)
    try:
        await admin.config_set("slowlog-log-slower-than", 0)
        await admin.slowlog_reset()
        result = await step
        entries = await admin.slowlog_get(128)
        await admin.config_set("slowlog-log-slower-than", 10000)
    finally:
        await admin.aclose()
    peeks = [e for e in entries
             if e["command"].startswith(b"ZRANGE ") and e["command"].endswith(b"WITHSCORES")]
    return result, len(peeks)


async def test_a_lone_task_is_claimed_without_a_peek(open_store: OpenStore,
                                                     redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    task = new_task(store, "LONE", now)
    await store.create(task, now=now)
    claimed, peeks = await peeks_during(redis_server, claim(store, "LONE", now))
    assert [t.id for t in claimed] == [task.id] and peeks == 0
    # The next claim has no lone task to try: it peeks, and finds the queue empty.
    nothing, peeks = await peeks_during(redis_server, claim(store, "LONE", now))
    assert nothing == [] and peeks == 1


async def test_a_waiter_in_another_process_claims_the_announced_task_without_a_peek(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    a, b = await open_store(redis_server.url), await open_store(redis_server.url)
    now = time.time()
    with a.ready.listen(["LONE"]) as waiter:
        task = new_task(b, "LONE", now)
        await b.create(task, now=now)
        assert await waiter.wait(1.0)
    claimed, peeks = await peeks_during(redis_server, claim(a, "LONE", now))
    assert [t.id for t in claimed] == [task.id] and peeks == 0


async def test_a_more_urgent_task_created_since_is_claimed_first(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    lone = new_task(store, "LONE", now, priority=1)
    urgent = new_task(store, "LONE", now + 1, priority=9)
    await store.create(lone, now=now)
    await store.create(urgent, now=now + 1)
    claimed, peeks = await peeks_during(redis_server, claim(store, "LONE", now + 2))
    assert [t.id for t in claimed] == [urgent.id] and peeks == 1
    assert [t.id for t in await claim(store, "LONE", now + 2)] == [lone.id]


async def test_a_task_claimed_elsewhere_leaves_the_next_one_to_the_peek(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    a, b = await open_store(redis_server.url), await open_store(redis_server.url)
    now = time.time()
    first, second = new_task(a, "LONE", now), new_task(a, "LONE", now + 1)
    await a.create(first, now=now)
    await a.create(second, now=now + 1)
    assert [t.id for t in await claim(b, "LONE", now + 2)] == [first.id]
    assert [t.id for t in await claim(a, "LONE", now + 2)] == [second.id]


async def test_due_delayed_work_is_promoted_before_a_lone_claim(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    urgent = new_task(store, "LONE", now, priority=9, visible_at=now + 5)
    await store.create(urgent, now=now)
    lone = new_task(store, "LONE", now + 1, priority=1)
    await store.create(lone, now=now + 1)
    assert [t.id for t in await claim(store, "LONE", now + 6)] == [urgent.id]
    assert [t.id for t in await claim(store, "LONE", now + 6)] == [lone.id]


async def test_a_batch_claim_takes_everything_ready_not_just_the_lone_task(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = await created(store, "LONE", 3, now)
    claimed = await claim(store, "LONE", now + 5, count=10)
    assert [t.id for t in claimed] == [t.id for t in tasks]


async def test_a_paused_command_gives_nothing_to_a_lone_claim(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    task = new_task(store, "LONE", now)
    await store.create(task, now=now)
    await store.set_paused("LONE", True)
    assert await claim(store, "LONE", now) == []
    await store.set_paused("LONE", False)
    assert [t.id for t in await claim(store, "LONE", now)] == [task.id]


async def test_one_task_claims_in_a_row_follow_the_head_without_peeking(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = [new_task(store, "CHAIN", now + i) for i in range(5)]
    for i, task in enumerate(tasks):
        await store.create(task, now=now + i)

    async def one_by_one() -> list[str]:
        return [t.id for _ in tasks for t in await claim(store, "CHAIN", now + 9)]

    claimed, peeks = await peeks_during(redis_server, one_by_one())
    assert claimed == [t.id for t in tasks] and peeks == 0
    # The last claim answered an empty ready set: the next one peeks, and finds nothing.
    nothing, peeks = await peeks_during(redis_server, claim(store, "CHAIN", now + 9))
    assert nothing == [] and peeks == 1


async def test_a_more_urgent_task_breaks_the_chain(open_store: OpenStore,
                                                   redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = [new_task(store, "CHAIN", now + i, priority=1) for i in range(3)]
    for i, task in enumerate(tasks):
        await store.create(task, now=now + i)
    assert [t.id for t in await claim(store, "CHAIN", now + 5)] == [tasks[0].id]
    urgent = new_task(store, "CHAIN", now + 6, priority=9)
    await store.create(urgent, now=now + 6)
    claimed, peeks = await peeks_during(redis_server, claim(store, "CHAIN", now + 7))
    assert [t.id for t in claimed] == [urgent.id] and peeks == 1
    claimed, peeks = await peeks_during(redis_server, claim(store, "CHAIN", now + 7))
    assert [t.id for t in claimed] == [tasks[1].id] and peeks == 0


async def test_a_head_claimed_elsewhere_leaves_the_next_ones_to_the_chain(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    a, b = await open_store(redis_server.url), await open_store(redis_server.url)
    now = time.time()
    tasks = await created(a, "CHAIN", 3, now)
    assert [t.id for t in await claim(a, "CHAIN", now + 5)] == [tasks[0].id]
    assert [t.id for t in await claim(b, "CHAIN", now + 5)] == [tasks[1].id]
    claimed, peeks = await peeks_during(redis_server, claim(a, "CHAIN", now + 5))
    assert [t.id for t in claimed] == [tasks[2].id] and peeks == 0


async def test_a_task_ranked_between_the_chained_ones_sends_the_claim_to_the_peek(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    first, high, low = (new_task(store, "CHAIN", now + i, priority=p)
                        for i, p in enumerate((9, 5, 1)))
    for task in (first, high, low):
        await store.create(task, now=now)
    assert [t.id for t in await claim(store, "CHAIN", now + 5)] == [first.id]
    middle = new_task(store, "CHAIN", now + 6, priority=3)
    await store.create(middle, now=now + 6)
    claimed, peeks = await peeks_during(redis_server, claim(store, "CHAIN", now + 7, count=2))
    assert [t.id for t in claimed] == [high.id, middle.id] and peeks == 1


async def test_claims_of_several_follow_the_chain_and_peek_for_the_rest(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    answered = CHAIN_HEADS + CLAIM_SLACK  # the best tasks a small claim leaves to the next
    tasks = await created(store, "CHAIN", 1 + 8 + answered + 1, now)
    ids = [t.id for t in tasks]
    assert [t.id for t in await claim(store, "CHAIN", now + 60)] == ids[:1]
    claimed, peeks = await peeks_during(redis_server, claim(store, "CHAIN", now + 60, count=8))
    assert [t.id for t in claimed] == ids[1:9] and peeks == 0
    # More than the chain holds: its tasks first, then one peek for the last one.
    claimed, peeks = await peeks_during(redis_server,
                                        claim(store, "CHAIN", now + 60, count=answered + 5))
    assert [t.id for t in claimed] == ids[9:] and peeks == 1


async def test_a_batch_claim_does_not_take_the_chained_head_alone(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = await created(store, "CHAIN", 4, now)
    assert [t.id for t in await claim(store, "CHAIN", now + 5)] == [tasks[0].id]
    claimed = await claim(store, "CHAIN", now + 5, count=10)
    assert [t.id for t in claimed] == [t.id for t in tasks[1:]]


async def test_a_ready_message_that_comes_while_its_task_is_claimed_here_is_no_hint(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    """The create's message can arrive while this process's claim of that very task is on
    its way to Redis; the next claim must not try that task again (STALE, then a peek)."""
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = await created(store, "CHAIN", 2, now)
    first = asyncio.ensure_future(claim(store, "CHAIN", now + 5))
    while "CHAIN" in store._lone:  # the claim has taken the hint and is on its way
        await asyncio.sleep(0)
    store._on_ready(f"CHAIN {tasks[0].id}")  # the listener hands over the message now
    assert [t.id for t in await first] == [tasks[0].id]
    claimed, peeks = await peeks_during(redis_server, claim(store, "CHAIN", now + 5))
    assert [t.id for t in claimed] == [tasks[1].id] and peeks == 0
