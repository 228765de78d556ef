"""Key names, hash tags and ids that carry their command's cluster slot."""

from __future__ import annotations

import uuid

import pytest
from codeq_redis import keys
from codeq_redis.ids import TaskSlots

from codeq.core import ids
from codeq.core.models import check_task_id
from codeq.testing.redis_server import RedisCluster, command


def test_valid_command_names_are_their_own_tag() -> None:
    assert keys.QueueKeys("GENERATE_MASTER").ready == "codeq:{GENERATE_MASTER}:ready"
    assert ids.command_tag("a.b:c-d_e9") == "a.b:c-d_e9"


def test_braces_and_percent_cannot_break_the_tag() -> None:
    assert ids.command_tag("a}b{c") == "a%7Db%7Bc"
    assert ids.command_tag("%7D") == "%257D"
    assert ids.command_tag("é") == "%C3%A9"
    assert keys.QueueKeys("{x}").ready == "codeq:{%7Bx%7D}:ready"


@pytest.mark.parametrize("name", ["GENERATE_MASTER", "a", "x.y:z", "{x}", "0-0"])
def test_task_keys_share_the_slot_of_their_command(redis_cluster: RedisCluster,
                                                   name: str) -> None:
    port = redis_cluster.nodes[0].port
    slot = ids.command_slot(name)
    task_id = ids.new_task_id(name)
    resolver = TaskSlots(cluster=True, limit=1)
    task = keys.TaskKeys(task_id, resolver.slot(task_id))
    queue = keys.QueueKeys(name)
    outbox = keys.OutboxKeys(resolver.slot(task_id))
    for key in (queue.ready, queue.idem, task.task, task.history, task.result, outbox.due,
                outbox.callbacks):
        assert int(command(port, "CLUSTER", "KEYSLOT", key)) == slot


def test_subscription_keys_share_one_slot(redis_cluster: RedisCluster) -> None:
    port = redis_cluster.nodes[0].port
    slots = {int(command(port, "CLUSTER", "KEYSLOT", key))
             for key in (keys.SUBSCRIPTIONS, keys.SUBSCRIPTION_EXPIRY, keys.NOTIFIED, keys.TURNS)}
    assert len(slots) == 1


def test_slot_tags_cover_every_slot() -> None:
    for slot in range(ids.SLOTS):
        assert ids.key_slot(keys.slot_tag(slot)) == slot


def test_ids_are_rfc9562_uuids_carrying_the_slot() -> None:
    for slot in (0, 1, 8191, ids.SLOTS - 1):
        task_id = ids.new_hinted_id(slot)
        parsed = uuid.UUID(task_id)
        assert parsed.version == 8 and parsed.variant == uuid.RFC_4122
        assert check_task_id(task_id) == task_id
        assert ids.hinted_slot(task_id) == slot
    assert len({ids.new_hinted_id(5) for _ in range(10_000)}) == 10_000


def test_ids_sort_by_creation_millisecond() -> None:
    assert ids.new_hinted_id(3, now_ms=1000) < ids.new_hinted_id(3, now_ms=1001)


def test_foreign_ids_carry_no_slot() -> None:
    assert ids.hinted_slot(str(uuid.uuid4())) is None
    assert ids.hinted_slot("not a uuid") is None
