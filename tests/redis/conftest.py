"""Fixtures of the Redis backend tests: private servers and opened stores.

Every server is a process this test session started (``codeq.testing.redis_server``)
on a free port with its own data dir; nothing relies on a running Redis.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from codeq_redis import RedisStorage

from codeq.core.domain import Task
from codeq.testing.redis_server import RedisCluster, RedisServer

OpenStore = Callable[[str], Awaitable[RedisStorage]]


@pytest.fixture
def redis_server(tmp_path: pathlib.Path) -> Iterator[RedisServer]:
    with RedisServer.start(tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with RedisCluster.start(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
async def open_store() -> AsyncIterator[OpenStore]:
    """Open any number of stores (each one like a server process); all closed at teardown."""
    opened: list[RedisStorage] = []

    async def open_(url: str) -> RedisStorage:
        store = RedisStorage(url)
        await store.open()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


def new_task(store: RedisStorage, command: str, now: float, *, priority: int = 5,
             payload: object = None, max_attempts: int = 5,
             visible_at: float | None = None) -> Task:
    task = Task(id=store.new_task_id(command), command=command, payload=payload,
                priority=priority, max_attempts=max_attempts, created_at=now, updated_at=now,
                visible_at=visible_at)
    task.record(now, "created")
    return task


async def created(store: RedisStorage, command: str, count: int, now: float, *,
                  priority: int = 5) -> list[Task]:
    """``count`` ready tasks of ``command``, a second apart from ``now``, stored in one batch."""
    tasks = [new_task(store, command, now + i, priority=priority) for i in range(count)]
    await store.create_many(tasks, now=now)
    return tasks
