"""Claims of one command that arrive at one store while another is on its way to Redis go
together, in one peek and one script: they never race each other for the same head, each
still gets its own lease, and the best tasks go to the earliest claims."""

from __future__ import annotations

import asyncio
import time

import pytest
from codeq_redis import RedisStorage

from codeq.core.domain import Status, Task
from codeq.core.errors import StoreUnavailable
from codeq.testing.redis_server import RedisServer
from tests.redis.conftest import OpenStore, created
from tests.redis.test_lone_claim import peeks_during

LEASE = 30.0


async def claim(store: RedisStorage, worker: str, now: float, count: int = 1,
                lease: float = LEASE) -> list[Task]:
    return await store.claim(["TOGETHER"], worker_id=worker, lease_seconds=lease, count=count,
                             now=now)


async def test_concurrent_claims_each_get_a_task_with_few_peeks(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = await created(store, "TOGETHER", 64, now)

    async def at_once() -> list[list[Task]]:
        return await asyncio.gather(*(claim(store, f"w{i % 4}", now + 99) for i in range(64)))

    answers, peeks = await peeks_during(redis_server, at_once())
    assert all(len(answer) == 1 for answer in answers)
    assert sorted(a[0].id for a in answers) == sorted(t.id for t in tasks)
    assert peeks <= 8  # one per group that went together (64 claims racing took hundreds)
    assert [a[0].worker_id for a in answers] == [f"w{i % 4}" for i in range(64)]


async def test_the_earliest_claims_get_the_best_tasks_and_their_own_leases(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    low = await created(store, "TOGETHER", 3, now, priority=1)
    high = await created(store, "TOGETHER", 2, now + 3, priority=9)
    first, batch, last = await asyncio.gather(
        claim(store, "a", now + 10, lease=60), claim(store, "b", now + 10, count=3, lease=90),
        claim(store, "c", now + 10, lease=120))
    assert [t.id for t in first] == [high[0].id]
    assert [t.id for t in batch] == [high[1].id, low[0].id, low[1].id]
    assert [t.id for t in last] == [low[2].id]
    for answer, worker, lease in ((first, "a", 60), (batch, "b", 90), (last, "c", 120)):
        for task in answer:
            stored = await store.get(task.id)
            assert stored is not None and stored.status is Status.IN_PROGRESS
            assert stored.worker_id == worker
            assert stored.lease_until == pytest.approx(now + 10 + lease)
            assert [h.event for h in stored.history][-1] == "claimed"


async def test_claims_beyond_what_is_ready_get_nothing(open_store: OpenStore,
                                                       redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    await created(store, "TOGETHER", 2, now)
    answers = await asyncio.gather(*(claim(store, "w", now + 5) for _ in range(5)))
    assert [len(a) for a in answers] == [1, 1, 0, 0, 0]


async def test_a_claim_given_up_while_waiting_leaves_the_others_served(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = await created(store, "TOGETHER", 3, now)
    first = asyncio.ensure_future(claim(store, "w", now + 5))
    gone = asyncio.ensure_future(claim(store, "w", now + 5))
    others = [asyncio.ensure_future(claim(store, "w", now + 5)) for _ in range(2)]
    await asyncio.sleep(0)  # all four are waiting
    gone.cancel()
    answers = [await first, *await asyncio.gather(*others)]
    assert sorted(t.id for a in answers for t in a) == sorted(t.id for t in tasks)
    assert gone.cancelled()


async def test_a_store_outage_reaches_every_claim_of_the_group(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    redis_server.stop()
    answers = await asyncio.gather(*(claim(store, "w", time.time()) for _ in range(4)),
                                   return_exceptions=True)
    assert all(isinstance(a, StoreUnavailable) for a in answers), answers
