"""What happened to tasks, for whoever counts it: the ``Recorder`` the scheduler reports to.

The scheduler calls ``recorder.count(event, command)`` right after the store
made a change, once per task it changed (``n`` for a batch of one command).
The server's recorder is the Prometheus counters of ``codeq.server.metrics``;
without one, ``NO_RECORDER`` ignores everything. A recorder must be cheap and
must not raise: the change it hears about has already happened.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from codeq.core.domain import Outcome


class Event(StrEnum):
    CREATED = "created"  # a new task was stored (an idempotent replay is not)
    CLAIMED = "claimed"  # a task was leased to a worker
    COMPLETED = "completed"  # a worker submitted a COMPLETED result
    FAILED = "failed"  # a worker submitted a FAILED result
    NACKED = "nacked"  # a NACK put the task back for a retry
    DEAD_LETTERED = "dead_lettered"  # a NACK or lease expiry used the last attempt
    LEASE_EXPIRED = "lease_expired"  # the reaper took a task back from its worker
    REDRIVEN = "redriven"  # a DLQ task was put back to ready
    CANCELLED = "cancelled"  # a task became CANCELLED
    WEBHOOK_DELIVERED = "webhook_delivered"  # a result callback was accepted by its receiver
    WEBHOOK_FAILED = "webhook_failed"  # a result callback attempt failed


#: The event a requeue (NACK, abandon, lease expiry) ends in, beyond its own,
#: when it did not put the task back.
OUTCOME_EVENTS: dict[Outcome, Event] = {Outcome.DLQ: Event.DEAD_LETTERED,
                                        Outcome.CANCELLED: Event.CANCELLED}


class Recorder(Protocol):
    def count(self, event: str, command: str, n: int = 1) -> None:
        """``n`` tasks of ``command`` went through ``event`` (an ``Event`` value)."""


class NoRecorder:
    """Counts nothing."""

    def count(self, event: str, command: str, n: int = 1) -> None:
        return None


NO_RECORDER: Recorder = NoRecorder()
