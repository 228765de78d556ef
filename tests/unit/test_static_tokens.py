"""Static producer tokens: plain strings and {token, sub, admin} entries, from YAML and env."""

from __future__ import annotations

from pathlib import Path

import pytest
from codeq_static_tokens import StaticTokens

from codeq.core.auth import Role
from codeq.core.config import ProducerToken, Settings, load_settings
from codeq.core.errors import ConfigError, Unauthenticated
from codeq.server.auth import build_authenticator

PROD = {"CODEQ_ENV": "prod", "WORKER_JWKS_URL": "http://127.0.0.1:9/jwks.json",
        "WORKER_ISSUER": "https://idp.test", "WEBHOOK_HMAC_SECRET": "h"}


async def test_a_matching_token_is_a_producer_named_by_its_position() -> None:
    tokens = StaticTokens(["first-secret", "second-secret"])
    first = await tokens.validate("first-secret")
    second = await tokens.validate("second-secret")
    assert first is not None and second is not None
    assert (first.role, first.sub, first.admin) == (Role.PRODUCER, "static-token-1", False)
    assert second.sub == "static-token-2"
    assert first.expires_at is None


@pytest.mark.parametrize("token", ["first-secre", "first-secrett", "FIRST-SECRET", "",
                                   "first-secret "])
async def test_anything_else_is_not_ours(token: str) -> None:
    assert await StaticTokens(["first-secret"]).validate(token) is None


async def test_a_mapping_entry_names_the_producer_and_can_make_it_an_admin() -> None:
    tokens = StaticTokens(["plain", ProducerToken(token="ops-secret", sub="ops", admin=True),
                           ProducerToken(token="ci-secret", sub="ci")])
    ops = await tokens.validate("ops-secret")
    ci = await tokens.validate("ci-secret")
    assert ops is not None and (ops.sub, ops.admin) == ("ops", True)
    assert "codeq:admin" in ops.scopes
    assert ci is not None and (ci.sub, ci.admin) == ("ci", False)


def test_empty_and_repeated_tokens_stop_startup() -> None:
    with pytest.raises(ConfigError, match="entry 2 is an empty token"):
        StaticTokens(["a", ""])
    with pytest.raises(ConfigError, match="entry 2 repeats an earlier token"):
        StaticTokens(["a", ProducerToken(token="a", admin=True)])


async def test_yaml_mixes_plain_strings_and_admin_entries(tmp_path: Path) -> None:
    config = tmp_path / "codeq.yaml"
    config.write_text("producerTokens:\n"
                      "  - plain-secret\n"
                      "  - {token: admin-secret, sub: ops-team, admin: true}\n")
    settings = load_settings(config, environ=PROD)
    auth = build_authenticator(settings)
    plain = await auth.authenticate("Bearer plain-secret", None)
    admin = await auth.authenticate("Bearer admin-secret", None)
    assert (plain.sub, plain.admin) == ("static-token-1", False)
    assert (admin.sub, admin.admin) == ("ops-team", True)
    with pytest.raises(Unauthenticated, match="token not recognised"):
        await auth.authenticate("Bearer admin-secreT", None)
    await auth.aclose()


def test_a_bad_entry_in_yaml_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "codeq.yaml"
    config.write_text("producerTokens:\n  - {token: x, admn: true}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ=PROD)
    assert info.value.key == "producerTokens"


async def test_the_environment_gives_a_comma_separated_list() -> None:
    settings = load_settings(environ={**PROD, "PRODUCER_TOKENS": "one, two"})
    auth = build_authenticator(settings)
    assert (await auth.authenticate("Bearer two", None)).sub == "static-token-2"
    await auth.aclose()


def test_no_tokens_registers_no_validator(tmp_path: Path) -> None:
    auth = build_authenticator(Settings(env="prod", data_dir=tmp_path))
    assert auth.validators == []
