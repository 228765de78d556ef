"""Properties, checked over generated inputs (hypothesis): backoff, signatures, request models."""

from __future__ import annotations

import inspect
import json
import random
from fractions import Fraction
from typing import Any

import pytest
from codeq_backoff import POLICIES
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from codeq.client.signature import sign, verify_signature
from codeq.core import models
from codeq.core.backoff import BackoffPolicies
from codeq.core.domain import BackoffSpec

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# -- backoff (SPEC 6) ---------------------------------------------------------------------
attempts = st.integers(min_value=0, max_value=5000)
#: Seconds as a configuration would give them: 0, or at least a millisecond.
seconds = st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=1e7))


def exponential_cap(n: int, base: float, top: float) -> float:
    """cap(base * 2^n), computed exactly."""
    return float(min(Fraction(base) * 2 ** n, Fraction(top)))


def expected_bounds(policy: str, n: int, base: float, top: float) -> tuple[float, float]:
    """The interval SPEC section 6 allows for ``policy``."""
    if policy == "fixed":
        value = min(base, top)
        return value, value
    if policy == "linear":
        value = float(min(Fraction(base) * max(1, n), Fraction(top)))
        return value, value
    cap = exponential_cap(n, base, top)
    return {"exponential": (cap, cap), "exp_full_jitter": (0.0, cap),
            "exp_equal_jitter": (cap / 2, cap)}[policy]


def policies(seed: int) -> BackoffPolicies:
    return BackoffPolicies(POLICIES, random.Random(seed))


@FAST
@given(policy=st.sampled_from(sorted(POLICIES)), n=attempts, base=seconds, top=seconds,
       seed=st.integers(0, 2 ** 32))
def test_backoff_stays_in_the_spec_interval(policy: str, n: int, base: float, top: float,
                                            seed: int) -> None:
    delay = policies(seed).delay(BackoffSpec(policy, base, top), n)
    low, high = expected_bounds(policy, n, base, top)
    assert 0.0 <= delay <= top
    assert low - 1e-9 * max(1.0, low) <= delay <= high + 1e-9 * max(1.0, high), (low, delay, high)
    if policy == "exp_full_jitter":
        assert delay == int(delay), "full jitter draws whole seconds"


@FAST
@given(policy=st.sampled_from(sorted(POLICIES)), n=attempts, base=seconds, top=seconds)
def test_backoff_caps_never_shrink_with_attempts(policy: str, n: int, base: float,
                                                 top: float) -> None:
    now_low, now_high = expected_bounds(policy, n, base, top)
    next_low, next_high = expected_bounds(policy, n + 1, base, top)
    assert next_high >= now_high and next_low >= now_low
    if policy in ("fixed", "linear", "exponential"):
        fixed = policies(0)
        spec = BackoffSpec(policy, base, top)
        assert fixed.delay(spec, n + 1) >= fixed.delay(spec, n)


@pytest.mark.parametrize("policy", ["exp_full_jitter", "exp_equal_jitter"])
def test_jitter_spreads_over_its_whole_range(policy: str) -> None:
    spec = BackoffSpec(policy, 10.0, 900.0)
    low, high = expected_bounds(policy, 6, 10.0, 900.0)  # cap 640
    draws = [policies(seed).delay(spec, 6) for seed in range(400)]
    quarter = (high - low) / 4
    assert min(draws) < low + quarter and max(draws) > high - quarter
    assert len(set(draws)) > 50


# -- signatures (SPEC 3) -----------------------------------------------------------------
NOW = 1_800_000_000
secrets_ = st.one_of(st.text(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))
bodies = st.binary(max_size=2048)


@FAST
@given(secret=secrets_, body=bodies, skew=st.integers(-300, 300))
def test_signature_round_trip(secret: str | bytes, body: bytes, skew: int) -> None:
    timestamp = NOW + skew
    signature = sign(secret, timestamp, body)
    assert verify_signature(secret, timestamp, body, signature, now=NOW)
    assert verify_signature(secret, str(timestamp), body, signature.upper(), now=NOW)


@FAST
@given(secret=secrets_, body=bodies.filter(bool), data=st.data())
def test_any_changed_body_byte_is_rejected(secret: str | bytes, body: bytes,
                                           data: st.DataObject) -> None:
    signature = sign(secret, NOW, body)
    index = data.draw(st.integers(0, len(body) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
    changed = body[:index] + bytes([new]) + body[index + 1:]
    assert not verify_signature(secret, NOW, changed, signature, now=NOW)
    assert not verify_signature(secret, NOW, body + b" ", signature, now=NOW)


@FAST
@given(secret=secrets_, body=bodies, data=st.data())
def test_any_changed_signature_digit_is_rejected(secret: str | bytes, body: bytes,
                                                 data: st.DataObject) -> None:
    signature = sign(secret, NOW, body)
    index = data.draw(st.integers(0, len(signature) - 1))
    digit = data.draw(st.sampled_from("0123456789abcdef").filter(lambda c: c != signature[index]))
    assert not verify_signature(secret, NOW, body,
                                signature[:index] + digit + signature[index + 1:], now=NOW)
    assert not verify_signature(secret, NOW, body, signature[:-1], now=NOW)


@FAST
@given(secret=secrets_, other=secrets_, body=bodies)
def test_another_secret_is_rejected(secret: str | bytes, other: str | bytes, body: bytes) -> None:
    as_bytes = [s.encode() if isinstance(s, str) else s for s in (secret, other)]
    assume(as_bytes[0] != as_bytes[1])
    assert not verify_signature(other, NOW, body, sign(secret, NOW, body), now=NOW)


@FAST
@given(secret=secrets_, body=bodies, tolerance=st.integers(1, 10_000),
       beyond=st.integers(1, 10 ** 9), sign_of=st.sampled_from([-1, 1]))
def test_stale_and_future_timestamps_are_rejected(secret: str | bytes, body: bytes,
                                                  tolerance: int, beyond: int,
                                                  sign_of: int) -> None:
    edge = NOW + sign_of * tolerance
    assert verify_signature(secret, edge, body, sign(secret, edge, body), tolerance, now=NOW)
    late = NOW + sign_of * (tolerance + beyond)
    assert not verify_signature(secret, late, body, sign(secret, late, body), tolerance,
                                now=NOW)


@FAST
@given(secret=secrets_, body=bodies, timestamp=st.text(max_size=40), signature=st.text(max_size=80))
def test_garbage_headers_answer_false_and_never_raise(secret: str | bytes, body: bytes,
                                                      timestamp: str, signature: str) -> None:
    assert verify_signature(secret, timestamp, body, signature, now=NOW) in (True, False)
    assert not verify_signature(secret, NOW, body, signature, now=NOW) or \
        signature.strip().lower() == sign(secret, NOW, body)


# -- request models --------------------------------------------------------------------
REQUEST_MODELS = sorted((cls for _, cls in inspect.getmembers(models, inspect.isclass)
                         if issubclass(cls, models.Model) and cls is not models.Model),
                        key=lambda cls: cls.__name__)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)
#: Values shaped like the ones each field expects (with some wrong ones), so that
#: many generated bodies are accepted and many refused.
some = st.sampled_from
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "command": some(["GENERATE", "a.b:c-d", "bad name", "A\n", "*"]),
    "commands": st.lists(some(["GENERATE", "X", "bad name"]), max_size=3),
    "eventTypes": st.lists(some(["GENERATE", "*", "bad name"]), max_size=3),
    "status": some(["COMPLETED", "FAILED", "DONE"]),
    "runAt": some(["2030-01-31T12:00:00Z", "2016-12-31T23:59:60-08:00", "1999-01-01t00:00:00z",
                   "2030-01-31T12:00:00", "9999-12-31T23:59:59-12:00", "yesterday"]),
    "before": some(["2030-01-31T12:00:00+14:00", "2030-01-31"]),
    "webhook": some(["https://example.test/hook", "ftp://x", "http://x/\n"]),
    "callbackUrl": some(["http://127.0.0.1:9/x", "not a url"]),
    "url": some(["https://example.test/a.txt", "file:///etc/passwd"]),
    "name": some(["report.txt", "../up", "a/b", "caf\u00e9.txt"]),
    "taskId": some(["3f2a3c1e-6a59-4f0b-9a5d-5f1c1a2b3c4d", "{x}"]),
    "ids": st.lists(some(["3f2a3c1e-6a59-4f0b-9a5d-5f1c1a2b3c4d", "*"]), max_size=2),
    "leaseId": some(["3f2a3c1e-6a59-4f0b-9a5d-5f1c1a2b3c4d", "lease\n", ""]),
    "deliveryMode": some(["fanout", "group", "hash", "broadcast"]),
    "policy": some(["fixed", "exponential", ""]),
    "contentBase64": some(["aGVsbG8=", "not base64!"]),
    "artifacts": st.lists(st.fixed_dictionaries(
        {"name": some(["a.txt", ".."])}, optional={"url": some(["https://e.test/a"])}),
        max_size=2),
    "idempotencyKey": st.text(max_size=12),
    "reason": st.text(max_size=12),
    "error": st.text(max_size=12),
    "contentType": some(["text/plain", "a\nb"]),
    "backoff": st.fixed_dictionaries({}, optional={"policy": some(["fixed", "linear"]),
                                                   "baseSeconds": st.integers(-1, 60)}),
    "tasks": st.lists(st.fixed_dictionaries({"command": some(["A", "bad name"]),
                                             "payload": json_values}), max_size=2),
    "results": st.lists(st.fixed_dictionaries({"taskId": some(["x"]),
                                               "status": some(["FAILED"])}), max_size=2),
}
numbers = st.one_of(st.integers(0, 30), st.integers(-5, 2000),
                    st.floats(-10, 1e5, allow_nan=False), st.integers(-2 ** 70, 2 ** 70))
wire_value = st.one_of(numbers, numbers, json_values)


UUID = "3f2a3c1e-6a59-4f0b-9a5d-5f1c1a2b3c4d"
#: A valid value for each field, drawn most of the time so that whole bodies pass too.
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "command": some(["GENERATE", "a.b:c-d"]), "commands": st.just(["GENERATE"]),
    "eventTypes": st.just(["GENERATE"]), "status": st.just("FAILED"), "error": st.just("boom"),
    "runAt": some(["2030-01-31T12:00:00Z", "2016-12-31T23:59:60-08:00"]),
    "before": st.just("2030-01-31T12:00:00+14:00"), "webhook": st.just("https://e.test/h"),
    "callbackUrl": st.just("http://127.0.0.1:9/x"), "url": st.just("https://e.test/a.txt"),
    "name": st.just("report.txt"), "taskId": st.just(UUID), "ids": st.just([UUID]),
    "leaseId": st.just(UUID), "deliveryMode": st.just("fanout"), "groupId": st.just("g1"),
    "policy": st.just("fixed"), "contentBase64": st.just("aGVsbG8="),
    "contentType": st.just("text/plain"), "idempotencyKey": st.just("order-1"),
    "reason": st.text(max_size=12), "payload": json_values, "result": json_values,
    "artifacts": st.just([]), "backoff": st.just({"policy": "fixed"}),
    "tasks": st.just([{"command": "A", "payload": 1}]),
    "results": st.just([{"taskId": UUID, "status": "FAILED", "error": "x"}]),
}


def wire_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


@st.composite
def bodies_for(draw: st.DrawFn, model: type[BaseModel]) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(json_values)
    body = {name: draw(GOOD.get(name, st.integers(1, 30)) if draw(st.integers(0, 5))
                       else FIELDS.get(name, wire_value))
            for name in wire_names(model) if draw(st.integers(0, 9))}
    if draw(st.integers(0, 19)) == 0:
        body["unknownField"] = 1
    return body


def round_trip(model: type[BaseModel], data: Any) -> None:
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        assert models.describe(exc.errors()), "a refusal says what was wrong"
        return
    wire = json.loads(parsed.model_dump_json(by_alias=True, exclude_unset=True))
    again = model.model_validate(wire)
    assert again == parsed, (data, wire)
    assert json.loads(again.model_dump_json(by_alias=True, exclude_unset=True)) == wire


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(REQUEST_MODELS), data=st.data())
def test_models_accept_cleanly_or_refuse_cleanly(model: type[BaseModel],
                                                 data: st.DataObject) -> None:
    round_trip(model, data.draw(bodies_for(model)))
