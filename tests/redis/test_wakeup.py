"""Long-poll wake-ups across server processes (two stores on one Redis)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from codeq.testing.redis_server import RedisCluster, RedisServer
from tests.redis.conftest import OpenStore, new_task

WAKE_WITHIN = 0.050


async def _woken_after_create_elsewhere(open_store: OpenStore, url: str, command: str) -> float:
    """Like a long-polling claim: A saw the queue empty and waits; B creates a task."""
    a, b = await open_store(url), await open_store(url)
    with a.ready.listen([command]) as waiter:
        assert await a.claim([command], worker_id="w", lease_seconds=30, count=1,
                             now=time.time()) == []
        assert not await waiter.wait(0.01)
        started = time.perf_counter()
        await b.create(new_task(b, command, time.time()), now=time.time())
        assert await waiter.wait(1.0), "the waiter on store A was never woken"
        elapsed = time.perf_counter() - started
    assert len(await a.claim([command], worker_id="w", lease_seconds=30, count=1,
                             now=time.time())) == 1
    return elapsed


async def test_a_create_on_b_wakes_a_waiter_on_a(open_store: OpenStore,
                                                 redis_server: RedisServer) -> None:
    for _ in range(5):
        elapsed = await _woken_after_create_elsewhere(open_store, redis_server.url, "WAKE")
        assert elapsed < WAKE_WITHIN


async def test_wakeups_cross_processes_on_every_shard_of_a_cluster(
        open_store: OpenStore, redis_cluster: RedisCluster) -> None:
    # Commands on different shards: the subscriber of each primary must deliver.
    for command in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot"):
        elapsed = await _woken_after_create_elsewhere(open_store, redis_cluster.url, command)
        assert elapsed < WAKE_WITHIN


async def test_a_waiter_for_another_command_stays_asleep(open_store: OpenStore,
                                                         redis_server: RedisServer) -> None:
    a, b = await open_store(redis_server.url), await open_store(redis_server.url)
    with a.ready.listen(["OTHER"]) as waiter:
        await b.create(new_task(b, "WAKE", time.time()), now=time.time())
        assert not await waiter.wait(0.2)


async def test_requeue_promotion_redrive_and_resume_publish_too(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    a, b = await open_store(redis_server.url), await open_store(redis_server.url)
    now = time.time()
    first = new_task(b, "R", now, max_attempts=1)
    await b.create(first, now=now)
    await b.create(new_task(b, "R", now, visible_at=now + 5), now=now)
    [task] = await b.claim(["R"], worker_id="w", lease_seconds=30, count=1, now=now)

    async def woken_by(step: Awaitable[object]) -> bool:
        """A waits on an empty queue (as a claim would) while B takes ``step``."""
        with a.ready.listen(["R"]) as waiter:
            await step
            woken = await waiter.wait(1.0)
        return woken

    assert await woken_by(b.abandon(task.id, worker_id="w", lease_id=task.lease_id, now=now))
    [task] = await b.claim(["R"], worker_id="w", lease_seconds=30, count=1, now=now)
    assert await woken_by(b.promote_due(now=now + 6, limit=10))
    [_promoted] = await b.claim(["R"], worker_id="w", lease_seconds=30, count=1, now=now + 6)
    await b.nack(task.id, worker_id="w", lease_id=None, delay_seconds=0, reason="x", now=now + 7)
    assert await woken_by(b.redrive("R", ids=None, limit=10, now=now + 8))
    await b.set_paused("R", True)
    assert await woken_by(b.set_paused("R", False))


async def test_only_the_empty_to_ready_step_is_published(open_store: OpenStore,
                                                         redis_server: RedisServer) -> None:
    # A claim waits only after it saw the queue empty; more work on a non-empty
    # queue needs no announcement (this keeps pub/sub quiet under load).
    a, b = await open_store(redis_server.url), await open_store(redis_server.url)
    now = time.time()
    await b.create(new_task(b, "Q", now), now=now)
    await asyncio.sleep(0.2)  # the announcement of the first task has arrived by now
    with a.ready.listen(["Q"]) as waiter:
        await b.create(new_task(b, "Q", now), now=now)
        assert not await waiter.wait(0.2)


async def test_the_listener_survives_a_server_restart(open_store: OpenStore,
                                                      redis_server: RedisServer) -> None:
    a = await open_store(redis_server.url)
    redis_server.restart()
    b = await open_store(redis_server.url)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # A resubscribes with a short backoff
        with a.ready.listen(["AFTER"]) as waiter:
            await b.create(new_task(b, "AFTER", time.time()), now=time.time())
            if await waiter.wait(0.2):
                return
        await asyncio.sleep(0.1)
    raise AssertionError("store A never heard from the restarted server")
