"""The five built-in policies of SPEC section 6, as properties."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeq.core.domain import BackoffSpec
from codeq.core.errors import InvalidInput
from codeq.plugins import backoff_policies

attempts = st.integers(min_value=0, max_value=10_000)
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
POLICIES = backoff_policies()


def delay(policy: str, n: int, base: float, top: float, seed: int = 0) -> float:
    return POLICIES.with_rng(random.Random(seed)).delay(
        BackoffSpec(policy, base, top), n)


def test_builtins_are_registered() -> None:
    assert POLICIES.names == ["exp_equal_jitter", "exp_full_jitter", "exponential", "fixed",
                              "linear"]


def test_unknown_policy_is_refused_with_the_known_names() -> None:
    with pytest.raises(InvalidInput, match="exp_full_jitter"):
        POLICIES.check("fibonacci")


@given(n=attempts, base=seconds, top=seconds)
def test_fixed(n: int, base: float, top: float) -> None:
    assert delay("fixed", n, base, top) == min(base, top)


@given(n=attempts, base=seconds, top=seconds)
def test_linear(n: int, base: float, top: float) -> None:
    assert delay("linear", n, base, top) == pytest.approx(min(base * max(1, n), top))


@given(n=st.integers(0, 40), base=seconds, top=seconds)
def test_exponential(n: int, base: float, top: float) -> None:
    assert delay("exponential", n, base, top) == pytest.approx(min(base * 2**n, top))


@given(n=attempts, base=seconds, top=seconds, seed=st.integers(0, 2**32))
def test_full_jitter_is_an_integer_within_the_cap(n: int, base: float, top: float,
                                                  seed: int) -> None:
    cap = min(base * 2.0 ** min(n, 1000), top)
    value = delay("exp_full_jitter", n, base, top, seed)
    assert value == int(value)
    assert 0 <= value <= cap


@given(n=attempts, base=seconds, top=seconds, seed=st.integers(0, 2**32))
def test_equal_jitter_is_between_half_and_the_cap(n: int, base: float, top: float,
                                                  seed: int) -> None:
    cap = min(base * 2.0 ** min(n, 1000), top)
    value = delay("exp_equal_jitter", n, base, top, seed)
    assert cap / 2 - 1e-9 <= value <= cap + 1e-9


def test_jitter_spreads() -> None:
    # cap = 5 * 2**5 = 160: full jitter is uniform over [0, 160], equal jitter over [80, 160];
    # over 200 seeds each reaches both ends of its range, not just a part of it.
    full = [delay("exp_full_jitter", 5, 5, 900, seed) for seed in range(200)]
    assert len(set(full)) > 10
    assert min(full) < 40 and max(full) > 120
    equal = [delay("exp_equal_jitter", 5, 5, 900, seed) for seed in range(200)]
    assert len(set(equal)) > 10
    assert min(equal) < 100 and max(equal) > 140
