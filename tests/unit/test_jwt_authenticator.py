"""The Authenticator: the Authorization header, the validator chain, the cache, dev mode."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from codeq.core.auth import Role
from codeq.core.config import Settings
from codeq.core.errors import Unauthenticated
from codeq.devkeys import mint_token
from codeq.server.auth import MAX_TOKEN_LENGTH, Authenticator, build_authenticator
from tests.unit import test_jwt
from tests.unit.test_jwt import JwksServer, SigningKey, prod_settings, rejected, worker_claims

jwks_server = test_jwt.jwks_server  # the fixture


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def worker_key() -> SigningKey:
    return SigningKey.ec("w")


@pytest.fixture(scope="module")
def identity_key() -> SigningKey:
    return SigningKey.ec("i")


@pytest.fixture
async def dev_auth(tmp_path: Path) -> Any:
    auth = build_authenticator(Settings(data_dir=tmp_path))
    yield auth
    await auth.aclose()


# -- the header --------------------------------------------------------------------------
@pytest.mark.parametrize(("header", "reason"), [
    (None, "missing Authorization header; send 'Authorization: Bearer <token>'"),
    ("", "missing Authorization header; send 'Authorization: Bearer <token>'"),
    ("   ", "missing Authorization header; send 'Authorization: Bearer <token>'"),
    ("Basic dXNlcjpwdw==", "the Authorization header must be 'Bearer <token>'"),
    ("Bearer", "the Authorization header must be 'Bearer <token>'"),
    ("Bearer a b", "the Authorization header must be 'Bearer <token>'"),
    ("tokenwithoutscheme", "the Authorization header must be 'Bearer <token>'"),
    ("Bearer " + "x" * (MAX_TOKEN_LENGTH + 1), f"longer than {MAX_TOKEN_LENGTH} characters"),
])
async def test_a_bad_authorization_header_is_a_clear_401(
        dev_auth: Authenticator, header: str | None, reason: str) -> None:
    with pytest.raises(Unauthenticated) as info:
        await dev_auth.authenticate(header, None)
    assert reason in info.value.message
    assert info.value.status == 401


async def test_the_scheme_is_case_insensitive(dev_auth: Authenticator, tmp_path: Path) -> None:
    principal = await dev_auth.authenticate(f"bearer  {mint_token(tmp_path, 'producer')}", None)
    assert principal.role is Role.PRODUCER


async def test_a_server_without_validators_says_so() -> None:
    with pytest.raises(Unauthenticated, match="no token validators configured"):
        await Authenticator([]).authenticate("Bearer abc", None)


# -- the chain ---------------------------------------------------------------------------
async def test_jwt_and_static_validators_are_chained_from_the_plugins(
        jwks_server: JwksServer, worker_key: SigningKey, identity_key: SigningKey) -> None:
    settings = prod_settings(jwks_server, worker_key, identity_key,
                             producer_tokens=["opaque-producer-secret"])
    auth = build_authenticator(settings)
    worker = await auth.authenticate(f"Bearer {worker_key.sign(worker_claims())}", None)
    static = await auth.authenticate("Bearer opaque-producer-secret", None)
    assert (worker.role, static.role, static.sub) == (Role.WORKER, Role.PRODUCER,
                                                      "static-token-1")
    assert (await rejected(auth, "opaque-producer-secreT")).startswith("token not recognised")
    await auth.aclose()


async def test_dev_tokens_are_not_trusted_outside_dev_mode(
        tmp_path: Path, jwks_server: JwksServer, worker_key: SigningKey,
        identity_key: SigningKey) -> None:
    auth = build_authenticator(prod_settings(jwks_server, worker_key, identity_key,
                                             data_dir=tmp_path))
    producer = await rejected(auth, mint_token(tmp_path, "admin"))
    assert "producer token issuer 'codeq-dev' is not the trusted issuer" in producer
    worker = await rejected(auth, mint_token(tmp_path, "worker"))
    assert "worker token issuer 'codeq-dev' is not the trusted issuer" in worker
    assert jwks_server.requests == {}  # refused before any key lookup
    await auth.aclose()


async def test_a_dev_token_from_another_data_dir_is_refused(
        dev_auth: Authenticator, tmp_path: Path) -> None:
    message = await rejected(dev_auth, mint_token(tmp_path / "elsewhere", "worker"))
    assert "is not the dev key in" in message


async def test_a_dev_token_with_a_foreign_audience_is_refused(
        dev_auth: Authenticator, tmp_path: Path) -> None:
    message = await rejected(dev_auth, mint_token(tmp_path, "producer", audience="other"))
    assert message == "dev producer token audience 'other' does not include 'codeq'"


async def test_dev_worker_tokens_follow_a_custom_worker_audience(tmp_path: Path) -> None:
    auth = build_authenticator(Settings(data_dir=tmp_path, worker_audience="my-workers"))
    token = mint_token(tmp_path, "worker", audience="my-workers")
    assert (await auth.authenticate(f"Bearer {token}", None)).role is Role.WORKER
    await auth.aclose()


# -- dev mode X-Role ---------------------------------------------------------------------
@pytest.mark.parametrize(("x_role", "admin"), [(None, False), ("ADMIN", True), ("admin", True),
                                               ("WORKER", False), ("", False)])
async def test_x_role_admin_makes_a_producer_an_admin_in_dev(
        dev_auth: Authenticator, tmp_path: Path, x_role: str | None, admin: bool) -> None:
    token = mint_token(tmp_path, "producer")
    assert (await dev_auth.authenticate(f"Bearer {token}", x_role)).admin is admin


async def test_x_role_does_not_stick_to_the_cached_principal(
        dev_auth: Authenticator, tmp_path: Path) -> None:
    token = mint_token(tmp_path, "producer")
    assert (await dev_auth.authenticate(f"Bearer {token}", "ADMIN")).admin
    assert not (await dev_auth.authenticate(f"Bearer {token}", None)).admin


async def test_x_role_does_not_make_a_worker_an_admin(dev_auth: Authenticator,
                                                      tmp_path: Path) -> None:
    token = mint_token(tmp_path, "worker")
    principal = await dev_auth.authenticate(f"Bearer {token}", "ADMIN")
    assert principal.role is Role.WORKER and not principal.admin


async def test_x_role_is_ignored_outside_dev_mode(jwks_server: JwksServer,
                                                  worker_key: SigningKey,
                                                  identity_key: SigningKey) -> None:
    settings = prod_settings(jwks_server, worker_key, identity_key, producer_tokens=["p-token"])
    auth = build_authenticator(settings)
    assert not (await auth.authenticate("Bearer p-token", "ADMIN")).admin
    await auth.aclose()


# -- the principal cache -----------------------------------------------------------------
async def test_a_verified_token_is_served_from_the_cache(dev_auth: Authenticator,
                                                         tmp_path: Path) -> None:
    token = mint_token(tmp_path, "worker")
    first = await dev_auth.authenticate(f"Bearer {token}", None)
    assert await dev_auth.authenticate(f"Bearer {token}", None) is first


async def test_the_cache_never_answers_for_a_token_that_was_not_verified(
        dev_auth: Authenticator, tmp_path: Path) -> None:
    token = mint_token(tmp_path, "worker", events=("RESIZE",))
    await dev_auth.authenticate(f"Bearer {token}", None)  # cached now
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert "signature does not verify" in await rejected(
        dev_auth, f"{header}.{payload}.{flipped}")
    other = mint_token(tmp_path / "attacker", "worker", events=("*",))
    forged = f"{header}.{other.split('.')[1]}.{signature}"  # widened claims, old signature
    assert "signature does not verify" in await rejected(dev_auth, forged)
    # A refused token is never remembered: it is refused again for the same reason.
    assert "signature does not verify" in await rejected(dev_auth, forged)


async def test_a_cached_principal_is_dropped_when_its_token_expires(tmp_path: Path) -> None:
    clock = Clock()
    settings = Settings(data_dir=tmp_path)
    auth = Authenticator(build_authenticator(settings).validators, dev=True, clock=clock)
    token = mint_token(tmp_path, "producer", ttl=600)
    first = await auth.authenticate(f"Bearer {token}", None)
    clock.now += 300
    assert await auth.authenticate(f"Bearer {token}", None) is first
    clock.now += 301  # past exp: verified afresh (the validators' own clock still accepts it)
    again = await auth.authenticate(f"Bearer {token}", None)
    assert again == first and again is not first


async def test_the_cache_is_bounded(tmp_path: Path) -> None:
    auth = Authenticator(build_authenticator(Settings(data_dir=tmp_path)).validators, dev=True,
                         cache_size=2)
    tokens = [mint_token(tmp_path, "worker", sub=f"w{n}") for n in range(3)]
    principals = [await auth.authenticate(f"Bearer {t}", None) for t in tokens]
    assert await auth.authenticate(f"Bearer {tokens[2]}", None) is principals[2]
    assert await auth.authenticate(f"Bearer {tokens[1]}", None) is principals[1]
    evicted = await auth.authenticate(f"Bearer {tokens[0]}", None)  # the oldest went
    assert evicted == principals[0] and evicted is not principals[0]
