"""Request bodies of the HTTP API, validated here so every face shares the rules.

Field names are camelCase on the wire. Unknown fields are refused, so a typo
such as ``delay_seconds`` is reported instead of silently ignored.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from codeq.core.domain import COMMAND_PATTERN, MAX_PRIORITY, MIN_PRIORITY
from codeq.core.errors import InvalidInput

MAX_BATCH = 1000
MAX_DELAY_SECONDS = 10 * 365 * 86400
MAX_WAIT_SECONDS = 30


def check_command(value: str) -> str:
    if not COMMAND_PATTERN.match(value):
        raise ValueError("command names match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    return value


def check_task_id(value: str) -> str:
    """Task ids are UUIDs (RFC 9562) in their canonical lowercase form."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidInput(f"{value[:64]!r} is not a task id (a UUID)") from None
    if str(parsed) != value:
        raise InvalidInput(f"{value[:64]!r} is not a task id (a lowercase UUID)")
    return value


def check_http_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    return value


def _clamp_priority(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("priority must be an integer 0..9")
    if isinstance(value, int):
        return max(MIN_PRIORITY, min(MAX_PRIORITY, value))
    return value


Command = Annotated[str, AfterValidator(check_command)]
HttpUrl = Annotated[str, Field(max_length=2048), AfterValidator(check_http_url)]
Priority = Annotated[int, BeforeValidator(_clamp_priority)]


class Model(BaseModel):
    """camelCase on the wire only: ``delay_seconds`` is an unknown field, not an alias."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")


class BackoffOverride(Model):
    policy: str | None = None
    base_seconds: float | None = Field(None, ge=0, le=MAX_DELAY_SECONDS)
    max_seconds: float | None = Field(None, ge=0, le=MAX_DELAY_SECONDS)


class CreateTask(Model):
    command: Command
    payload: Any
    priority: Priority = 0
    max_attempts: int | None = Field(None, ge=1, le=10_000)
    webhook: HttpUrl | None = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=256)
    run_at: AwareDatetime | None = None
    delay_seconds: float | None = Field(None, ge=0, le=MAX_DELAY_SECONDS)
    backoff: BackoffOverride | None = None


class CreateBatch(Model):
    tasks: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class Claim(Model):
    commands: list[Command] | None = Field(None, max_length=256)
    lease_seconds: float | None = Field(None, gt=0)
    wait_seconds: float = Field(0, ge=0, le=MAX_WAIT_SECONDS)


class ClaimBatch(Claim):
    count: int = Field(1, ge=1, le=MAX_BATCH)


class Heartbeat(Model):
    extend_seconds: float | None = Field(None, gt=0)
    lease_id: str | None = None


class Abandon(Model):
    lease_id: str | None = None


class Nack(Model):
    delay_seconds: float | None = Field(None, ge=0, le=MAX_DELAY_SECONDS)
    reason: str | None = Field(None, max_length=8192)
    lease_id: str | None = None


class ArtifactIn(Model):
    name: str = Field(min_length=1, max_length=255)
    url: HttpUrl | None = None
    content_base64: str | None = None
    content_type: str | None = Field(None, max_length=255)


class SubmitResult(Model):
    status: Literal["COMPLETED", "FAILED"]
    result: Any = None
    error: str | None = Field(None, max_length=65536)
    artifacts: list[ArtifactIn] = Field(default_factory=list, max_length=100)
    lease_id: str | None = None


class BatchResultItem(SubmitResult):
    task_id: str


class BatchResults(Model):
    results: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class Redrive(Model):
    ids: list[str] | None = Field(None, max_length=10_000)
    limit: int = Field(1000, ge=1, le=100_000)


class Cleanup(Model):
    limit: int = Field(1000, ge=1, le=100_000)
    before: AwareDatetime | None = None
    command: Command | None = None


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
