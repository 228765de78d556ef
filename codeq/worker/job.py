"""``Job``: the claimed task as a handler receives it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def parse_time(value: str | None) -> float | None:
    """An RFC 3339 timestamp from the server as POSIX seconds."""
    return datetime.fromisoformat(value).timestamp() if value else None


_MAKING_EVENTS = threading.Lock()


@dataclass(slots=True)
class Job:
    """One leased task. ``task`` is the server's JSON; the rest are shortcuts.

    ``cancelled`` is set when the runtime stops the handler (the task was
    cancelled, the lease was lost, or the worker is stopping without grace):
    async handlers are cancelled, sync handlers (run in a thread) should poll
    ``job.cancelled.is_set()`` in long loops; whatever they return afterwards
    is ignored.
    """

    task: dict[str, Any]
    lease_until: float
    _cancelled: threading.Event | None = field(default=None, init=False, repr=False)

    @property
    def cancelled(self) -> threading.Event:
        """Made when first asked for (most jobs never are: an Event is a lock and a
        condition, a tenth of a worker's CPU per task at full speed)."""
        event = self._cancelled
        if event is None:
            with _MAKING_EVENTS:  # the handler's thread and the runtime may ask at once
                if self._cancelled is None:
                    self._cancelled = threading.Event()
                event = self._cancelled
        return event

    @classmethod
    def from_task(cls, task: dict[str, Any], lease_seconds: float | None) -> Job:
        until = parse_time(task.get("leaseUntil"))
        if until is None:
            until = time.time() + (lease_seconds or 300)
        return cls(task=task, lease_until=until)

    @property
    def id(self) -> str:
        return str(self.task["id"])

    @property
    def command(self) -> str:
        return str(self.task["command"])

    @property
    def payload(self) -> Any:
        return self.task.get("payload")

    @property
    def priority(self) -> int:
        return int(self.task.get("priority") or 0)

    @property
    def attempts(self) -> int:
        return int(self.task.get("attempts") or 0)

    @property
    def max_attempts(self) -> int:
        return int(self.task.get("maxAttempts") or 0)

    @property
    def lease_id(self) -> str | None:
        lease = self.task.get("leaseId")
        return str(lease) if lease else None
