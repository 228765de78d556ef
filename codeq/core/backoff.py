"""Retry delays: named policies (registered by plugins) applied to a task's attempts."""

from __future__ import annotations

import random
from collections.abc import Callable

from codeq.core.domain import BackoffSpec
from codeq.core.errors import InvalidInput

#: ``policy(attempts, base_seconds, max_seconds, rng) -> seconds``
BackoffPolicy = Callable[[int, float, float, random.Random], float]


class BackoffPolicies:
    """The policies known to this process, by name."""

    def __init__(self, policies: dict[str, BackoffPolicy], rng: random.Random | None = None):
        self._policies = dict(policies)
        self._rng = rng or random.Random()

    def with_rng(self, rng: random.Random) -> BackoffPolicies:
        """The same policies drawing jitter from ``rng`` (a seeded one makes delays repeatable)."""
        return BackoffPolicies(self._policies, rng)

    @property
    def names(self) -> list[str]:
        return sorted(self._policies)

    def check(self, name: str) -> str:
        if name not in self._policies:
            raise InvalidInput(f"unknown backoff policy {name!r}; known policies: "
                               f"{', '.join(self.names)}")
        return name

    def delay(self, spec: BackoffSpec, attempts: int) -> float:
        """Seconds to wait before the next delivery of a task that was delivered ``attempts`` times."""
        seconds = self._policies[spec.policy](attempts, spec.base_seconds, spec.max_seconds,
                                              self._rng)
        return max(0.0, min(float(seconds), spec.max_seconds))
