"""jsontext reads exactly what the standard library reads, short texts and long."""

from __future__ import annotations

import json

import pytest

from codeq.core import jsontext

BIG = 123456789012345678901234567890


@pytest.mark.parametrize("padding", [0, 1_000], ids=["short", "long"])
def test_integers_beyond_64_bits_are_read_exactly(padding: int) -> None:
    text = b'{"pad":"%s","big":%d,"neg":-%d}' % (b"x" * padding, BIG, BIG)
    assert jsontext.loads(text)["big"] == BIG and jsontext.loads(text)["neg"] == -BIG
    assert type(jsontext.loads(text)["big"]) is int


@pytest.mark.parametrize("padding", [0, 1_000], ids=["short", "long"])
def test_digits_in_strings_and_short_runs_read_the_same(padding: int) -> None:
    text = (b'{"pad":"%s","id":"0193a9f0-1234-7abc-8def-0123456789ab","n":[%s]}'
            % (b" " * padding, b",".join(b"1" * 18 for _ in range(40))))
    assert jsontext.loads(text) == json.loads(text)


def test_a_lone_surrogate_escape_is_kept() -> None:
    text = b'["%s\\ud800"]' % (b"y" * 500)
    assert jsontext.loads(text) == json.loads(text)
