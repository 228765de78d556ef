"""Authentication and authorization through a real ``codeq serve``: the statuses users see.

A prod-mode server trusts a real JWKS served on 127.0.0.1 by this test
process (worker and producer keys) plus static producer tokens; a dev-mode
server trusts its dev key and honours ``X-Role: ADMIN``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from codeq.testing.server import ServerProcess
from tests.unit.test_jwt import (
    IDENTITY_AUDIENCE,
    IDENTITY_ISSUER,
    WORKER_ISSUER,
    JwksServer,
    SigningKey,
    producer_claims,
    unsigned_token,
    worker_claims,
)

STATIC = "static-producer-secret-0123456789"
STATIC_ADMIN = "static-admin-secret-0123456789"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {"worker": SigningKey.rsa("worker-rsa"), "identity": SigningKey.ec("identity-ec")}


@pytest.fixture(scope="module")
def idp(keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer()
    server.serve("/worker/jwks.json", keys["worker"])
    server.serve("/identity/jwks.json", keys["identity"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory, idp: JwksServer) -> Iterator[httpx.Client]:
    config = {
        "env": "prod",
        "workerJwksUrl": f"{idp.base_url}/worker/jwks.json",
        "workerIssuer": WORKER_ISSUER,
        "identityJwksUrl": f"{idp.base_url}/identity/jwks.json",
        "identityIssuer": IDENTITY_ISSUER,
        "identityAudience": IDENTITY_AUDIENCE,
        "producerTokens": [STATIC, {"token": STATIC_ADMIN, "sub": "ops", "admin": True}],
        "webhookHmacSecret": "webhook-secret",
    }
    with ServerProcess.start(tmp_path_factory.mktemp("prod"), storage="memory://",
                             config=config) as server, \
            httpx.Client(base_url=server.api_url, timeout=30.0) as http:
        yield http


def call(http: httpx.Client, method: str, path: str, token: str | None = None,
         json: Any = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http.request(method, path, json=json, headers=headers)


def claim(http: httpx.Client, token: str, **body: Any) -> httpx.Response:
    return call(http, "POST", "/tasks/claim", token, json=body)


def assert_error(response: httpx.Response, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    assert text in response.json()["error"]


# -- 200s --------------------------------------------------------------------------------
def test_valid_worker_and_producer_tokens_are_accepted(
        prod: httpx.Client, keys: dict[str, SigningKey]) -> None:
    producer = keys["identity"].sign(producer_claims())
    created = call(prod, "POST", "/tasks", producer, json={"command": "AUTH_OK", "payload": 1})
    assert created.status_code == 202, created.text
    worker = keys["worker"].sign(worker_claims(eventTypes=["AUTH_OK"]))
    claimed = claim(prod, worker)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["workerId"] == "worker-7"


def test_static_tokens(prod: httpx.Client) -> None:
    created = call(prod, "POST", "/tasks", STATIC, json={"command": "AUTH_STATIC", "payload": 1})
    assert created.status_code == 202, created.text
    assert_error(call(prod, "POST", "/tasks", STATIC + "x",
                      json={"command": "AUTH_STATIC", "payload": 1}), 401, "not recognised")
    assert_error(call(prod, "GET", "/admin/queues", STATIC), 403, "needs an admin token")
    assert call(prod, "GET", "/admin/queues", STATIC_ADMIN).status_code == 200


def test_producer_admin_by_role_claim(prod: httpx.Client, keys: dict[str, SigningKey]) -> None:
    admin = keys["identity"].sign(producer_claims(role="ADMIN"))
    assert call(prod, "GET", "/admin/queues", admin).status_code == 200


# -- 401s --------------------------------------------------------------------------------
def test_missing_or_malformed_authorization(prod: httpx.Client) -> None:
    assert_error(call(prod, "GET", "/tasks"), 401, "missing Authorization header")
    assert_error(call(prod, "GET", "/tasks", Authorization="Basic dTpw"), 401,
                 "must be 'Bearer <token>'")


@pytest.mark.parametrize(("claims", "reason"), [
    ({"iss": "https://evil.test"}, "issuer 'https://evil.test' is not the trusted issuer"),
    ({"aud": "other"}, "audience 'other' does not include 'codeq-worker'"),
    ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "has expired"),
    ({"exp": None}, "missing the 'exp' claim"),
    ({"eventTypes": None}, "missing the 'eventTypes' claim"),
    ({"scope": None}, "missing the 'scope' claim"),
], ids=["wrong-issuer", "wrong-audience", "expired", "no-exp", "no-eventTypes", "no-scope"])
def test_invalid_worker_tokens_are_401(prod: httpx.Client, keys: dict[str, SigningKey],
                                       claims: dict[str, Any], reason: str) -> None:
    assert_error(claim(prod, keys["worker"].sign(worker_claims(**claims))), 401, reason)


def test_alg_none_hs256_and_unknown_kid_are_401(prod: httpx.Client,
                                               keys: dict[str, SigningKey]) -> None:
    worker = keys["worker"]
    none = unsigned_token({"alg": "none", "kid": worker.kid}, worker_claims())
    assert_error(claim(prod, none), 401, "algorithm 'none' is not accepted")
    hs256 = unsigned_token({"alg": "HS256", "kid": worker.kid}, worker_claims(),
                           secret=worker.public_pem)
    assert_error(claim(prod, hs256), 401, "algorithm 'HS256' is not accepted")
    stranger = SigningKey.ec("not-published").sign(worker_claims())
    assert_error(claim(prod, stranger), 401, "kid='not-published' is not in the JWKS")


def test_a_wrong_producer_audience_is_401(prod: httpx.Client, keys: dict[str, SigningKey]) -> None:
    token = keys["identity"].sign(producer_claims(aud="someone-else"))
    assert_error(call(prod, "GET", "/tasks", token), 401,
                 "audience 'someone-else' does not include 'codeq-api'")


# -- 403s --------------------------------------------------------------------------------
def test_missing_scope_and_foreign_event_types_are_403(
        prod: httpx.Client, keys: dict[str, SigningKey]) -> None:
    no_claim = keys["worker"].sign(worker_claims(scope="codeq:heartbeat"))
    assert_error(claim(prod, no_claim), 403, "token lacks scope codeq:claim")
    resize_only = keys["worker"].sign(worker_claims(eventTypes=["RESIZE"]))
    assert_error(claim(prod, resize_only, commands=["ENCODE"]), 403,
                 "does not allow event type(s) ENCODE")


def test_x_role_is_ignored_outside_dev(prod: httpx.Client, keys: dict[str, SigningKey]) -> None:
    producer = keys["identity"].sign(producer_claims())
    assert_error(call(prod, "GET", "/admin/queues", producer, **{"X-Role": "ADMIN"}), 403,
                 "needs an admin token")


def test_roles_are_kept_apart(prod: httpx.Client, keys: dict[str, SigningKey]) -> None:
    worker = keys["worker"].sign(worker_claims())
    assert_error(call(prod, "POST", "/tasks", worker, json={"command": "A", "payload": 1}), 403,
                 "needs a producer token")
    assert_error(claim(prod, STATIC), 403, "needs a worker token")


# -- dev mode ----------------------------------------------------------------------------
def test_dev_mode_trusts_its_key_and_honours_x_role(tmp_path: Path) -> None:
    with ServerProcess.start(tmp_path / "dev", storage="memory://") as server, \
            httpx.Client(base_url=server.api_url, timeout=30.0) as http:
        producer = server.token("producer")
        assert_error(call(http, "GET", "/admin/queues", producer), 403, "needs an admin token")
        assert call(http, "GET", "/admin/queues", producer, **{"X-Role": "ADMIN"}
                    ).status_code == 200
        assert call(http, "GET", "/admin/queues", server.token("admin")).status_code == 200
        assert claim(http, server.token("worker")).status_code == 204
        foreign = SigningKey.ec().sign({**worker_claims(), "iss": "codeq-dev"})
        assert_error(claim(http, foreign), 401, "is not the dev key")
