"""Strict JSON for request bodies: what a lenient parser would take but codeq refuses.

Refused (RFC 8259 and "nothing a client hands in is silently changed"): duplicate
keys, ``NaN`` and ``Infinity``, a number too large for a float, an integer longer
than Python reads (4300 digits), a lone UTF-16 surrogate, nesting deeper than
``MAX_JSON_DEPTH``, and any encoding but UTF-8.

Most bodies take the fast path: a text that orjson reads and writes back byte for
byte holds none of these (orjson refuses constants, infinite numbers and lone
surrogates, and writes each key of an object once), and its value is handed on so
that the route need not parse it again. Any other text (spaces between tokens, a
number written another way, an integer beyond 64 bits that orjson would round) is
parsed by the standard library with hooks that name what they refuse.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

#: How deeply a JSON body may nest arrays and objects. Every layer a value passes through
#: (the parsers, the stores' writers, the answer's renderer) takes this much; Python's own
#: JSON writer, which they fall back to, gives out at about 1,000 levels.
MAX_JSON_DEPTH = 512
#: A ``\uD800``..``\uDFFF`` escape: only then can a parsed string hold a lone surrogate.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
#: The scope key under which ``Checked.value`` travels to the routes.
PARSED_BODY = "codeq.parsed_body"


@dataclass(frozen=True, slots=True)
class Checked:
    problem: str | None  # why the body is refused; None when it is not
    value: Any = None  # the body's value, when read on the fast path
    read: bool = False  # whether ``value`` holds it


class _Refused(Exception):
    """Raised by the strict parser's hooks; its message says what was refused."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        twice = next(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        raise _Refused(f"duplicate key {twice[:64]!r} in a JSON object")
    return found


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"number {text[:64]} is too large")
    return value


def _integer(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > (most := sys.get_int_max_str_digits()) > 0:
        raise _Refused(f"an integer of {digits} digits is longer than the {most} digits "
                       "this server reads")
    return int(text)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _depth(value: Any) -> int:
    """How deeply ``value`` nests arrays and objects (without recursing itself)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            todo.extend((child, depth) for child in
                        (item.values() if isinstance(item, dict) else item))
    return deepest


def _exact(body: bytes) -> Checked | None:
    """The fast path: ``body`` read by orjson when it writes the value back as ``body``.
    orjson nests at most 255 levels on the way out, well within ``MAX_JSON_DEPTH``; an
    integer beyond 64 bits, which it reads as a float, comes back as a float's text."""
    try:
        value = orjson.loads(body)
        written = orjson.dumps(value)
    except (orjson.JSONDecodeError,  # malformed, or refused: the strict parser says which
            orjson.JSONEncodeError):  # nested deeper than orjson writes
        return None
    return Checked(None, value, read=True) if written == body else None


def check(body: bytes) -> Checked:
    """Whether ``body`` is strict JSON; malformed JSON is not refused here but left to the
    app, which reports where it broke."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]:
        # UTF-16 or UTF-32, which Python's parser reads too, but past the surrogate check
        return Checked("JSON is exchanged in UTF-8 (RFC 8259), not UTF-16 or UTF-32")
    fast = _exact(body)
    if fast is not None:
        return fast
    too_deep = Checked(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        parsed = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                            parse_float=_finite, parse_int=_integer)
    except _Refused as exc:
        return Checked(str(exc))
    except RecursionError:
        return too_deep
    except ValueError:
        return Checked(None)
    # only a body with that many brackets can nest that deep: most bodies skip the walk
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _depth(parsed) > MAX_JSON_DEPTH:
        return too_deep
    if _ESCAPED_SURROGATE.search(body) and _has_lone_surrogate(parsed):
        return Checked("a string holds a lone UTF-16 surrogate (not Unicode text)")
    return Checked(None)
