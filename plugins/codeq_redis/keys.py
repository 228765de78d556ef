"""Every key name codeq puts in Redis, built in one place (see ``docs/storage.md``).

Two kinds of hash tag keep each script's keys in one cluster slot:

- queue keys of a command carry the command itself: ``codeq:{GENERATE}:ready``;
- task keys carry a *slot tag*, a short string (``@1234``) chosen so that it
  hashes to the same slot as the command's tag. The slot is written into the
  task id (``codeq.core.ids``), so ``codeq:{@1234}:t:<id>`` is found from the
  id alone and still lives next to its command's queues. The result-callback
  outbox is kept per slot the same way (``OutboxKeys``). Where a task whose id
  carries no slot lives is resolved by ``codeq_redis.ids.TaskSlots``.

Subscriptions are not per command: they all live in one slot, ``{@subs}``
(``@`` never occurs in a command name, so no command shares the tag).
"""

from __future__ import annotations

from functools import cache

from codeq.core.ids import SLOTS, command_tag, key_slot

PREFIX = "codeq"
#: Pub/sub channel; messages are command names that just got ready work.
READY_CHANNEL = f"{PREFIX}:ready"
#: Set of every command ever used or paused.
COMMANDS = f"{PREFIX}:commands"
#: Sorted sets command -> lower bound of its earliest delayed visibility / lease deadline.
DELAYED_INDEX = f"{PREFIX}:index:delayed"
LEASES_INDEX = f"{PREFIX}:index:leases"
#: Set of the slots (decimal text) whose outbox may hold callbacks: registered before
#: the first task with a webhook of that slot is stored, so no entry is ever missed.
OUTBOX_SLOTS = f"{PREFIX}:outbox:slots"

_SUBS = f"{PREFIX}:{{@subs}}"
#: Hash subscription id -> JSON of the subscription (its expiry apart).
SUBSCRIPTIONS = f"{_SUBS}:subscriptions"
#: Sorted set subscription id -> expires_at.
SUBSCRIPTION_EXPIRY = f"{_SUBS}:expiry"
#: Hash subscription id -> when it was last notified (the throttle).
NOTIFIED = f"{_SUBS}:notified"
#: Hash group key -> the last turn handed out.
TURNS = f"{_SUBS}:turns"
#: Hash task id -> slot (decimal) of each task restored into a cluster with an id
#: that carries no slot (``codeq_redis.ids.TaskSlots``).
FOREIGN_IDS = f"{PREFIX}:foreign-ids"


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: the first non-empty ``{...}``, else all of it."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


@cache
def _slot_tags() -> tuple[str, ...]:
    """For each slot, the first tag ``@<n>`` that hashes to it (built once, ~0.2 s)."""
    tags: list[str | None] = [None] * SLOTS
    missing, n = SLOTS, 0
    while missing:
        tag = f"@{n}"
        slot = key_slot(tag)
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def slot_tag(slot: int) -> str:
    return _slot_tags()[slot]


class QueueKeys:
    """Keys of one command's queues; all share the ``{command}`` hash tag."""

    __slots__ = (
        "all",
        "command",
        "delayed",
        "dlq",
        "done",
        "idem",
        "leases",
        "paused",
        "ready",
        "seq",
    )

    def __init__(self, command: str) -> None:
        base = f"{PREFIX}:{{{command_tag(command)}}}"
        self.command = command
        self.ready = f"{base}:ready"        # zset id -> (9 - priority) * TIER + seq
        self.delayed = f"{base}:delayed"    # zset id -> visible_at
        self.leases = f"{base}:leases"      # zset id -> lease_until
        self.dlq = f"{base}:dlq"            # zset id -> seq when dead-lettered
        self.done = f"{base}:done"          # zset id -> finished_at (terminal tasks)
        self.all = f"{base}:all"            # zset id -> seq at creation (listing order)
        self.idem = f"{base}:idem"          # hash idempotencyKey -> id
        self.seq = f"{base}:seq"            # string, last sequence number handed out
        self.paused = f"{base}:paused"      # string "1" while paused


class OutboxKeys:
    """The result-callback outbox of one slot: the slot of its tasks' ids, hence of their command."""

    __slots__ = ("callbacks", "due", "slot")

    def __init__(self, slot: int) -> None:
        base = f"{PREFIX}:{{{slot_tag(slot)}}}"
        self.slot = slot
        self.due = f"{base}:outbox"             # zset task id -> due_at
        self.callbacks = f"{base}:callbacks"    # hash task id -> JSON [url, attempts]


class TaskKeys:
    """Keys of one task; the slot tag comes from the id."""

    __slots__ = ("history", "id", "result", "task")

    def __init__(self, task_id: str, slot: int) -> None:
        base = f"{PREFIX}:{{{slot_tag(slot)}}}"
        self.id = task_id
        self.task = f"{base}:t:{task_id}"       # hash of the task's fields
        self.history = f"{base}:h:{task_id}"    # list of JSON [at, event, workerId, reason]
        self.result = f"{base}:r:{task_id}"     # string, JSON result record
