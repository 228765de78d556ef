"""The five built-in backoff policies (SPEC section 6); ``n`` is attempts so far."""

from __future__ import annotations

import random
from collections.abc import Callable

from codeq import hookimpl
from codeq.core.backoff import BackoffPolicy


def fixed(n: int, base: float, top: float, rng: random.Random) -> float:
    return min(base, top)


def linear(n: int, base: float, top: float, rng: random.Random) -> float:
    return min(base * max(1, n), top)


def _exp(n: int, base: float, top: float) -> float:
    # 2.0**n overflows past n = 1023; any positive base has reached the cap by then.
    return min(base * 2.0 ** min(n, 1000), top)


def exponential(n: int, base: float, top: float, rng: random.Random) -> float:
    return _exp(n, base, top)


def exp_full_jitter(n: int, base: float, top: float, rng: random.Random) -> float:
    return float(rng.randint(0, int(_exp(n, base, top))))


def exp_equal_jitter(n: int, base: float, top: float, rng: random.Random) -> float:
    half = _exp(n, base, top) / 2
    return half + rng.uniform(0, half)


POLICIES: dict[str, BackoffPolicy] = {
    "fixed": fixed,
    "linear": linear,
    "exponential": exponential,
    "exp_full_jitter": exp_full_jitter,
    "exp_equal_jitter": exp_equal_jitter,
}


@hookimpl
def register_backoff_policies(register: Callable[[str, BackoffPolicy], None]) -> None:
    for name, policy in POLICIES.items():
        register(name, policy)
