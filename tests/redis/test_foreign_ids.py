"""Ids that carry no slot (random UUIDs of older stores): where their tasks live in Redis.

Every backend now makes ids carrying their command's slot, so tasks born anywhere
move into a cluster as they are; older foreign ids are placed in their command's slot
and found through the ``codeq:foreign-ids`` index (see docs/storage.md).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from codeq_redis import RedisStorage
from codeq_redis.keys import FOREIGN_IDS, TaskKeys

from codeq.core.config import load_settings
from codeq.core.domain import ResultRecord, Status, Task
from codeq.core.ids import command_slot, hinted_slot, key_slot
from codeq.plugins import open_storage
from codeq.testing.redis_server import RedisCluster, RedisServer, command
from tests.redis.conftest import OpenStore, new_task


def foreign_task(store: RedisStorage, name: str, now: float) -> Task:
    task = new_task(store, name, now)
    task.id = str(uuid.uuid4())
    return task


def index_lookups(cluster: RedisCluster) -> int:
    """``HMGET`` calls the cluster's nodes served since their stats were reset (scripts'
    calls count too: only reads without a script may run in between)."""
    total = 0
    for node in cluster.nodes:
        found = re.search(r"cmdstat_hmget:calls=(\d+)", command(node.port, "INFO", "commandstats"))
        total += int(found.group(1)) if found else 0
    return total


def reset_stats(cluster: RedisCluster) -> None:
    for node in cluster.nodes:
        command(node.port, "CONFIG", "RESETSTAT")


def test_every_backend_makes_ids_that_carry_the_command_slot(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    for url in ("memory://", f"sqlite:///{tmp_path / 'ids.db'}", "redis://127.0.0.1:1/0"):
        store = open_storage(url, settings)
        for name in ("GENERATE", "a.b:c", "{odd}"):
            task_id = store.new_task_id(name)
            parsed = uuid.UUID(task_id)
            assert (parsed.version, parsed.variant) == (8, uuid.RFC_4122), url
            assert hinted_slot(task_id) == command_slot(name), (url, name)


async def test_a_restored_foreign_id_is_indexed_in_its_commands_slot(
        open_store: OpenStore, redis_cluster: RedisCluster) -> None:
    writer, reader = await open_store(redis_cluster.url), await open_store(redis_cluster.url)
    now = time.time()
    task = foreign_task(writer, "foreign.life", now)
    assert await writer.restore(task, None)
    slot = command_slot("foreign.life")
    assert await writer.client.hget(FOREIGN_IDS, task.id) == str(slot)
    assert await writer.client.exists(TaskKeys(task.id, slot).task) == 1
    # Another process finds it by id alone, through the index.
    assert await reader.get(task.id) == task
    [leased] = await reader.claim(["foreign.life"], worker_id="w", lease_seconds=30, count=1,
                                  now=now)
    record = ResultRecord(task_id=task.id, status=Status.COMPLETED, result=1, worker_id="w")
    await reader.complete(task.id, result=record, lease_id=leased.lease_id, now=now)
    assert await writer.cleanup(finished_before=now + 1, limit=10,
                                command="foreign.life") == [task.id]
    assert not await writer.client.hexists(FOREIGN_IDS, task.id)
    assert await reader.get(task.id) is None


async def test_only_foreign_ids_read_the_index_and_each_once(
        open_store: OpenStore, redis_cluster: RedisCluster) -> None:
    writer, reader = await open_store(redis_cluster.url), await open_store(redis_cluster.url)
    now = time.time()
    hinted, foreign = new_task(writer, "foreign.cost", now), foreign_task(writer, "foreign.cost", now)
    assert await writer.restore_many([(hinted, None), (foreign, None)]) == [True, True]
    reset_stats(redis_cluster)
    assert await reader.get(hinted.id) == hinted
    assert await reader.get_result(hinted.id) is None
    assert index_lookups(redis_cluster) == 0
    for _ in range(3):
        assert await reader.get(foreign.id) == foreign
    assert await reader.get_result(foreign.id) is None
    assert index_lookups(redis_cluster) == 1


async def test_an_id_held_by_another_commands_task_is_a_duplicate(
        open_store: OpenStore, redis_cluster: RedisCluster) -> None:
    store = await open_store(redis_cluster.url)
    now = time.time()
    first = foreign_task(store, "foreign.first", now)
    assert await store.restore(first, None)
    other = new_task(store, "foreign.second", now)
    other.id = first.id
    assert command_slot("foreign.first") != command_slot("foreign.second")
    assert not await store.restore(other, None)
    assert await store.get(first.id) == first
    assert (await store.queue_stats("foreign.second", now=now)).ready == 0


async def test_a_single_server_keeps_foreign_ids_where_they_always_were(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    task = foreign_task(store, "foreign.single", time.time())
    assert await store.restore(task, None)
    assert await store.client.exists(TaskKeys(task.id, key_slot(task.id)).task) == 1
    assert await store.client.exists(FOREIGN_IDS) == 0
    assert await store.get(task.id) == task
