"""One typed configuration object: YAML file, then environment, then flags.

Keys keep the SPEC's camelCase names in YAML and UPPER_SNAKE names in the
environment (``defaultLeaseSeconds`` <- ``DEFAULT_LEASE_SECONDS``); every key
may also be given as ``CODEQ_<UPPER_SNAKE>``, which wins over the bare name.
This module is the only place that reads the environment for the server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from codeq.core.errors import ConfigError

#: Environment names that do not follow the UPPER_SNAKE rule.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "storage": ("CODEQ_STORAGE",),
    "redisPassword": ("REDIS_PASSWORD", "KVROCKS_PASSWORD"),
}
#: Bare names too generic to trust (``ENV`` is the POSIX shell's start-up file):
#: these keys are read only with the ``CODEQ_`` prefix.
PREFIX_ONLY = frozenset({"env", "host", "timezone", "storage", "dataDir"})
CONFIG_ENV = "CODEQ_CONFIG"
#: Upper bound of every duration setting, as of the API's delays
#: (``codeq.core.models.MAX_DELAY_SECONDS``): a time this far ahead is still a date.
MAX_SECONDS = 10 * 365 * 86400
#: Upper bound of attempt counts, as of the API's ``maxAttempts``.
MAX_ATTEMPTS = 10_000


class _Loader(yaml.SafeLoader):
    """YAML without the pitfalls that silently change a value: a key given twice (the
    last one won), and YAML 1.1 integers that do not mean what they look like (``010``
    is 8 in octal, ``1:30`` is 90 in base 60)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, (str, int, float, bool)):
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(node.value).replace("_", "").lstrip("+-")
        if ":" in text or (len(text) > 1 and text[0] == "0" and text[1] not in "xXbB"):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is read as a base-60 or octal number by YAML; "
                "write it without leading zeros or colons, or quote it as a string",
                node.start_mark)
        value: int = super().construct_yaml_int(node)  # type: ignore[no-untyped-call]
        return value


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader


def _numeric(annotation: Any) -> bool:
    return annotation in (int, float) or any(a in (int, float) for a in get_args(annotation))


def _plain_value(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """What pydantic would otherwise take and change: a boolean as a number (YAML reads
    yes/no/on/off/true/false as booleans, so ``port: yes`` was port 1), an empty path (the
    current directory), text with a NUL (no file name or URL can hold one)."""
    annotation = model.model_fields[info.field_name].annotation if info.field_name else None
    if isinstance(value, bool) and _numeric(annotation):
        raise ValueError("a number is needed, not a boolean (YAML reads yes, no, on, off, "
                         "true and false as booleans)")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("the value holds a NUL character")
    if value == "" and Path in get_args(annotation):
        raise ValueError("the path is empty")
    return value


class QueueConfig(BaseModel):
    """Per-command overrides (``queues: {CMD: {...}}``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              allow_inf_nan=False)

    max_attempts: int | None = Field(None, ge=1, le=MAX_ATTEMPTS)
    backoff_policy: str | None = None
    backoff_base_seconds: float | None = Field(None, ge=0, le=MAX_SECONDS)
    backoff_max_seconds: float | None = Field(None, ge=0, le=MAX_SECONDS)
    lease_seconds: float | None = Field(None, gt=0, le=MAX_SECONDS)

    @field_validator("*", mode="before")
    @classmethod
    def _plain(cls, value: Any, info: ValidationInfo) -> Any:
        return _plain_value(cls, value, info)


class ProducerToken(BaseModel):
    """A ``producerTokens`` entry written as a mapping: a static token with a name and rights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=1)
    sub: str | None = None
    admin: bool = False


class Settings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True, allow_inf_nan=False)

    port: int = Field(8080, ge=0, le=65535)
    host: str | None = None
    env: Literal["dev", "prod"] = "dev"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "text"
    timezone: str = "UTC"
    storage: str | None = None
    redis_addr: str | None = None
    redis_password: str | None = None
    data_dir: Path | None = None
    default_lease_seconds: float = Field(300, gt=0, le=MAX_SECONDS)
    max_lease_seconds: float = Field(3600, gt=0, le=MAX_SECONDS)
    requeue_inspect_limit: int = Field(200, ge=1)
    max_attempts_default: int = Field(5, ge=1, le=MAX_ATTEMPTS)
    backoff_policy: str = "exp_full_jitter"
    backoff_base_seconds: float = Field(5, ge=0, le=MAX_SECONDS)
    backoff_max_seconds: float = Field(900, ge=0, le=MAX_SECONDS)
    retention_seconds: float = Field(86400, ge=0, le=MAX_SECONDS)
    queues: dict[str, QueueConfig] = Field(default_factory=dict)
    identity_service_url: str | None = None
    identity_jwks_url: str | None = None
    identity_issuer: str | None = None
    identity_audience: str | None = None
    producer_tokens: list[str | ProducerToken] = Field(default_factory=list)
    worker_jwks_url: str | None = None
    worker_issuer: str | None = None
    worker_audience: str = "codeq-worker"
    allowed_clock_skew_seconds: float = Field(60, ge=0, le=MAX_SECONDS)
    allow_producer_as_worker: bool = False
    webhook_hmac_secret: str | None = None
    webhook_allow_private_networks: bool = False
    subscription_min_interval_seconds: float = Field(5, ge=0, le=MAX_SECONDS)
    subscription_cleanup_interval_seconds: float = Field(60, gt=0, le=MAX_SECONDS)
    result_webhook_max_attempts: int = Field(5, ge=1, le=MAX_ATTEMPTS)
    result_webhook_base_backoff_seconds: float = Field(2, ge=0, le=MAX_SECONDS)
    result_webhook_max_backoff_seconds: float = Field(60, ge=0, le=MAX_SECONDS)
    local_artifacts_dir: Path | None = None
    artifact_store: str = "local"
    max_artifact_bytes: int = Field(5 * 1024 * 1024, ge=1)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1)
    metrics_enabled: bool = True

    @field_validator("*", mode="before")
    @classmethod
    def _plain(cls, value: Any, info: ValidationInfo) -> Any:
        return _plain_value(cls, value, info)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as UTC or "
                             "Europe/Berlin)") from None
        return value

    @field_validator("producer_tokens", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("producer_tokens")
    @classmethod
    def _sendable(cls, value: list[str | ProducerToken]) -> list[str | ProducerToken]:
        """A token no client could send (empty, with a space or a control character) would
        sit in the configuration and never let anyone in."""
        for i, entry in enumerate(value):
            token = entry if isinstance(entry, str) else entry.token
            if not token or not token.isprintable() or any(c.isspace() for c in token):
                raise ValueError(f"entry {i} is empty or holds a space or control character, "
                                 "so no client could send it as 'Authorization: Bearer <token>'")
        return value

    @field_validator("queues", mode="before")
    @classmethod
    def _text_queue_names(cls, value: Any) -> Any:
        for name in value if isinstance(value, dict) else ():
            if not isinstance(name, str):  # pydantic reports ValueError, not TypeError
                raise ValueError(f"the command name {name!r} is not text (YAML reads unquoted "  # noqa: TRY004
                                 "yes, no, on, off, true, false and numbers as such); quote it")
        return value

    @field_validator("queues")
    @classmethod
    def _queue_names(cls, value: dict[str, QueueConfig]) -> dict[str, QueueConfig]:
        from codeq.core.domain import COMMAND_PATTERN

        for name in value:
            if not COMMAND_PATTERN.match(name):
                raise ValueError(f"{name!r} is not a valid command name")
        return value

    # -- derived values ----------------------------------------------------
    @property
    def dev(self) -> bool:
        return self.env == "dev"

    @property
    def tz(self) -> tzinfo:
        """The zone of rendered times; UTC as ``timezone.utc``, which renders several times
        faster than ``ZoneInfo("UTC")`` and gives the same text."""
        return UTC if self.timezone == "UTC" else ZoneInfo(self.timezone)

    @property
    def bind_host(self) -> str:
        """Dev mode binds to loopback unless told otherwise."""
        return self.host or ("127.0.0.1" if self.dev else "0.0.0.0")

    @property
    def data_path(self) -> Path:
        return self.data_dir or default_data_dir()

    @property
    def storage_url(self) -> str:
        """``storage``, else the legacy ``redisAddr``, else the SQLite file in ``dataDir``."""
        if self.storage:
            return self.storage
        if self.redis_addr:
            auth = f":{quote(self.redis_password, safe='')}@" if self.redis_password else ""
            return f"redis://{auth}{self.redis_addr}"
        return f"sqlite:///{self.data_path / 'codeq.db'}"

    @property
    def artifacts_path(self) -> Path:
        return self.local_artifacts_dir or self.data_path / "artifacts"

    def queue(self, command: str) -> QueueConfig:
        return self.queues.get(command) or QueueConfig()

    def max_attempts_for(self, command: str) -> int:
        return self.queue(command).max_attempts or self.max_attempts_default

    def lease_seconds_for(self, command: str) -> float:
        return self.queue(command).lease_seconds or self.default_lease_seconds

    def missing_for_production(self) -> list[str]:
        """Settings that must be present outside dev mode and are not."""
        missing = []
        if not self.worker_jwks_url:
            missing.append("workerJwksUrl (WORKER_JWKS_URL)")
        if not self.worker_issuer:
            missing.append("workerIssuer (WORKER_ISSUER)")
        if not (self.identity_jwks_url or self.identity_service_url or self.producer_tokens):
            missing.append("identityJwksUrl (IDENTITY_JWKS_URL), identityServiceUrl "
                           "(IDENTITY_SERVICE_URL) or producerTokens (PRODUCER_TOKENS)")
        if not self.webhook_hmac_secret:
            missing.append("webhookHmacSecret (WEBHOOK_HMAC_SECRET)")
        return missing


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "codeq"


def env_name(key: str) -> str:
    """``defaultLeaseSeconds`` -> ``DEFAULT_LEASE_SECONDS``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()


KEYS: tuple[str, ...] = tuple(f.alias or name for name, f in Settings.model_fields.items())


def env_names(key: str) -> tuple[str, ...]:
    """Environment variables for ``key``, strongest first."""
    upper = env_name(key)
    names = [f"CODEQ_{upper}", *ENV_ALIASES.get(key, ())]
    if key not in PREFIX_ONLY:
        names.append(upper)
    return tuple(dict.fromkeys(names))


def _from_environment(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    values: dict[str, tuple[Any, str]] = {}
    for key in KEYS:
        for name in env_names(key):
            if name in environ and environ[name] != "":
                raw = environ[name]
                # Structured values: queues always; producerTokens when written as a
                # YAML/JSON list (to carry {token, sub, admin} entries).
                if key == "queues" or (key == "producerTokens" and raw.lstrip().startswith("[")):
                    try:
                        raw = _load_yaml(raw)
                    except yaml.YAMLError as exc:
                        raise ConfigError(key, f"environment variable {name} is not valid "
                                               f"YAML/JSON: {exc}") from None
                values[key] = (raw, f"environment variable {name}")
                break
    return values


def _from_file(path: Path) -> dict[str, tuple[Any, str]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError("config", f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a mapping of keys to values")
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise ConfigError(str(unknown[0]), f"unknown key in {path} (known keys: "
                                           f"{', '.join(KEYS)})")
    return {key: (value, f"file {path}") for key, value in data.items()}


def load_settings(config_file: str | Path | None = None, *,
                  environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build the settings from file -> environment -> ``overrides`` (flags); later wins.

    ``overrides`` use the camelCase keys; None values are ignored. Raises
    ``ConfigError`` naming the key, where it came from and what is wrong.
    """
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(CONFIG_ENV) or None
    layers: dict[str, tuple[Any, str]] = {}
    if config_file:
        layers.update(_from_file(Path(config_file)))
    layers.update(_from_environment(environ))
    for key, value in (overrides or {}).items():
        if value is not None:
            if key not in KEYS:
                raise ConfigError(key, "unknown key")
            layers[key] = (value, "command line")
    try:
        settings = Settings.model_validate({k: v for k, (v, _) in layers.items()})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "config"
        source = layers.get(key, (None, "defaults"))[1]
        where = ".".join(str(p) for p in error["loc"])
        raise ConfigError(key, f"{error['msg']} (at {where}, from {source})") from None
    if not settings.dev:
        missing = settings.missing_for_production()
        if missing:
            raise ConfigError(missing[0].split(" ")[0], "env is prod, and these settings are "
                              "missing: " + "; ".join(missing))
    return settings


#: Carries resolved settings from ``codeq serve`` to its server worker processes.
SETTINGS_ENV = "CODEQ_SETTINGS_JSON"


def settings_environment(settings: Settings) -> dict[str, str]:
    """Environment entries that hand ``settings`` to child processes (``inherited_settings``)."""
    return {SETTINGS_ENV: settings.model_dump_json(by_alias=True)}


def inherited_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings a parent process resolved and passed down with ``settings_environment``."""
    environ = os.environ if environ is None else environ
    raw = environ.get(SETTINGS_ENV)
    if not raw:
        raise ConfigError(SETTINGS_ENV, "not set; this process must be started by codeq serve")
    try:
        return Settings.model_validate_json(raw)
    except ValidationError as exc:
        raise ConfigError(SETTINGS_ENV, f"does not hold valid settings: {exc}") from None
