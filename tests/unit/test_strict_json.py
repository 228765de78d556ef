"""The strict JSON check of request bodies: its fast path (orjson reads the body and
writes it back unchanged) must give the strict parser's verdict and the value the routes
would have read themselves."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeq.core import jsontext
from codeq.server.strict_json import MAX_JSON_DEPTH, check

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def spaced(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()


@given(VALUES)
def test_what_orjson_writes_is_read_on_the_fast_path(value: Any) -> None:
    body = orjson.dumps(value)
    checked = check(body)
    assert checked.problem is None and checked.read
    assert checked.value == jsontext.loads(body)


@given(VALUES)
def test_other_spellings_are_left_to_the_strict_parser(value: Any) -> None:
    body = spaced(value)
    checked = check(body)
    assert checked.problem is None
    # only when nothing was spaced out
    assert checked.read == (body == orjson.dumps(value))


@pytest.mark.parametrize("body,words", [
    (b'{"a":1,"a":1}', "duplicate key 'a'"),
    (b'{"a":{"b":1,"b":2}}', "duplicate key 'b'"),
    (b'[{"k":[{"k":1,"k":1}]}]', "duplicate key 'k'"),
    (b'[1e400]', "too large"),
    (b'["\\ud800"]', "surrogate"),
    (b'[NaN]', "NaN"),
], ids=["flat", "nested", "deep", "huge", "surrogate", "nan"])
def test_compact_bodies_that_change_meaning_are_refused(body: bytes, words: str) -> None:
    checked = check(body)
    assert checked.problem is not None and words in checked.problem
    assert not checked.read


def test_long_integers_are_read_by_the_strict_parser() -> None:
    """orjson would read 2**64 as a float and write it back as one: never the fast path.
    Up to 2**64 - 1 it reads them exactly."""
    for body in (b"[18446744073709551616]", b"[1234567890123456789012345]",
                 b"[-9223372036854775809]"):
        checked = check(body)
        assert checked.problem is None and not checked.read
    assert check(b"[18446744073709551615,-9223372036854775808]").value == [
        18446744073709551615, -9223372036854775808]


@pytest.mark.parametrize("depth", [300, MAX_JSON_DEPTH])
def test_nesting_beyond_what_orjson_writes_is_checked_the_slow_way(depth: int) -> None:
    """orjson writes 255 levels at most; deeper bodies within the limit are still fine."""
    body = b"[" * depth + b"]" * depth
    checked = check(body)
    assert checked.problem is None and not checked.read
    deeper = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    assert "deeper" in (check(deeper).problem or "")


def test_malformed_json_is_left_to_the_app() -> None:
    checked = check(b'{"a":')
    assert checked.problem is None and not checked.read
