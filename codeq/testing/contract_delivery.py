"""The storage contract, part two: what a store keeps for webhooks and migration.

Availability events, worker subscriptions, the result-callback outbox and
``restore``. Same fixtures and conventions as ``codeq.testing.contract``; a
third-party backend collects it the same way::

    from codeq.testing.contract_delivery import *  # noqa: F403
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from codeq.core.domain import (
    Artifact,
    Callback,
    DeliveryMode,
    Outcome,
    ResultRecord,
    Status,
    Subscription,
    Task,
)
from codeq.core.lifecycle import MAX_ATTEMPTS_ERROR
from codeq.core.storage import Storage
from codeq.testing.contract import (
    CMD,
    LEASE,
    OTHER,
    T0,
    WORKER,
    add,
    all_tasks,
    asyncio_test,
    claim_one,
    complete,
    counts,
    dead_letter,
    make_task,
    stored,
)

__all__ = ["TestAvailability", "TestOutbox", "TestRestore", "TestSubscriptions"]

HOOK = "http://receiver.test/hook"


@contextmanager
def emitted(store: Storage) -> Iterator[list[str]]:
    """The commands ``store.available`` announces inside the block, in order."""
    seen: list[str] = []
    unsubscribe = store.available.subscribe(seen.append)
    try:
        yield seen
    finally:
        unsubscribe()


@asyncio_test
class TestAvailability:
    """``available`` fires when a ready queue goes from empty to non-empty, and only then."""

    async def test_create_into_an_empty_queue_only(self, store: Storage) -> None:
        with emitted(store) as seen:
            await add(store)
            await add(store)
            await add(store, OTHER)
            await add(store, OTHER, delay=60)
        assert seen == [CMD, OTHER]

    async def test_again_once_the_queue_was_drained(self, store: Storage) -> None:
        await add(store)
        await claim_one(store)
        with emitted(store) as seen:
            await add(store, now=T0 + 1)
        assert seen == [CMD]

    async def test_create_many_announces_each_command_once(self, store: Storage) -> None:
        with emitted(store) as seen:
            await store.create_many([make_task(store), make_task(store), make_task(store, OTHER)],
                                    now=T0)
        assert sorted(seen) == sorted([CMD, OTHER])

    async def test_requeue_by_abandon_nack_and_expiry(self, store: Storage) -> None:
        await add(store, max_attempts=5)
        leased = await claim_one(store)
        with emitted(store) as seen:
            await store.abandon(leased.id, worker_id=WORKER, lease_id=None, now=T0 + 1)
        assert seen == [CMD]
        leased = await claim_one(store, now=T0 + 2)
        with emitted(store) as seen:
            await store.nack(leased.id, worker_id=WORKER, lease_id=None, delay_seconds=30,
                             reason=None, now=T0 + 3)
        assert seen == [], "a delayed requeue makes nothing ready yet"
        with emitted(store) as seen:
            assert await store.promote_due(now=T0 + 40, limit=10) == [CMD]
        assert seen == [CMD]
        leased = await claim_one(store, now=T0 + 41, lease=5)
        assert leased.lease_id is not None
        with emitted(store) as seen:
            await store.expire_lease(leased.id, lease_id=leased.lease_id, delay_seconds=0,
                                     now=T0 + 50)
        assert seen == [CMD]

    async def test_redrive(self, store: Storage) -> None:
        await dead_letter(store)
        with emitted(store) as seen:
            assert await store.redrive(CMD, ids=None, limit=10, now=T0 + 1) == 1
        assert seen == [CMD]

    async def test_nothing_for_a_queue_that_already_had_work(self, store: Storage) -> None:
        await add(store, priority=1)
        await add(store, priority=9)
        leased = await claim_one(store)
        with emitted(store) as seen:
            await store.abandon(leased.id, worker_id=WORKER, lease_id=None, now=T0 + 1)
            await dead_letter(store, OTHER)
        assert seen == [OTHER]


def subscription(sub_id: str, *, owner: str = WORKER, expires_at: float = T0 + 300,
                 event_types: list[str] | None = None, mode: DeliveryMode = DeliveryMode.FANOUT,
                 group: str | None = None) -> Subscription:
    return Subscription(id=sub_id, owner=owner, callback_url=f"http://127.0.0.1:9/{sub_id}",
                        event_types=[CMD] if event_types is None else event_types,
                        delivery_mode=mode, group_id=group, min_interval_seconds=5.0,
                        created_at=T0, expires_at=expires_at)


@asyncio_test
class TestSubscriptions:
    async def test_saved_as_given(self, store: Storage) -> None:
        original = subscription("s-1", event_types=["*", CMD], mode=DeliveryMode.GROUP,
                                group="g1")
        await store.save_subscription(original)
        assert await store.get_subscription("s-1") == original
        assert await store.get_subscription("s-unknown") is None

    async def test_renew_and_delete(self, store: Storage) -> None:
        await store.save_subscription(subscription("s-1"))
        assert await store.renew_subscription("s-1", expires_at=T0 + 900)
        assert (await store.get_subscription("s-1")).expires_at == T0 + 900  # type: ignore[union-attr]
        assert not await store.renew_subscription("s-2", expires_at=T0 + 900)
        assert await store.delete_subscription("s-1")
        assert not await store.delete_subscription("s-1")
        assert await store.get_subscription("s-1") is None
        assert await store.subscriptions(now=T0) == []

    async def test_active_ones_ordered_by_id(self, store: Storage) -> None:
        for sub_id, expires in [("s-c", T0 + 10), ("s-a", T0 + 20), ("s-b", T0 + 5)]:
            await store.save_subscription(subscription(sub_id, expires_at=expires))
        assert [s.id for s in await store.subscriptions(now=T0)] == ["s-a", "s-b", "s-c"]
        assert [s.id for s in await store.subscriptions(now=T0 + 5)] == ["s-a", "s-c"]
        assert await store.subscriptions(now=T0 + 20) == []

    async def test_sweep_removes_expired_ones_up_to_the_limit(self, store: Storage) -> None:
        for i in range(5):
            await store.save_subscription(subscription(f"s-{i}", expires_at=T0 + i))
        assert await store.sweep_subscriptions(now=T0 + 3, limit=2) == 2
        assert await store.sweep_subscriptions(now=T0 + 3, limit=10) == 2
        assert await store.sweep_subscriptions(now=T0 + 3, limit=10) == 0
        assert [s.id for s in await store.subscriptions(now=T0)] == ["s-4"]
        assert await store.get_subscription("s-0") is None

    async def test_throttle(self, store: Storage) -> None:
        await store.save_subscription(subscription("s-1"))
        await store.save_subscription(subscription("s-2"))
        assert await store.mark_notified("s-1", now=T0, min_interval_seconds=5)
        assert not await store.mark_notified("s-1", now=T0 + 4.9, min_interval_seconds=5)
        assert await store.mark_notified("s-2", now=T0 + 4.9, min_interval_seconds=5)
        assert await store.mark_notified("s-1", now=T0 + 5, min_interval_seconds=5)
        assert await store.mark_notified("s-1", now=T0 + 5, min_interval_seconds=0)

    async def test_no_notifying_an_unknown_subscription(self, store: Storage) -> None:
        assert not await store.mark_notified("s-gone", now=T0, min_interval_seconds=0)

    async def test_throttle_is_atomic(self, store: Storage) -> None:
        await store.save_subscription(subscription("s-1"))
        granted = await asyncio.gather(*(store.mark_notified("s-1", now=T0, min_interval_seconds=5)
                                         for _ in range(20)))
        assert granted.count(True) == 1

    async def test_turns_count_per_key_atomically(self, store: Storage) -> None:
        turns = await asyncio.gather(*(store.next_turn("group:g1") for _ in range(30)))
        assert sorted(turns) == list(range(1, 31))
        assert await store.next_turn("group:g2") == 1
        assert await store.next_turn("group:g1") == 31


async def finished_with_hook(store: Storage, status: Status = Status.COMPLETED, *,
                             now: float = T0) -> Task:
    task = await add(store, webhook=HOOK, now=now)
    await complete(store, await claim_one(store, now=now), now=now + 1, status=status)
    return task


@asyncio_test
class TestOutbox:
    async def test_completed_and_failed_tasks_with_a_webhook_owe_a_callback(
            self, store: Storage) -> None:
        done = await finished_with_hook(store)
        failed = await finished_with_hook(store, Status.FAILED, now=T0 + 10)
        await add(store, now=T0 + 20)  # no webhook: no callback
        await complete(store, await claim_one(store, now=T0 + 20), now=T0 + 21)
        expected = sorted([Callback(done.id, HOOK, 0, T0 + 1), Callback(failed.id, HOOK, 0, T0 + 11)],
                          key=lambda c: c.task_id)
        assert await store.callbacks() == expected
        assert await store.outbox_size() == 2

    async def test_dead_lettering_owes_a_callback(self, store: Storage) -> None:
        by_nack = await add(store, webhook=HOOK, max_attempts=1)
        leased = await claim_one(store)
        _, outcome = await store.nack(by_nack.id, worker_id=WORKER, lease_id=leased.lease_id,
                                      delay_seconds=0, reason="boom", now=T0 + 1)
        assert outcome is Outcome.DLQ
        by_expiry = await add(store, OTHER, webhook=HOOK, max_attempts=1, now=T0 + 2)
        leased = await claim_one(store, [OTHER], now=T0 + 2, lease=5)
        assert leased.lease_id is not None
        assert await store.expire_lease(by_expiry.id, lease_id=leased.lease_id, delay_seconds=0,
                                        now=T0 + 7) is Outcome.DLQ
        assert {(c.task_id, c.due_at) for c in await store.callbacks()} == {
            (by_nack.id, T0 + 1), (by_expiry.id, T0 + 7)}

    async def test_no_callback_for_retries_or_cancellation(self, store: Storage) -> None:
        retried = await add(store, webhook=HOOK)
        leased = await claim_one(store)
        await store.nack(retried.id, worker_id=WORKER, lease_id=leased.lease_id, delay_seconds=0,
                         reason="again", now=T0 + 1)
        leased = await claim_one(store, now=T0 + 2)
        await store.abandon(leased.id, worker_id=WORKER, lease_id=None, now=T0 + 3)
        cancelled = await add(store, OTHER, webhook=HOOK)
        await store.cancel(cancelled.id, now=T0 + 4)
        assert await store.callbacks() == []
        assert await store.outbox_size() == 0

    async def test_a_taken_callback_is_held(self, store: Storage) -> None:
        first = await finished_with_hook(store)
        second = await finished_with_hook(store, now=T0 + 5)
        taken = await store.due_callbacks(now=T0 + 1, limit=10, hold_seconds=30)
        assert [c.task_id for c in taken] == [first.id], "the second is not due yet"
        assert taken[0] == Callback(first.id, HOOK, 0, T0 + 1)
        taken = await store.due_callbacks(now=T0 + 10, limit=10, hold_seconds=30)
        assert [c.task_id for c in taken] == [second.id], "the first is held until T0 + 31"
        taken = await store.due_callbacks(now=T0 + 31, limit=1, hold_seconds=30)
        assert [c.task_id for c in taken] == [first.id]
        assert taken[0].due_at == T0 + 31

    async def test_attempts_are_recorded_once(self, store: Storage) -> None:
        task = await finished_with_hook(store)
        assert len(await store.due_callbacks(now=T0 + 1, limit=10, hold_seconds=30)) == 1
        assert await store.callback_attempted(task.id, attempts=0, retry_at=T0 + 3)
        assert not await store.callback_attempted(task.id, attempts=0, retry_at=T0 + 9), \
            "a second report of the same attempt changes nothing"
        assert await store.callbacks() == [Callback(task.id, HOOK, 1, T0 + 3)]
        assert await store.due_callbacks(now=T0 + 2.9, limit=10, hold_seconds=30) == []
        [again] = await store.due_callbacks(now=T0 + 3, limit=10, hold_seconds=30)
        assert again.attempts == 1
        assert await store.callback_attempted(task.id, attempts=1, retry_at=None)
        assert await store.callbacks() == []
        assert not await store.callback_attempted(task.id, attempts=2, retry_at=None)

    async def test_concurrent_dispatchers_never_take_the_same_entry(self, store: Storage) -> None:
        for i in range(12):
            await finished_with_hook(store, now=T0 + i * 2)
        batches = await asyncio.gather(*(store.due_callbacks(now=T0 + 100, limit=5,
                                                             hold_seconds=30) for _ in range(4)))
        ids = [c.task_id for batch in batches for c in batch]
        assert len(ids) == len(set(ids)) == 12

    async def test_cleanup_removes_the_entry(self, store: Storage) -> None:
        task = await finished_with_hook(store)
        assert await store.cleanup(finished_before=T0 + 2, limit=10, command=None) == [task.id]
        assert await store.callbacks() == []
        assert await store.outbox_size() == 0

    async def test_restore_callback(self, store: Storage) -> None:
        entry = Callback("4f7c1c3e-0000-4000-8000-000000000001", HOOK, 3, T0 + 42)
        await store.restore_callback(entry)
        await store.restore_callback(entry)
        assert await store.callbacks() == [entry]
        assert await store.outbox_size() == 1


def _as_of(store: Storage, state: str, command: str = CMD) -> tuple[Task, ResultRecord | None]:
    """A task in ``state`` as another store would hand it over, with its result."""
    task = make_task(store, command, now=T0 - 100, key=f"key-{state}", webhook=HOOK)
    task.record(T0 - 90, "claimed", WORKER)
    result = None
    if state == "delayed":
        task.visible_at = task.run_at = T0 + 500
    elif state == "running":
        task.status, task.attempts, task.worker_id = Status.IN_PROGRESS, 1, WORKER
        task.lease_id, task.lease_until = "lease-1", T0 + LEASE
    elif state in ("completed", "failed"):
        task.status = Status.COMPLETED if state == "completed" else Status.FAILED
        task.attempts, task.finished_at = 2, T0 - 50
        task.error = "broke" if state == "failed" else None
        result = ResultRecord(task_id=task.id, status=task.status,
                              result={"v": [1, "é"]} if state == "completed" else None,
                              error=task.error, artifacts=[Artifact("a.txt", "http://x/a", "text/plain")],
                              completed_at=T0 - 50, worker_id=WORKER)
    elif state == "dead":
        task.status, task.attempts, task.dead_lettered = Status.FAILED, 3, True
        task.error, task.finished_at = MAX_ATTEMPTS_ERROR, T0 - 40
    elif state == "cancelled":
        task.status, task.finished_at = Status.CANCELLED, T0 - 30
    task.updated_at = T0 - 20
    return task, result


STATES = ["ready", "delayed", "running", "completed", "failed", "dead", "cancelled"]


@asyncio_test
class TestRestore:
    async def _restore_all(self, store: Storage) -> dict[str, Task]:
        tasks = {}
        for state in STATES:
            task, result = _as_of(store, state)
            assert await store.restore(task, result)
            tasks[state] = task
        return tasks

    async def test_every_field_kept(self, store: Storage) -> None:
        originals = {state: _as_of(store, state) for state in STATES}
        for task, result in originals.values():
            assert await store.restore(task, result)
        for state, (task, result) in originals.items():
            assert await stored(store, task.id) == task, state
            assert await store.get_result(task.id) == result, state
        assert [t.id for t in await all_tasks(store)] == [originals[s][0].id for s in STATES]

    async def test_each_in_its_queue(self, store: Storage) -> None:
        tasks = await self._restore_all(store)
        assert await counts(store, now=T0) == (1, 1, 1, 1)
        assert [t.id for t in (await store.dlq(CMD, limit=10, cursor=None)).tasks] == \
            [tasks["dead"].id]
        assert [t.id for t in await store.expired_leases(now=T0 + LEASE, limit=10)] == \
            [tasks["running"].id]
        leased = await store.heartbeat(tasks["running"].id, worker_id=WORKER, lease_id="lease-1",
                                       lease_seconds=60, now=T0 + 1)
        assert leased.lease_until == T0 + 61
        assert (await claim_one(store, now=T0 + 2)).id == tasks["ready"].id
        assert (await claim_one(store, now=T0 + 500)).id == tasks["delayed"].id
        assert len(await store.cleanup(finished_before=T0, limit=10, command=None)) == 4

    async def test_idempotency_keys_come_along(self, store: Storage) -> None:
        tasks = await self._restore_all(store)
        again, created = await store.create(make_task(store, key="key-completed", now=T0), now=T0)
        assert not created and again.id == tasks["completed"].id

    async def test_in_batches(self, store: Storage) -> None:
        originals = [_as_of(store, state) for state in STATES]
        assert await store.restore_many(originals[:3]) == [True] * 3
        assert await store.restore_many(originals) == [False] * 3 + [True] * 4
        assert await store.restore_many([]) == []
        for task, result in originals:
            assert await stored(store, task.id) == task
            assert await store.get_result(task.id) == result
        assert [t.id for t in await all_tasks(store)] == [task.id for task, _ in originals]

    async def test_a_second_copy_changes_nothing(self, store: Storage) -> None:
        tasks = await self._restore_all(store)
        changed = dataclasses.replace(tasks["ready"], priority=9, payload={"other": True})
        assert not await store.restore(changed, None)
        assert await stored(store, tasks["ready"].id) == tasks["ready"]
        assert await counts(store, now=T0) == (1, 1, 1, 1)
