"""Task ids that carry the Redis Cluster slot of their command, made by every backend.

An id is an RFC 9562 UUID, version 8 (custom layout)::

    48 bits  unix time in milliseconds (ids sort roughly by creation)
     4 bits  version 8
    12 bits  random
     2 bits  variant 0b10
    14 bits  cluster slot of the command's hash tag
    48 bits  random

Every backend makes its ids this way, so a task born anywhere moves into a
Redis Cluster with its id unchanged: the Redis store finds the task's keys
from the id alone (see ``docs/storage.md``, "Finding a task by id alone").
Any other UUID (a random v4 of an older store) has no hint.
"""

from __future__ import annotations

import binascii
import re
import secrets
import string
import time
import uuid
from functools import lru_cache

SLOTS = 16384

#: A version 8 UUID with the RFC 9562 variant, in canonical lowercase form.
_CANONICAL_V8 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

_SAFE = frozenset(string.ascii_letters + string.digits + "_.:-")


@lru_cache(maxsize=4096)
def command_tag(command: str) -> str:
    """The Redis hash tag of a command: the name, percent-encoded outside ``[A-Za-z0-9_.:-]``.

    Valid command names pass unchanged; anything else cannot open or close a
    hash tag, and the mapping stays one-to-one because ``%`` is escaped too.
    """
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in command)


def key_slot(tag: str) -> int:
    """The Redis Cluster slot of a hash tag (CRC16/XMODEM mod 16384)."""
    return binascii.crc_hqx(tag.encode(), 0) % SLOTS


@lru_cache(maxsize=4096)
def command_slot(command: str) -> int:
    return key_slot(command_tag(command))


def new_hinted_id(slot: int, *, now_ms: int | None = None) -> str:
    if not 0 <= slot < SLOTS:
        raise ValueError(f"slot {slot} out of range")
    ms = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) & ((1 << 48) - 1)
    noise = secrets.randbits(60)  # one read of the system's random source, split in two
    value = (ms << 80) | (0x8 << 76) | ((noise >> 48) << 64)
    value |= (0b10 << 62) | (slot << 48) | (noise & ((1 << 48) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_task_id(command: str) -> str:
    """A fresh task id carrying the cluster slot of ``command``."""
    return new_hinted_id(command_slot(command))


def hinted_slot(task_id: str) -> int | None:
    """The slot written into ``task_id``; None for an id without one (a foreign id)."""
    if _CANONICAL_V8.fullmatch(task_id):  # how codeq writes them: no parsing needed
        return int(task_id[19:23], 16) & (SLOTS - 1)
    try:
        parsed = uuid.UUID(task_id)
    except ValueError:
        return None
    if parsed.version == 8 and parsed.variant == uuid.RFC_4122:
        return (parsed.int >> 48) & (SLOTS - 1)
    return None
