"""Restarts, outages and lost scripts: what survives and what the caller sees."""

from __future__ import annotations

import asyncio
import pathlib
import time

import pytest

from codeq.core.errors import StoreUnavailable
from codeq.testing.redis_server import RedisServer, command
from tests.redis.conftest import OpenStore, new_task


async def test_every_acknowledged_create_survives_a_hard_restart(
        open_store: OpenStore, tmp_path: pathlib.Path) -> None:
    with RedisServer.start(tmp_path / "aof", appendonly=True) as server:
        store = await open_store(server.url)
        acknowledged: list[str] = []
        refused = 0
        stop = asyncio.Event()

        async def produce(worker: int) -> None:
            nonlocal refused
            while not stop.is_set():
                task = new_task(store, "DURABLE", time.time(), payload={"w": worker})
                try:
                    stored, created = await store.create(task, now=time.time())
                except StoreUnavailable:
                    refused += 1
                    await asyncio.sleep(0.02)
                    continue
                assert created
                acknowledged.append(stored.id)

        producers = [asyncio.create_task(produce(i)) for i in range(4)]
        while len(acknowledged) < 300:
            await asyncio.sleep(0.01)
        before = len(acknowledged)
        await asyncio.to_thread(server.restart)  # SIGKILL, then start on the same port and dir
        while len(acknowledged) < before + 300:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*producers)

        assert refused > 0, "the restart should have refused some creates"
        found = [await store.get(task_id) for task_id in acknowledged]
        missing = [task_id for task_id, task in zip(acknowledged, found) if task is None]
        assert missing == []
        stats = await store.queue_stats("DURABLE", now=time.time())
        assert stats.ready >= len(acknowledged)


async def test_a_frozen_server_is_unavailable_quickly(open_store: OpenStore,
                                                      redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url + "?socket_timeout=0.5")
    await store.ping()
    redis_server.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.create(new_task(store, "F", time.time()), now=time.time())
        assert time.monotonic() - started < 1.5
    finally:
        redis_server.thaw()
    await store.ping()


async def test_a_stopped_server_is_unavailable(open_store: OpenStore,
                                               redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    redis_server.stop()
    for call in (store.ping(), store.get(store.new_task_id("X")),
                 store.claim(["X"], worker_id="w", lease_seconds=1, count=1, now=time.time())):
        with pytest.raises(StoreUnavailable):
            await call


async def test_scripts_are_reloaded_after_the_server_forgot_them(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    assert command(redis_server.port, "SCRIPT", "FLUSH") == "OK"
    await store.create(new_task(store, "S", now), now=now)
    assert command(redis_server.port, "SCRIPT", "FLUSH") == "OK"
    # A batch goes through a pipeline; its NOSCRIPT replies are re-run one by one.
    results = await store.create_many([new_task(store, "S", now) for _ in range(3)], now=now)
    assert all(created for _, created in results)
    assert (await store.queue_stats("S", now=now)).ready == 4
