"""Request bodies of the HTTP API, validated here so every face shares the rules.

Field names are camelCase on the wire. Unknown fields are refused, so a typo
such as ``delay_seconds`` is reported instead of silently ignored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
)
from pydantic.alias_generators import to_camel

from codeq.core.artifacts import check_artifact_name
from codeq.core.domain import (
    COMMAND_PATTERN,
    COMMAND_REGEX,
    MAX_PRIORITY,
    MIN_PRIORITY,
    DeliveryMode,
)
from codeq.core.errors import InvalidInput

MAX_BATCH = 1000
MAX_DELAY_SECONDS = 10 * 365 * 86400
MAX_WAIT_SECONDS = 30
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]+")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: ASCII digits only; an offset's hours are 00..23 and its minutes 00..59 (RFC 3339), so
#: ``+00:60`` is refused instead of being read as ``+01:00``.
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:(?P<second>[0-9]{2})"
                      r"(\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])")


def check_command(value: str) -> str:
    if not COMMAND_PATTERN.fullmatch(value):
        raise ValueError("command names match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    return value


def check_event_type(value: str) -> str:
    """A command name, or ``*`` for every command."""
    return value if value == "*" else check_command(value)


def is_uuid(value: str) -> bool:
    """A UUID (RFC 9562) in its canonical lowercase form, as codeq issues ids: exactly the
    texts ``str(uuid.UUID(value)) == value`` accepts, at a tenth of its cost."""
    return isinstance(value, str) and _CANONICAL_UUID.fullmatch(value) is not None


def check_task_id(value: str) -> str:
    if not is_uuid(value):
        raise InvalidInput(f"{value[:64]!r} is not a task id (a lowercase UUID)")
    return value


def check_http_url(value: str) -> str:
    from urllib.parse import urlsplit

    if _CONTROL.search(value) or " " in value:
        raise ValueError("must be a URL without spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    try:
        port = parts.port
    except ValueError:  # not digits, or above 65535
        port = 0
    if port == 0:
        raise ValueError("must have no port or a port between 1 and 65535")
    return value


def _clamp_priority(value: int) -> int:
    return max(MIN_PRIORITY, min(MAX_PRIORITY, value))


def _rfc3339(value: Any) -> Any:
    """An RFC 3339 string (``T``/``t``/space, ``Z``/``z`` or an offset; a leap second ``:60``
    is the instant after ``:59``) parsed to a datetime; numbers and other formats refused."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not (match := _RFC3339.fullmatch(value)):
        raise ValueError("must be an RFC 3339 timestamp with an offset, such as "
                         "2030-01-31T12:00:00Z")
    leap = match["second"] == "60"
    text = value[:match.start("second")] + ("59" if leap else match["second"]) \
        + value[match.end("second"):]
    try:
        parsed = datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise ValueError(f"not a valid timestamp: {exc}") from None
    return parsed + timedelta(seconds=1) if leap else parsed


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (newline, tab, NUL ...)")
    return value


def _representable(value: datetime) -> datetime:
    """Refuse instants that cannot be shown in every time zone (the first and last day of
    years 1..9999), so that rendering a task never overflows."""
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not EARLIEST <= instant <= LATEST:
        raise ValueError(f"must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return value


Command = Annotated[str, AfterValidator(check_command),
                    Field(json_schema_extra={"pattern": COMMAND_REGEX})]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_representable)]
#: Free text that may be used as a lookup key: no control characters (newline, NUL ...).
KeyText = Annotated[str, AfterValidator(_no_control_characters),
                    Field(json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f]*$"})]
#: A lease id as the stores issue them (UUIDs); anything else cannot be a current lease.
LeaseId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")]
HttpUrl = Annotated[str, Field(max_length=2048), AfterValidator(check_http_url)]
#: JSON numbers only: ``true``, ``"5"``, ``"1_0"`` or ``" 5 "`` are not numbers (pydantic's
#: lax mode would read them as 1, 5, 10 and 5), and an integer field takes no ``2.0``.
Int = Annotated[int, Strict()]
Number = Annotated[float, Strict()]


def _query_digits(value: Any) -> Any:
    """A number in a query string: ASCII digits only (``int()`` would also take ``1_0``,
    `` 5 `` and ``٣``, and pydantic ``1.0``)."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError(f"{value[:64]!r} is not a whole number (digits 0-9 only)")
    return value


#: A count in a query string (``?limit=``).
QueryInt = Annotated[int, BeforeValidator(_query_digits)]
#: Clamped to 0..9 once it is an integer (``10 ** 30`` is 9), never before.
Priority = Annotated[int, Strict(), AfterValidator(_clamp_priority)]


class Model(BaseModel):
    """camelCase on the wire only: ``delay_seconds`` is an unknown field, not an alias."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")


class BackoffOverride(Model):
    policy: str | None = None
    base_seconds: Number | None = Field(None, ge=0, le=MAX_DELAY_SECONDS)
    max_seconds: Number | None = Field(None, ge=0, le=MAX_DELAY_SECONDS)


class CreateTask(Model):
    command: Command
    payload: Any
    priority: Priority = 0
    max_attempts: Int | None = Field(None, ge=1, le=10_000)
    webhook: HttpUrl | None = None
    idempotency_key: KeyText | None = Field(None, min_length=1, max_length=256)
    run_at: Timestamp | None = None
    delay_seconds: Number | None = Field(None, ge=0, le=MAX_DELAY_SECONDS)
    backoff: BackoffOverride | None = None


class CreateBatch(Model):
    tasks: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class Claim(Model):
    commands: list[Command] | None = Field(None, min_length=1, max_length=256)  # []: omit it
    lease_seconds: Number | None = Field(None, gt=0)
    wait_seconds: Number = Field(0, ge=0, le=MAX_WAIT_SECONDS)


class ClaimBatch(Claim):
    count: Int = Field(1, ge=1, le=MAX_BATCH)


class Heartbeat(Model):
    extend_seconds: Number | None = Field(None, gt=0)
    lease_id: LeaseId | None = None


class Abandon(Model):
    lease_id: LeaseId | None = None


class Nack(Model):
    delay_seconds: Number | None = Field(None, ge=0, le=MAX_DELAY_SECONDS)
    reason: str | None = Field(None, max_length=8192)
    lease_id: LeaseId | None = None


class ArtifactIn(Model):
    name: Annotated[str, AfterValidator(check_artifact_name)]
    url: HttpUrl | None = None
    content_base64: str | None = None
    content_type: KeyText | None = Field(None, max_length=255)


class SubmitResult(Model):
    status: Literal["COMPLETED", "FAILED"]
    result: Any = None
    error: str | None = Field(None, max_length=65536)
    artifacts: list[ArtifactIn] = Field(default_factory=list, max_length=100)
    lease_id: LeaseId | None = None


class BatchResultItem(SubmitResult):
    task_id: str


class BatchResults(Model):
    results: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class Redrive(Model):
    ids: list[str] | None = Field(None, max_length=10_000)
    limit: Int = Field(1000, ge=1, le=100_000)


class Cleanup(Model):
    limit: Int = Field(1000, ge=1, le=100_000)
    before: Timestamp | None = None
    command: Command | None = None


MAX_SUBSCRIPTION_TTL = 86400


class Subscribe(Model):
    callback_url: HttpUrl
    event_types: list[Annotated[str, AfterValidator(check_event_type)]] | None = Field(
        None, min_length=1, max_length=256)
    ttl_seconds: Number = Field(300, gt=0, le=MAX_SUBSCRIPTION_TTL)
    delivery_mode: DeliveryMode | None = None
    group_id: KeyText | None = Field(None, min_length=1, max_length=128)
    min_interval_seconds: Number | None = Field(None, ge=0, le=86400)


class RenewSubscription(Model):
    ttl_seconds: Number = Field(300, gt=0, le=MAX_SUBSCRIPTION_TTL)


def describe(errors: list[Any]) -> str:
    """One readable sentence from pydantic's error list: ``field: problem; ...``."""
    parts = []
    for error in errors[:5]:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        msg = error.get("msg", "invalid").removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif error.get("type") == "missing":
            msg = "field required"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
