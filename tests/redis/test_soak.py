"""Many tasks, two store instances (two server processes), random failures.

Workers on both stores claim in batches and then complete, nack (now or
later), abandon, or forget a task so that its lease runs out and a reaper on
either store retries it. At the end every task is COMPLETED exactly once and
every queue is empty. ``CODEQ_SOAK_TASKS`` raises the count
(``benchmarks/redis_soak.py`` runs 200,000).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter

from codeq_redis import RedisStorage

from codeq.core.domain import ResultRecord, Status
from codeq.core.errors import CodeqError
from codeq.testing.redis_server import RedisServer
from tests.redis.conftest import OpenStore, new_task

TASKS = int(os.environ.get("CODEQ_SOAK_TASKS", "20000"))
COMMANDS = ("soak.a", "soak.b", "soak.c", "soak.d")
LEASE_SECONDS = 0.5
WORKERS_PER_STORE = 6
BATCH = 25


async def _worker(store: RedisStorage, name: str, rng: random.Random, done: Counter[str],
                  finished: asyncio.Event) -> None:
    while not finished.is_set():
        tasks = await store.claim(COMMANDS, worker_id=name, lease_seconds=LEASE_SECONDS,
                                  count=BATCH, now=time.time())
        if not tasks:
            with store.ready.listen(COMMANDS) as waiter:
                await waiter.wait(0.05)
            continue
        for task in tasks:
            roll = rng.random()
            try:
                if roll < 0.70:
                    record = ResultRecord(task_id=task.id, status=Status.COMPLETED,
                                          result={"by": name}, worker_id=name)
                    _, command = await store.complete(task.id, result=record,
                                                      lease_id=task.lease_id, now=time.time())
                    if command is not None:
                        done[task.id] += 1
                elif roll < 0.82:
                    await store.nack(task.id, worker_id=name, lease_id=task.lease_id,
                                     delay_seconds=rng.choice((0, 0.05)), reason="flaky",
                                     now=time.time())
                elif roll < 0.92:
                    await store.abandon(task.id, worker_id=name, lease_id=task.lease_id,
                                        now=time.time())
                # else: forget it; the lease runs out and a reaper retries it.
            except CodeqError:
                pass  # the lease ran out meanwhile and the task went to someone else


async def _background(store: RedisStorage, finished: asyncio.Event) -> None:
    while not finished.is_set():
        now = time.time()
        await store.promote_due(now=now, limit=200)
        for task in await store.expired_leases(now=now, limit=200):
            assert task.lease_id is not None
            await store.expire_lease(task.id, lease_id=task.lease_id, delay_seconds=0, now=now)
        await asyncio.sleep(0.02)


async def test_no_task_is_lost_or_completed_twice(open_store: OpenStore,
                                                  redis_server: RedisServer) -> None:
    stores = [await open_store(redis_server.url), await open_store(redis_server.url)]
    now = time.time()
    rng = random.Random(7)
    created: list[str] = []
    for start in range(0, TASKS, 1000):
        store = stores[start // 1000 % 2]
        batch = [new_task(store, rng.choice(COMMANDS), now, priority=rng.randint(0, 9),
                          max_attempts=1000, payload={"n": start + i})
                 for i in range(min(1000, TASKS - start))]
        created += [task.id for task, ok in await store.create_many(batch, now=now) if ok]
    assert len(created) == TASKS

    done: Counter[str] = Counter()
    finished = asyncio.Event()
    jobs = [asyncio.create_task(_worker(store, f"w{s}.{i}", random.Random(s * 100 + i), done,
                                        finished))
            for s, store in enumerate(stores) for i in range(WORKERS_PER_STORE)]
    jobs += [asyncio.create_task(_background(store, finished)) for store in stores]
    deadline = time.monotonic() + 50 + TASKS / 1000
    while len(done) < TASKS and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    finished.set()
    await asyncio.gather(*jobs)

    assert len(done) == TASKS, f"{TASKS - len(done)} tasks never completed"
    assert max(done.values()) == 1, "a task was completed twice"
    listed = 0
    for command in COMMANDS:
        cursor = None
        while True:
            page = await stores[0].list_tasks(command=command, status=None, limit=1000,
                                              cursor=cursor)
            for task in page.tasks:
                assert task.status is Status.COMPLETED
                assert [h.event for h in task.history].count("completed") == 1
            listed += len(page.tasks)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert listed == TASKS
    for command in COMMANDS:
        stats = await stores[1].queue_stats(command, now=time.time())
        assert (stats.ready, stats.delayed, stats.in_progress, stats.dlq) == (0, 0, 0, 0)
