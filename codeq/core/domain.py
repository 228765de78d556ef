"""Domain models: plain data, no persistence.

Times are POSIX seconds (floats) everywhere inside codeq; they become RFC 3339
strings only at the edges (``codeq.core.render``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

#: Command names; also shown in the OpenAPI schema, so keep it plain (``fullmatch`` it).
COMMAND_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
COMMAND_PATTERN = re.compile(COMMAND_REGEX[:-1] + r"\Z")
HISTORY_LIMIT = 50
MIN_PRIORITY = 0
MAX_PRIORITY = 9


class Status(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class Outcome(StrEnum):
    """Where a task went after a nack, an abandon or a lease expiry."""

    REQUEUED = "requeued"
    DLQ = "dlq"
    CANCELLED = "cancelled"


@dataclass(slots=True, frozen=True)
class BackoffSpec:
    """A retry delay policy: a registered policy name plus its two numbers."""

    policy: str
    base_seconds: float
    max_seconds: float


@dataclass(slots=True)
class HistoryEntry:
    at: float
    event: str
    worker_id: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class Artifact:
    name: str
    url: str | None = None
    content_type: str | None = None


@dataclass(slots=True)
class ResultRecord:
    task_id: str
    status: Status
    result: Any = None
    error: str | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    completed_at: float = 0.0
    worker_id: str | None = None


@dataclass(slots=True)
class Task:
    id: str
    command: str
    payload: Any
    priority: int
    max_attempts: int
    created_at: float
    updated_at: float
    status: Status = Status.PENDING
    attempts: int = 0
    worker_id: str | None = None
    lease_id: str | None = None
    lease_until: float | None = None
    webhook: str | None = None
    error: str | None = None
    run_at: float | None = None
    visible_at: float | None = None
    idempotency_key: str | None = None
    backoff: BackoffSpec | None = None
    cancel_requested: bool = False
    dead_lettered: bool = False
    finished_at: float | None = None
    history: list[HistoryEntry] = field(default_factory=list)

    def copy(self) -> Task:
        return replace(self, history=list(self.history))

    def record(self, at: float, event: str, worker_id: str | None = None,
               reason: str | None = None) -> None:
        """Append to the bounded timeline, keeping the last ``HISTORY_LIMIT`` entries."""
        self.history.append(HistoryEntry(at, event, worker_id, reason))
        if len(self.history) > HISTORY_LIMIT:
            del self.history[: len(self.history) - HISTORY_LIMIT]


@dataclass(slots=True, frozen=True)
class QueueStats:
    """Depths of one command's queues.

    A delayed task whose time has come counts as ready before the promoter moves
    it. ``oldest_ready_at`` is when the longest-waiting ready task became ready:
    when it entered the ready queue (created, requeued, promoted, redriven), or
    its ``visible_at`` while it waits for promotion; None when nothing is ready.
    """

    command: str
    ready: int
    delayed: int
    in_progress: int
    dlq: int
    paused: bool
    oldest_ready_at: float | None = None


class DeliveryMode(StrEnum):
    """How an availability notification picks among matching subscriptions."""

    FANOUT = "fanout"  # every one
    GROUP = "group"  # one per group, round-robin
    HASH = "hash"  # one per group, the same one within a minute


@dataclass(slots=True)
class Subscription:
    """A worker's request to be told (by POST to ``callback_url``) when work is available."""

    id: str
    owner: str  # the ``sub`` of the worker token that subscribed
    callback_url: str
    event_types: list[str]  # commands, or ``["*"]``
    delivery_mode: DeliveryMode
    group_id: str | None
    min_interval_seconds: float
    created_at: float
    expires_at: float

    def matches(self, command: str) -> bool:
        return "*" in self.event_types or command in self.event_types


@dataclass(slots=True)
class Callback:
    """A result callback waiting in the outbox: POST the outcome of ``task_id`` to ``url``.

    ``attempts`` counts deliveries tried so far; the entry is due at ``due_at``
    (pushed forward while a dispatcher holds it, so only one sends each attempt).
    """

    task_id: str
    url: str
    attempts: int
    due_at: float


@dataclass(slots=True)
class Page:
    """One page of a listing; ``next_cursor`` is None on the last page."""

    tasks: list[Task]
    next_cursor: str | None


def new_id() -> str:
    """A random (version 4) UUID as text, written directly: a lease id per claimed task
    made through ``uuid.UUID`` cost twice as much."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # the RFC 9562 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
