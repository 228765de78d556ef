"""Settings come from file, then environment, then flags; bad values name their key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codeq.core.config import KEYS, env_names, load_settings
from codeq.core.errors import ConfigError

PROD = {
    "CODEQ_ENV": "prod",
    "WORKER_JWKS_URL": "https://id.example.test/jwks",
    "WORKER_ISSUER": "https://id.example.test",
    "PRODUCER_TOKENS": "a,b",
    "WEBHOOK_HMAC_SECRET": "s3cret",
}


def test_defaults_are_the_spec_defaults() -> None:
    s = load_settings(environ={})
    assert (s.port, s.env, s.log_level, s.timezone) == (8080, "dev", "info", "UTC")
    assert (s.default_lease_seconds, s.max_attempts_default, s.backoff_policy) == (
        300, 5, "exp_full_jitter")
    assert (s.backoff_base_seconds, s.backoff_max_seconds, s.retention_seconds) == (5, 900, 86400)
    assert s.worker_audience == "codeq-worker"
    assert s.max_body_bytes == 10 * 1024 * 1024
    assert s.requeue_inspect_limit == 200
    assert s.storage_url.startswith("sqlite:///") and s.storage_url.endswith("codeq.db")
    assert s.bind_host == "127.0.0.1"


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "codeq.yaml"
    config.write_text("port: 9000\nlogLevel: debug\nqueues:\n  EMAIL: {maxAttempts: 2}\n")
    s = load_settings(config, environ={"PORT": "9100"}, overrides={"logLevel": "error"})
    assert s.port == 9100  # environment beats the file
    assert s.log_level == "error"  # flags beat both
    assert s.max_attempts_for("EMAIL") == 2 and s.max_attempts_for("OTHER") == 5


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("defaultLeaseSeconds: 30\n")
    assert load_settings(environ={"CODEQ_CONFIG": str(config)}).default_lease_seconds == 30


def test_prefixed_environment_name_wins() -> None:
    s = load_settings(environ={"PORT": "9000", "CODEQ_PORT": "9001"})
    assert s.port == 9001


def test_generic_names_need_the_prefix() -> None:
    # ENV is the POSIX shell's start-up file; it must not switch codeq to prod.
    assert load_settings(environ={"ENV": "/etc/shrc", "HOST": "x"}).env == "dev"
    assert "ENV" not in env_names("env")


def test_legacy_redis_settings_make_a_redis_url() -> None:
    s = load_settings(environ={"REDIS_ADDR": "kv:6666", "KVROCKS_PASSWORD": "p@ss"})
    assert s.storage_url == "redis://:p%40ss@kv:6666"
    s = load_settings(environ={"REDIS_ADDR": "kv:6666", "CODEQ_STORAGE": "memory://"})
    assert s.storage_url == "memory://"


@pytest.mark.parametrize(
    ("environ", "key", "words"),
    [
        ({"PORT": "eighty"}, "port", "PORT"),
        ({"PORT": "70000"}, "port", "65535"),
        ({"LOG_LEVEL": "loud"}, "logLevel", "LOG_LEVEL"),
        ({"CODEQ_TIMEZONE": "Mars/Base"}, "timezone", "time zone"),
        ({"DEFAULT_LEASE_SECONDS": "-1"}, "defaultLeaseSeconds", "greater than 0"),
        ({"QUEUES": "{bad name!: {maxAttempts: 1}}"}, "queues", "command name"),
        ({"QUEUES": "{A: {maxAttempts: 0}}"}, "queues", "A.maxAttempts"),
    ],
)
def test_bad_values_name_the_key_and_where_it_came_from(environ: dict[str, str], key: str,
                                                        words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    assert info.value.key == key
    assert words in str(info.value)


def test_bad_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("port: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(config, environ={})
    config.write_text("prot: 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    assert info.value.key == "prot" and "unknown key" in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", environ={})


def test_production_needs_auth_and_signing_settings() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"CODEQ_ENV": "prod"})
    message = str(info.value)
    for name in ("workerJwksUrl", "workerIssuer", "producerTokens", "webhookHmacSecret"):
        assert name in message
    s = load_settings(environ=PROD)
    assert s.env == "prod" and s.producer_tokens == ["a", "b"] and s.bind_host == "0.0.0.0"


def test_every_key_has_an_environment_name() -> None:
    assert "defaultLeaseSeconds" in KEYS
    assert env_names("defaultLeaseSeconds") == ("CODEQ_DEFAULT_LEASE_SECONDS",
                                                "DEFAULT_LEASE_SECONDS")
    assert env_names("storage") == ("CODEQ_STORAGE",)
    assert env_names("redisPassword") == ("CODEQ_REDIS_PASSWORD", "REDIS_PASSWORD",
                                          "KVROCKS_PASSWORD", )


def test_every_key_is_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    missing = [key for key in KEYS if f"| `{key}` |" not in text]
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_producer_tokens_from_the_environment_as_a_list_of_entries() -> None:
    s = load_settings(environ={"PRODUCER_TOKENS": '[plain, {token: t2, sub: ops, admin: true}]'})
    plain, entry = s.producer_tokens
    assert plain == "plain"
    assert not isinstance(entry, str) and (entry.token, entry.sub, entry.admin) == ("t2", "ops", True)


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        # YAML reads these as booleans; pydantic took them as 1 / 1.0.
        ("port: yes\n", "port", "not a boolean"),
        ("defaultLeaseSeconds: on\n", "defaultLeaseSeconds", "not a boolean"),
        ("queues: {A: {maxAttempts: true}}\n", "queues", "not a boolean"),
        # .inf was accepted; a lease or retention of inf seconds breaks every timestamp.
        ("defaultLeaseSeconds: .inf\n", "defaultLeaseSeconds", "finite"),
        ("retentionSeconds: .inf\n", "retentionSeconds", "finite"),
        ("queues: {A: {leaseSeconds: .inf}}\n", "queues", "finite"),
        # Finite but past year 9999 when added to now: claims answered 500.
        ("maxLeaseSeconds: 1e308\n", "maxLeaseSeconds", "less than or equal"),
        ("maxAttemptsDefault: 100000000000000000000\n", "maxAttemptsDefault",
         "less than or equal"),
        # A path with a NUL, or an empty one (was the current directory).
        ('dataDir: "a\\0b"\n', "dataDir", "NUL"),
        ("dataDir: ''\n", "dataDir", "path is empty"),
        # The command NO (or ON, YES, 1e3 ...) is read as False: name the cause.
        ("queues: {NO: {maxAttempts: 2}}\n", "queues", "False is not text"),
        ("localArtifactsDir: ''\n", "localArtifactsDir", "path is empty"),
    ],
)
def test_values_pydantic_would_change_are_refused(tmp_path: Path, text: str, key: str,
                                                  words: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    assert info.value.key == key
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("port: 8080\nport: 9090\n", "duplicate key 'port'"),  # the last one silently won
        ("queues:\n  A: {maxAttempts: 2}\n  A: {maxAttempts: 3}\n", "duplicate key 'A'"),
        ("port: 010\n", "'010'"),  # YAML 1.1 octal: port 8
        ("webhookHmacSecret: 0123\n", "'0123'"),
        ("maxAttemptsDefault: 1:30\n", "'1:30'"),  # YAML 1.1 base 60: 90
    ],
)
def test_yaml_that_silently_changes_values_is_refused(tmp_path: Path, text: str,
                                                      words: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_settings(config, environ={})
    assert words in str(info.value)


def test_duplicate_keys_in_an_environment_value_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'A'"):
        load_settings(environ={"QUEUES": "{A: {maxAttempts: 2}, A: {maxAttempts: 3}}"})


def test_plain_numbers_and_booleans_still_load(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("port: 0\nmaxBodyBytes: 1_000\nbackoffBaseSeconds: 0.5\n"
                      "metricsEnabled: no\nallowProducerAsWorker: yes\n")
    s = load_settings(config, environ={})
    assert (s.port, s.max_body_bytes, s.backoff_base_seconds) == (0, 1000, 0.5)
    assert (s.metrics_enabled, s.allow_producer_as_worker) == (False, True)
    assert load_settings(environ={"PORT": "8081", "METRICS_ENABLED": "false"}).port == 8081


@pytest.mark.parametrize("tokens", [[""], ["two words"], ["ok-token", "tab\there"],
                                    [{"token": "new\nline"}], [{"token": " lead"}]])
def test_producer_tokens_no_client_could_send_are_refused_without_showing_them(
        tokens: list[Any]) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={}, overrides={"producerTokens": tokens})
    assert raised.value.key == "producerTokens"
    assert "Authorization: Bearer" in raised.value.message
    for entry in tokens:
        token = entry if isinstance(entry, str) else entry["token"]
        assert not token.strip() or token.strip() not in raised.value.message
