"""Task ids that carry the cluster slot of their command.

An id is an RFC 9562 UUID, version 8 (custom layout)::

    48 bits  unix time in milliseconds (ids sort roughly by creation)
     4 bits  version 8
    12 bits  random
     2 bits  variant 0b10
    14 bits  cluster slot of the command's hash tag
    48 bits  random

Any other UUID (a random v4 from another backend) has no hint: its slot is
the CRC16 of the id text, which is right on a single server and refused on a
cluster (see ``RedisStorage.create``).
"""

from __future__ import annotations

import secrets
import time
import uuid

from codeq_redis.keys import SLOTS, key_slot


def new_id(slot: int, *, now_ms: int | None = None) -> str:
    if not 0 <= slot < SLOTS:
        raise ValueError(f"slot {slot} out of range")
    ms = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) & ((1 << 48) - 1)
    value = (ms << 80) | (0x8 << 76) | (secrets.randbits(12) << 64)
    value |= (0b10 << 62) | (slot << 48) | secrets.randbits(48)
    return str(uuid.UUID(int=value))


def slot_of(task_id: str) -> int:
    """The slot written into ``task_id``, or the CRC16 slot of an id without one."""
    try:
        parsed = uuid.UUID(task_id)
    except ValueError:
        return key_slot(task_id)
    if parsed.version == 8 and parsed.variant == uuid.RFC_4122:
        return (parsed.int >> 48) & (SLOTS - 1)
    return key_slot(task_id)
