"""Availability events, the result-callback outbox and restore, across processes and shards."""

from __future__ import annotations

import asyncio
import time

import pytest
from codeq_redis import RedisStorage
from codeq_redis.keys import OUTBOX_SLOTS

from codeq.core.domain import ResultRecord, Status, Task
from codeq.core.errors import InvalidInput
from codeq.core.ids import command_slot, hinted_slot, new_hinted_id
from codeq.testing.redis_server import RedisCluster, RedisServer
from tests.redis.conftest import OpenStore, new_task

HOOK = "http://127.0.0.1:9/hook"
#: Commands that hash to different shards of a three-master cluster.
SHARDED = ("alpha", "bravo", "charlie", "delta")


async def _finish(store: RedisStorage, task: Task, now: float) -> None:
    await store.create(task, now=now)
    [leased] = await store.claim([task.command], worker_id="w", lease_seconds=30, count=1,
                                 now=now)
    record = ResultRecord(task_id=leased.id, status=Status.COMPLETED, result=1, worker_id="w")
    await store.complete(leased.id, result=record, lease_id=leased.lease_id, now=now)


async def test_only_the_process_that_made_the_step_announces_it(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    a, b = await open_store(redis_server.url), await open_store(redis_server.url)
    heard: dict[str, list[str]] = {"a": [], "b": []}
    a.available.subscribe(heard["a"].append)
    b.available.subscribe(heard["b"].append)
    with a.ready.listen(["ANNOUNCED"]) as waiter:
        await b.create(new_task(b, "ANNOUNCED", time.time()), now=time.time())
        assert await waiter.wait(1.0), "the pub/sub wake-up still reaches A"
    await asyncio.sleep(0.1)
    assert heard == {"a": [], "b": ["ANNOUNCED"]}


async def test_tasks_without_a_webhook_leave_no_trace_in_the_outbox(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    await _finish(store, new_task(store, "plain", now), now)
    dead = new_task(store, "plain", now, max_attempts=1)
    await store.create(dead, now=now)
    [leased] = await store.claim(["plain"], worker_id="w", lease_seconds=30, count=1, now=now)
    await store.nack(leased.id, worker_id="w", lease_id=None, delay_seconds=0, reason="x",
                     now=now)
    outbox_keys = [k async for k in store.client.scan_iter(match="*outbox*")]
    outbox_keys += [k async for k in store.client.scan_iter(match="*callbacks")]
    assert outbox_keys == []
    assert await store.outbox_size() == 0


async def test_a_webhook_registers_its_outbox_before_any_outcome(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    # A process that dies right after the complete script leaves nothing unfindable.
    a, b = await open_store(redis_server.url), await open_store(redis_server.url)
    task = new_task(a, "hooked", time.time())
    task.webhook = HOOK
    await a.create(task, now=time.time())
    assert await a.client.sismember(OUTBOX_SLOTS, str(hinted_slot(task.id)))
    # b never saw a task with a webhook, yet the entry its script writes is found.
    [leased] = await b.claim(["hooked"], worker_id="w", lease_seconds=30, count=1,
                             now=time.time())
    record = ResultRecord(task_id=task.id, status=Status.FAILED, error="x", worker_id="w")
    await b.complete(task.id, result=record, lease_id=leased.lease_id, now=time.time())
    assert [c.task_id for c in await a.due_callbacks(now=time.time(), limit=10,
                                                     hold_seconds=30)] == [task.id]


async def test_callbacks_are_taken_oldest_first_across_shards_by_several_processes(
        open_store: OpenStore, redis_cluster: RedisCluster) -> None:
    a, b = await open_store(redis_cluster.url), await open_store(redis_cluster.url)
    assert len({command_slot(c) * 3 // 16384 for c in SHARDED}) > 1, "commands on one shard"
    t0 = time.time()
    tasks = []
    for i in range(12):
        task = new_task(b, SHARDED[i % len(SHARDED)], t0 + i)
        task.webhook = HOOK
        await _finish(b, task, t0 + i)
        tasks.append(task)
    oldest = await a.due_callbacks(now=t0 + 100, limit=3, hold_seconds=60)
    assert [c.task_id for c in oldest] == [t.id for t in tasks[:3]]
    assert [c.due_at for c in oldest] == [t0, t0 + 1, t0 + 2]
    batches = await asyncio.gather(*(store.due_callbacks(now=t0 + 100, limit=2, hold_seconds=60)
                                     for store in (a, b, a, b, a, b)))
    rest = [c.task_id for batch in batches for c in batch]
    assert sorted(rest) == sorted(t.id for t in tasks[3:]), "each entry taken exactly once"
    assert await b.callback_attempted(tasks[0].id, attempts=0, retry_at=None)
    assert not await a.callback_attempted(tasks[0].id, attempts=0, retry_at=None)
    assert await a.outbox_size() == 11


async def test_a_cluster_refuses_ids_that_carry_another_slot(
        open_store: OpenStore, redis_cluster: RedisCluster) -> None:
    store = await open_store(redis_cluster.url)
    now = time.time()
    misplaced = new_task(store, "restored", now)
    misplaced.id = new_hinted_id((command_slot("restored") + 1) % 16384)
    with pytest.raises(InvalidInput):
        await store.restore(misplaced, None)
    with pytest.raises(InvalidInput):
        await store.create(misplaced, now=now)
    hinted = new_task(store, "restored", now)
    assert await store.restore(hinted, None)
    assert not await store.restore(hinted, None)
    assert await store.get(hinted.id) == hinted
