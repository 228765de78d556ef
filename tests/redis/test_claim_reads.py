"""A batch claim reads its tasks after the script, in one pipeline, and hands out only the
tasks still under the leases the script gave; a small claim reads them in the script."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from codeq_redis.store import READ_AFTER_CLAIM

from codeq.core.domain import Status
from codeq.testing.redis_server import RedisServer
from tests.redis.conftest import OpenStore, created

END = "end-of-watch"


@contextmanager
def script_reads(server: RedisServer) -> Iterator[list[str]]:
    """Commands that scripts run while the block runs (Redis ``MONITOR``), filled in on
    exit: the names of those that read a task's hash or history."""
    seen: list[str] = []
    ready = threading.Event()
    client = redis.Redis(port=server.port, socket_timeout=10)

    def watch() -> None:
        with client.monitor() as monitor:
            ready.set()
            for event in monitor.listen():
                if event["command"] == f"ECHO {END}":
                    return
                name = event["command"].split(" ")[0]
                if event.get("client_type") == "lua" and name in ("HGETALL", "LRANGE"):
                    seen.append(name)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert ready.wait(5)
    time.sleep(0.05)  # MONITOR is on before the block's first command
    try:
        yield seen
    finally:
        client.echo(END)
        watcher.join(10)
        client.close()
    assert not watcher.is_alive()


async def test_a_batch_claim_reads_its_tasks_outside_the_script(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = await created(store, "CR", READ_AFTER_CLAIM + 12, now)
    with script_reads(redis_server) as reads:
        claimed = await store.claim(["CR"], worker_id="w", lease_seconds=60,
                                    count=len(tasks), now=now + 100)
    assert reads == []
    assert [t.id for t in claimed] == [t.id for t in tasks]
    for task in claimed:
        stored = await store.get(task.id)
        assert stored is not None and task.lease_id and task.lease_id == stored.lease_id
        assert task.status is Status.IN_PROGRESS and task.attempts == 1
        assert task.worker_id == "w" and task.lease_until == now + 160
        assert [h.event for h in task.history] == ["created", "claimed"]
        assert task.history == stored.history


async def test_a_small_claim_reads_its_task_in_the_script(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = await created(store, "CS", 3, now)
    with script_reads(redis_server) as reads:
        claimed = await store.claim(["CS"], worker_id="w", lease_seconds=60,
                                    count=READ_AFTER_CLAIM - 1, now=now + 100)
    assert sorted(reads) == ["HGETALL"] * 3 + ["LRANGE"] * 3
    assert [t.id for t in claimed] == [t.id for t in tasks]
    assert all(t.status is Status.IN_PROGRESS and t.lease_id for t in claimed)


async def test_a_task_no_longer_under_the_given_lease_is_not_handed_out(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    kept, moved, gone = await created(store, "CL", 3, now)
    leased = {t.id: t.lease_id for t in await store.claim(
        ["CL"], worker_id="w", lease_seconds=60, count=READ_AFTER_CLAIM, now=now + 100)}
    assert set(leased) == {kept.id, moved.id, gone.id}
    await store.client.delete(store._task_keys(gone.id, "CL").task)  # vanished meanwhile
    read = await store._read_leased([("CL", [kept.id, str(leased[kept.id])]),
                                     ("CL", [moved.id, "another-lease"]),
                                     ("CL", [gone.id, str(leased[gone.id])])])
    assert read[1:] == [None, None]
    assert read[0] is not None and read[0].id == kept.id and read[0].lease_id == leased[kept.id]
