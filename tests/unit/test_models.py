"""Request models: what they accept, what they refuse, and that they never crash."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from codeq.core import models
from codeq.core.domain import new_id
from codeq.core.errors import InvalidInput
from codeq.core.models import is_uuid

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(payload=json_values, priority=st.integers(-10**6, 10**6))
def test_any_json_payload_and_clamped_priority(payload: Any, priority: int) -> None:
    task = models.CreateTask.model_validate({"command": "A", "payload": payload,
                                             "priority": priority})
    assert task.payload == payload
    assert task.priority == max(0, min(9, priority))


@given(body=st.dictionaries(st.sampled_from(["command", "payload", "priority", "maxAttempts",
                                              "webhook", "idempotencyKey", "runAt",
                                              "delaySeconds", "backoff", "other"]),
                            json_values))
def test_arbitrary_bodies_are_accepted_or_refused_never_crash(body: dict[str, Any]) -> None:
    try:
        models.CreateTask.model_validate(body)
    except ValidationError as exc:
        assert models.describe(exc.errors())


@pytest.mark.parametrize("command", ["", "-x", "a b", "a{b}", "a*", "x" * 129, "é", "a\nb",
                                     "a\x00b"])
def test_bad_command_names(command: str) -> None:
    with pytest.raises(ValidationError):
        models.CreateTask.model_validate({"command": command, "payload": None})


@pytest.mark.parametrize("command", ["A", "GENERATE_MASTER", "a.b:c-d_e", "9" * 128])
def test_good_command_names(command: str) -> None:
    assert models.CreateTask.model_validate({"command": command, "payload": 1}).command == command


@pytest.mark.parametrize("body", [
    {"command": "A"},                                         # payload is required
    {"command": "A", "payload": 1, "priority": "high"},
    {"command": "A", "payload": 1, "priority": True},
    {"command": "A", "payload": 1, "delaySeconds": -1},
    {"command": "A", "payload": 1, "runAt": "2026-01-01T00:00:00"},  # no offset
    {"command": "A", "payload": 1, "runAt": "yesterday"},
    {"command": "A", "payload": 1, "webhook": "ftp://x/y"},
    {"command": "A", "payload": 1, "webhook": "http://"},
    {"command": "A", "payload": 1, "maxAttempts": 0},
    {"command": "A", "payload": 1, "delay_seconds": 5},       # unknown field: a typo
])
def test_refused_bodies(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        models.CreateTask.model_validate(body)


def test_describe_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        models.CreateTask.model_validate({"command": "A", "payload": 1, "delay_seconds": 5})
    assert models.describe(info.value.errors()) == "delay_seconds: unknown field"


@pytest.mark.parametrize("value", ["x", "{A}", "6F9619FF-8B86-D011-B42D-00C04FC964FF", "1" * 5000])
def test_task_ids_must_be_canonical_uuids(value: str) -> None:
    with pytest.raises(InvalidInput):
        models.check_task_id(value)


def test_nack_and_claim_bounds() -> None:
    with pytest.raises(ValidationError):
        models.Nack.model_validate({"delaySeconds": -1})
    with pytest.raises(ValidationError):
        models.Claim.model_validate({"waitSeconds": 31})
    with pytest.raises(ValidationError):
        models.ClaimBatch.model_validate({"count": 1001})
    assert models.ClaimBatch.model_validate({"count": 1000}).count == 1000


@given(st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()) | st.uuids().map(
    lambda u: u.hex) | st.uuids().map(lambda u: f"{{{u}}}") | st.uuids().map(
    lambda u: f"{u}\n") | st.text(alphabet="0123456789abcdef-", min_size=30, max_size=40))
def test_is_uuid_accepts_exactly_the_canonical_form(text: str) -> None:
    try:
        canonical = str(uuid.UUID(text)) == text
    except ValueError:
        canonical = False
    assert is_uuid(text) == canonical


def test_new_ids_are_canonical_random_version_4_uuids() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    # every one of the 122 random bits takes both values across the sample
    bits = [uuid.UUID(text).int for text in ids]
    random_mask = (1 << 128) - 1 ^ (0xF << 76) ^ (0x3 << 62)
    ones = 0
    zeros = 0
    for b in bits:
        ones |= b & random_mask
        zeros |= ~b & random_mask
    assert ones == zeros == random_mask
