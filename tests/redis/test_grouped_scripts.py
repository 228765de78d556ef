"""A batch's creates and results share script calls per command (``GROUP_SIZE`` tasks a
call), and each task in a shared call is still checked and written as if it came alone."""

from __future__ import annotations

import time

from codeq_redis import RedisStorage
from codeq_redis.keys import QueueKeys
from codeq_redis.store import GROUP_SIZE

from codeq.core.domain import ResultRecord, Status
from codeq.core.errors import Conflict, NotFound
from codeq.testing.redis_server import RedisServer, command
from tests.redis.conftest import OpenStore, new_task


def script_calls(server: RedisServer) -> int:
    """``EVALSHA`` calls since the last ``CONFIG RESETSTAT``."""
    for line in command(server.port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


async def claim_all(store: RedisStorage, name: str, now: float) -> list[str]:
    tasks = await store.claim([name], worker_id="w", lease_seconds=60, count=1000, now=now)
    return [t.id for t in tasks]


async def test_a_batch_of_two_commands_is_created_in_few_calls_and_in_order(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = [new_task(store, "GA" if i % 3 else "GB", now, priority=9 if i % 7 == 0 else 5)
             for i in range(3 * GROUP_SIZE)]
    tasks[10].idempotency_key = tasks[250].idempotency_key = "same"  # both of GA
    tasks[20].visible_at = now + 3600
    command(redis_server.port, "CONFIG", "RESETSTAT")
    results = await store.create_many(tasks, now=now)
    group_a = sum(1 for t in tasks if t.command == "GA")
    calls = -(-group_a // GROUP_SIZE) + -(-(len(tasks) - group_a) // GROUP_SIZE)
    assert script_calls(redis_server) == calls + 1  # and one to lower the delayed index
    assert [(t.id, ok) for t, ok in results] == [
        (tasks[10].id, False) if i == 250 else (t.id, True) for i, t in enumerate(tasks)]
    assert await store.get(tasks[250].id) is None
    for name in ("GA", "GB"):
        expected = [t.id for t in sorted(
            (t for i, t in enumerate(tasks) if t.command == name and i not in (20, 250)),
            key=lambda t: -t.priority)]  # a stable sort: input order within a priority
        assert await claim_all(store, name, now + 1) == expected
    delayed = await store.get(tasks[20].id)
    assert delayed is not None and delayed.status is Status.PENDING
    assert [h.event for h in delayed.history] == ["created"]


async def test_a_batch_of_results_is_judged_task_by_task(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    now = time.time()
    tasks = [new_task(store, "GR", now) for _ in range(GROUP_SIZE + 30)]
    await store.create_many(tasks, now=now)
    leased = await store.claim(["GR"], worker_id="w", lease_seconds=60, count=1000, now=now)
    leases = {t.id: t.lease_id for t in leased}

    def result(task_id: str) -> ResultRecord:
        return ResultRecord(task_id, Status.COMPLETED, {"id": task_id}, worker_id="w")

    items = [(t.id, result(t.id), leases[t.id]) for t in tasks]
    items[5] = (tasks[5].id, result(tasks[5].id), "not-the-lease")
    items.append((tasks[0].id, result(tasks[0].id), leases[tasks[0].id]))  # sent twice
    items.append(("00000000-0000-4000-8000-000000000000", result("x"), None))
    failed = ResultRecord(tasks[7].id, Status.FAILED, None, error="boom", worker_id="w")
    items[7] = (tasks[7].id, failed, leases[tasks[7].id])
    command(redis_server.port, "CONFIG", "RESETSTAT")
    answers = await store.complete_many(items, now=now + 2)
    assert script_calls(redis_server) == 2
    assert isinstance(answers[5], Conflict) and isinstance(answers[-1], NotFound)
    first, repeat = answers[0], answers[-2]
    assert not isinstance(first, Exception) and first[1] == "GR"
    assert not isinstance(repeat, Exception) and repeat == (first[0], None)  # same submission
    for i, task in enumerate(tasks):
        stored = await store.get(task.id)
        assert stored is not None
        if i == 5:
            assert stored.status is Status.IN_PROGRESS and stored.lease_id == leases[task.id]
            continue
        want = Status.FAILED if i == 7 else Status.COMPLETED
        assert (stored.status, stored.lease_id, stored.lease_until) == (want, None, None)
        assert stored.error == ("boom" if i == 7 else None)
        assert stored.history[-1].event == want.value.lower()
        record = await store.get_result(task.id)
        assert record is not None and record.status is want and record.completed_at == now + 2
    q = QueueKeys("GR")
    assert command(redis_server.port, "ZRANGE", q.leases, "0", "-1") == tasks[5].id
    assert command(redis_server.port, "ZCARD", q.done) == str(len(tasks) - 1)
