"""JWKS caching: fetched once, refetched (rate limited) for an unknown kid, rotation picked up."""

from __future__ import annotations

import jwt
import pytest
from codeq_jwt import producer_jwks_url

from codeq.core.auth import Role
from codeq.core.config import Settings, load_settings
from tests.unit import test_jwt
from tests.unit.test_jwt import (
    JwksServer,
    SigningKey,
    authenticator,
    prod_settings,
    producer_claims,
    rejected,
    worker_claims,
)

WORKER_PATH = "/worker/jwks.json"
jwks_server = test_jwt.jwks_server  # the fixture


class Clock:
    """The JWKS cache's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key_a() -> SigningKey:
    return SigningKey.ec("key-a")


@pytest.fixture(scope="module")
def key_b() -> SigningKey:
    return SigningKey.rsa("key-b")


@pytest.fixture(scope="module")
def identity_key() -> SigningKey:
    return SigningKey.ec("identity")


async def test_the_jwks_is_fetched_once_and_cached(
        jwks_server: JwksServer, key_a: SigningKey, identity_key: SigningKey) -> None:
    auth = authenticator(prod_settings(jwks_server, key_a, identity_key))
    for sub in ("w1", "w2", "w3"):  # different tokens: no principal-cache hits
        assert (await auth.authenticate(f"Bearer {key_a.sign(worker_claims(sub=sub))}",
                                        None)).sub == sub
    assert jwks_server.requests == {WORKER_PATH: 1}
    await auth.aclose()


async def test_an_unknown_kid_triggers_one_rate_limited_refetch_then_401(
        jwks_server: JwksServer, key_a: SigningKey, identity_key: SigningKey) -> None:
    clock = Clock()
    auth = authenticator(prod_settings(jwks_server, key_a, identity_key),
                         min_refetch_seconds=30, clock=clock)
    await auth.authenticate(f"Bearer {key_a.sign(worker_claims())}", None)
    stranger = SigningKey.ec("never-published")
    clock.now += 31
    message = await rejected(auth, stranger.sign(worker_claims()))
    assert "kid='never-published' is not in the JWKS" in message
    assert jwks_server.requests[WORKER_PATH] == 2  # refetched once to look for it
    for sub in ("a", "b", "c"):  # a flood of unknown kids inside the interval: no refetch
        await rejected(auth, stranger.sign(worker_claims(sub=sub)))
    assert jwks_server.requests[WORKER_PATH] == 2
    await auth.aclose()


async def test_key_rotation_is_picked_up(
        jwks_server: JwksServer, key_a: SigningKey, key_b: SigningKey,
        identity_key: SigningKey) -> None:
    clock = Clock()
    auth = authenticator(prod_settings(jwks_server, key_a, identity_key),
                         min_refetch_seconds=30, clock=clock)
    await auth.authenticate(f"Bearer {key_a.sign(worker_claims())}", None)
    jwks_server.serve(WORKER_PATH, key_b)  # the identity provider rotates to key B
    new_token = key_b.sign(worker_claims(sub="after-rotation"))
    clock.now += 5  # too soon after the last fetch: the rate limit holds
    assert "kid='key-b' is not in the JWKS" in await rejected(auth, new_token)
    clock.now += 30
    principal = await auth.authenticate(f"Bearer {new_token}", None)
    assert principal.sub == "after-rotation" and principal.role is Role.WORKER
    assert jwks_server.requests[WORKER_PATH] == 2
    # Key A is gone from the set: tokens it signs stop verifying once nothing caches them.
    assert "kid='key-a' is not in the JWKS" in await rejected(
        auth, key_a.sign(worker_claims(sub="old-key")))
    await auth.aclose()


async def test_an_old_key_set_is_refreshed_after_max_age(
        jwks_server: JwksServer, key_a: SigningKey, key_b: SigningKey,
        identity_key: SigningKey) -> None:
    clock = Clock()
    auth = authenticator(prod_settings(jwks_server, key_a, identity_key), clock=clock)
    await auth.authenticate(f"Bearer {key_a.sign(worker_claims())}", None)
    jwks_server.serve(WORKER_PATH, key_b)  # key A revoked
    clock.now += 601
    assert "kid='key-a' is not in the JWKS" in await rejected(
        auth, key_a.sign(worker_claims(sub="revoked")))
    await auth.aclose()


async def test_the_last_good_key_set_survives_a_failing_refetch(
        jwks_server: JwksServer, key_a: SigningKey, identity_key: SigningKey) -> None:
    clock = Clock()
    auth = authenticator(prod_settings(jwks_server, key_a, identity_key), clock=clock)
    await auth.authenticate(f"Bearer {key_a.sign(worker_claims())}", None)
    jwks_server.status = 503
    clock.now += 601  # stale: a refetch is attempted and fails
    principal = await auth.authenticate(f"Bearer {key_a.sign(worker_claims(sub='x'))}", None)
    assert principal.sub == "x"
    assert jwks_server.requests[WORKER_PATH] == 2
    # A failed attempt counts for the rate limit too: a flood while the IdP is down
    # does not make one request each.
    for sub in ("y", "z"):
        assert (await auth.authenticate(f"Bearer {key_a.sign(worker_claims(sub=sub))}",
                                        None)).sub == sub
    assert jwks_server.requests[WORKER_PATH] == 2
    await auth.aclose()


async def test_a_token_without_kid_is_accepted_only_from_a_one_key_set(
        jwks_server: JwksServer, key_a: SigningKey, key_b: SigningKey,
        identity_key: SigningKey) -> None:
    auth = authenticator(prod_settings(jwks_server, key_a, identity_key))
    no_kid = jwt.encode(worker_claims(), key_a.private, algorithm=key_a.alg)
    assert (await auth.authenticate(f"Bearer {no_kid}", None)).role is Role.WORKER
    await auth.aclose()
    auth = authenticator(prod_settings(jwks_server, key_a, identity_key))
    jwks_server.serve(WORKER_PATH, key_a, key_b)
    assert "has no 'kid' header and the JWKS" in await rejected(auth, no_kid)
    await auth.aclose()


async def test_one_jwks_url_for_workers_and_producers_is_fetched_once(
        jwks_server: JwksServer, key_a: SigningKey) -> None:
    url = jwks_server.serve("/shared.json", key_a)
    settings = Settings(env="prod", worker_jwks_url=url, worker_issuer="https://idp.test",
                        identity_jwks_url=url, identity_issuer="https://idp.test")
    auth = authenticator(settings)
    worker = await auth.authenticate(
        f"Bearer {key_a.sign(worker_claims(iss='https://idp.test'))}", None)
    producer = await auth.authenticate(
        f"Bearer {key_a.sign(producer_claims(iss='https://idp.test', aud='anything'))}", None)
    assert (worker.role, producer.role) == (Role.WORKER, Role.PRODUCER)
    assert jwks_server.requests == {"/shared.json": 1}
    await auth.aclose()


async def test_identity_service_url_serves_the_producer_jwks_at_the_well_known_path(
        jwks_server: JwksServer, identity_key: SigningKey) -> None:
    jwks_server.serve("/idp/.well-known/jwks.json", identity_key)
    settings = Settings(env="prod", identity_service_url=jwks_server.base_url + "/idp/")
    auth = authenticator(settings)
    principal = await auth.authenticate(f"Bearer {identity_key.sign(producer_claims())}", None)
    assert principal.role is Role.PRODUCER
    assert jwks_server.requests == {"/idp/.well-known/jwks.json": 1}
    await auth.aclose()


def test_identity_service_url_alone_satisfies_the_production_check() -> None:
    settings = load_settings(environ={
        "CODEQ_ENV": "prod", "WORKER_JWKS_URL": "https://idp.test/jwks.json",
        "WORKER_ISSUER": "https://idp.test", "WEBHOOK_HMAC_SECRET": "h",
        "IDENTITY_SERVICE_URL": "https://identity.test"})
    assert producer_jwks_url(settings) == "https://identity.test/.well-known/jwks.json"


async def test_messages_never_show_credentials_of_the_jwks_url(
        jwks_server: JwksServer, key_a: SigningKey) -> None:
    jwks_server.serve("/creds.json", key_a)
    jwks_server.status = 500
    url = jwks_server.base_url.replace("http://", "http://reader:pa55word@") + \
        "/creds.json?access_token=t0ken"
    auth = authenticator(Settings(env="prod", worker_jwks_url=url, worker_issuer="https://idp.test"))
    message = await rejected(auth, key_a.sign(worker_claims(iss="https://idp.test")))
    assert f"the JWKS at {jwks_server.base_url}/creds.json could not be fetched" in message
    assert "pa55word" not in message and "t0ken" not in message
    await auth.aclose()


async def test_a_key_published_for_encryption_does_not_verify_tokens(
        jwks_server: JwksServer, key_a: SigningKey, identity_key: SigningKey) -> None:
    settings = prod_settings(jwks_server, key_a, identity_key)
    jwks_server.sets[WORKER_PATH] = {"keys": [{**key_a.jwk, "use": "enc"}]}
    auth = authenticator(settings)
    message = await rejected(auth, key_a.sign(worker_claims()))
    assert "kid='key-a' is not in the JWKS" in message
    await auth.aclose()


async def test_a_jwks_larger_than_the_limit_is_not_used(
        jwks_server: JwksServer, key_a: SigningKey, identity_key: SigningKey) -> None:
    settings = prod_settings(jwks_server, key_a, identity_key)
    padding = [{"kty": "oct", "kid": f"pad-{i}", "k": "x" * 1000} for i in range(1100)]
    jwks_server.sets[WORKER_PATH] = {"keys": [key_a.jwk, *padding]}  # over 1 MiB
    auth = authenticator(settings)
    message = await rejected(auth, key_a.sign(worker_claims()))
    assert "larger than" in message, message
    await auth.aclose()


async def test_a_jwks_url_that_redirects_is_not_followed(
        jwks_server: JwksServer, key_a: SigningKey, identity_key: SigningKey) -> None:
    settings = prod_settings(jwks_server, key_a, identity_key)
    jwks_server.serve("/elsewhere/jwks.json", key_a)
    jwks_server.redirects[WORKER_PATH] = "/elsewhere/jwks.json"
    auth = authenticator(settings)
    await rejected(auth, key_a.sign(worker_claims()))
    assert jwks_server.requests.get("/elsewhere/jwks.json", 0) == 0
    await auth.aclose()
