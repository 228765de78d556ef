"""Counters of a running worker, for its status line and logs."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

RATE_WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class Stats:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    abandoned: int = 0
    in_flight: int = 0
    _finished_at: deque[float] = field(default_factory=deque)

    def finished(self, now: float | None = None) -> None:
        self._finished_at.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        """Tasks finished per second over the last minute."""
        now = time.monotonic() if now is None else now
        while self._finished_at and self._finished_at[0] < now - RATE_WINDOW_SECONDS:
            self._finished_at.popleft()
        return len(self._finished_at) / RATE_WINDOW_SECONDS

    def line(self) -> str:
        return (f"claimed {self.claimed} · completed {self.completed} · failed {self.failed} · "
                f"retried {self.retried} · abandoned {self.abandoned} · in flight "
                f"{self.in_flight} · {self.rate() * 60:.1f}/min")
