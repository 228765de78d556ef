"""JWT worker and producer tokens against a real JWKS served over HTTP on 127.0.0.1.

The key and server helpers at the top are shared by the other ``test_jwt*``
modules and by ``tests/api/test_auth_api.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from codeq_jwt import build_validators
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from codeq.core.auth import WORKER_SCOPES, Principal, Role
from codeq.core.config import Settings
from codeq.core.errors import Unauthenticated
from codeq.server.auth import Authenticator

WORKER_ISSUER = "https://workers.idp.test"
IDENTITY_ISSUER = "https://identity.idp.test"
IDENTITY_AUDIENCE = "codeq-api"
ALL_WORKER_SCOPES = " ".join(sorted(WORKER_SCOPES))


# -- helpers shared with the other auth tests --------------------------------------------
@dataclass
class SigningKey:
    """A real private key, its public JWK and a signer."""

    private: Any
    alg: str
    kid: str

    @classmethod
    def rsa(cls, kid: str = "rsa-1", alg: str = "RS256") -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), alg, kid)

    @classmethod
    def ec(cls, kid: str = "ec-1") -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), "ES256", kid)

    @classmethod
    def ed25519(cls, kid: str = "ed-1") -> SigningKey:
        return cls(ed25519.Ed25519PrivateKey.generate(), "EdDSA", kid)

    @property
    def jwk(self) -> dict[str, Any]:
        public = jwt.get_algorithm_by_name(self.alg).to_jwk(self.private.public_key(),
                                                             as_dict=True)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return pem

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg,
                          headers={"kid": self.kid, **headers})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], claims: dict[str, Any],
                   secret: bytes | None = None) -> str:
    """A hand-built JWT: no signature, or an HS256 MAC keyed with ``secret``."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = b"" if secret is None else hmac.new(secret, signing_input.encode(),
                                              hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving key sets by path; tests change them live."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, Any]] = {}
        self.status = 200
        self.requests: dict[str, int] = {}
        #: path -> where it redirects to (302)
        self.redirects: dict[str, str] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.base_url + server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(server.sets.get(self.path, {"keys": []})).encode()
                self.send_response(server.status if self.path in server.sets else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def serve(self, path: str, *keys: SigningKey) -> str:
        """Serve ``keys`` at ``path``; returns the URL."""
        self.sets[path] = {"keys": [k.jwk for k in keys]}
        return self.base_url + path

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.stop()


def worker_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": WORKER_ISSUER, "aud": "codeq-worker", "sub": "worker-7", "iat": now,
              "exp": now + 600, "eventTypes": ["RESIZE", "THUMB"], "scope": ALL_WORKER_SCOPES}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def producer_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": IDENTITY_ISSUER, "aud": IDENTITY_AUDIENCE, "sub": "billing-service",
              "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def prod_settings(server: JwksServer, worker_key: SigningKey, identity_key: SigningKey,
                  **extra: Any) -> Settings:
    return Settings(env="prod", webhook_hmac_secret="s3cret",
                    worker_jwks_url=server.serve("/worker/jwks.json", worker_key),
                    worker_issuer=WORKER_ISSUER,
                    identity_jwks_url=server.serve("/identity/jwks.json", identity_key),
                    identity_issuer=IDENTITY_ISSUER, identity_audience=IDENTITY_AUDIENCE,
                    **extra)


def authenticator(settings: Settings, *, min_refetch_seconds: float = 30.0,
                  clock: Callable[[], float] = time.monotonic) -> Authenticator:
    """An authenticator over the JWT validators alone, with an injectable JWKS refetch limit."""
    validators = build_validators(settings, min_refetch_seconds=min_refetch_seconds, clock=clock)
    return Authenticator(list(validators.values()), dev=settings.dev)


async def rejected(auth: Authenticator, token: str, x_role: str | None = None) -> str:
    with pytest.raises(Unauthenticated) as info:
        await auth.authenticate(f"Bearer {token}", x_role)
    return info.value.message


# -- fixtures of this module -------------------------------------------------------------
@pytest.fixture(scope="module")
def worker_key() -> SigningKey:
    return SigningKey.rsa("worker-rsa")


@pytest.fixture(scope="module")
def identity_key() -> SigningKey:
    return SigningKey.ec("identity-ec")


@pytest.fixture
async def auth(jwks_server: JwksServer, worker_key: SigningKey,
               identity_key: SigningKey) -> Any:
    a = authenticator(prod_settings(jwks_server, worker_key, identity_key))
    yield a
    await a.aclose()


# -- valid tokens ------------------------------------------------------------------------
@pytest.mark.parametrize("make_key", [SigningKey.rsa, SigningKey.ec, SigningKey.ed25519,
                                      lambda: SigningKey.rsa("ps", "PS384")],
                         ids=["RS256", "ES256", "EdDSA", "PS384"])
async def test_a_valid_worker_token_becomes_a_worker_principal(
        jwks_server: JwksServer, identity_key: SigningKey,
        make_key: Callable[[], SigningKey]) -> None:
    key = make_key()
    auth = authenticator(prod_settings(jwks_server, key, identity_key))
    claims = worker_claims(workerGroup="gpu", scope="codeq:claim codeq:result")
    principal = await auth.authenticate(f"Bearer {key.sign(claims)}", None)
    assert principal == Principal(role=Role.WORKER, sub="worker-7",
                                  scopes=frozenset({"codeq:claim", "codeq:result"}),
                                  event_types=("RESIZE", "THUMB"), worker_group="gpu",
                                  expires_at=float(claims["exp"]))
    await auth.aclose()


@pytest.mark.parametrize(("extra", "admin"), [
    ({}, False),
    ({"role": "ADMIN"}, True),
    ({"role": "admin"}, False),
    ({"scope": "tasks:write codeq:admin"}, True),
    ({"scope": "codeq:administrator"}, False),
])
async def test_a_valid_producer_token_and_when_it_is_an_admin(
        auth: Authenticator, identity_key: SigningKey, extra: dict[str, Any],
        admin: bool) -> None:
    principal = await auth.authenticate(f"Bearer {identity_key.sign(producer_claims(**extra))}",
                                        None)
    assert principal.role is Role.PRODUCER
    assert principal.sub == "billing-service"
    assert principal.admin is admin


async def test_an_audience_list_holding_the_worker_audience_is_a_worker_token(
        auth: Authenticator, worker_key: SigningKey) -> None:
    token = worker_key.sign(worker_claims(aud=["other-api", "codeq-worker"]))
    assert (await auth.authenticate(f"Bearer {token}", None)).role is Role.WORKER


async def test_expiry_within_the_allowed_clock_skew_is_accepted(
        auth: Authenticator, worker_key: SigningKey) -> None:
    now = int(time.time())
    token = worker_key.sign(worker_claims(iat=now - 600, exp=now - 30))  # skew is 60 s
    assert (await auth.authenticate(f"Bearer {token}", None)).sub == "worker-7"


# -- invalid tokens: all 401, each with its reason ---------------------------------------
async def test_wrong_issuer(auth: Authenticator, worker_key: SigningKey,
                            identity_key: SigningKey) -> None:
    message = await rejected(auth, worker_key.sign(worker_claims(iss="https://evil.test")))
    assert "worker token issuer 'https://evil.test' is not the trusted issuer" in message
    message = await rejected(auth, identity_key.sign(producer_claims(iss="https://evil.test")))
    assert "producer token issuer 'https://evil.test'" in message


async def test_wrong_audience(auth: Authenticator, worker_key: SigningKey,
                              identity_key: SigningKey, jwks_server: JwksServer) -> None:
    # From the (dedicated) worker issuer without the worker audience: still the worker's.
    message = await rejected(auth, worker_key.sign(worker_claims(aud="another-service")))
    assert "worker token audience 'another-service' does not include 'codeq-worker'" in message
    message = await rejected(auth, identity_key.sign(producer_claims(aud="another-service")))
    assert "producer token audience 'another-service' does not include 'codeq-api'" in message
    assert jwks_server.requests == {}  # refused before any key lookup


async def test_expired(auth: Authenticator, worker_key: SigningKey) -> None:
    now = int(time.time())
    token = worker_key.sign(worker_claims(iat=now - 3600, exp=now - 61))
    assert await rejected(auth, token) == "worker token has expired"


async def test_not_valid_yet(auth: Authenticator, identity_key: SigningKey) -> None:
    token = identity_key.sign(producer_claims(nbf=int(time.time()) + 600))
    assert "producer token is not valid yet" in await rejected(auth, token)


@pytest.mark.parametrize("claim", ["exp", "iat", "sub"])
async def test_missing_registered_claims(auth: Authenticator, worker_key: SigningKey,
                                         identity_key: SigningKey, claim: str) -> None:
    worker = await rejected(auth, worker_key.sign(worker_claims(**{claim: None})))
    assert worker == f"worker token is missing the {claim!r} claim"
    producer = await rejected(auth, identity_key.sign(producer_claims(**{claim: None})))
    assert producer == f"producer token is missing the {claim!r} claim"


@pytest.mark.parametrize(("claims", "reason"), [
    ({"eventTypes": None}, "worker token is missing the 'eventTypes' claim"),
    ({"scope": None}, "worker token is missing the 'scope' claim"),
    ({"eventTypes": "RESIZE"}, "'eventTypes' must be a non-empty list"),
    ({"eventTypes": []}, "'eventTypes' must be a non-empty list"),
    ({"eventTypes": ["RESIZE", 7]}, "'eventTypes' must be a non-empty list"),
    ({"eventTypes": ["RESIZE", ""]}, "'eventTypes' must be a non-empty list"),
    ({"scope": ["codeq:claim"]}, "'scope' must be a space-separated string"),
    ({"workerGroup": 3}, "'workerGroup' must be a non-empty string"),
    ({"sub": ""}, "'sub' must be a non-empty string"),
])
async def test_malformed_worker_claims(auth: Authenticator, worker_key: SigningKey,
                                       claims: dict[str, Any], reason: str) -> None:
    assert reason in await rejected(auth, worker_key.sign(worker_claims(**claims)))


async def test_alg_none_is_refused(auth: Authenticator, worker_key: SigningKey) -> None:
    token = unsigned_token({"alg": "none", "typ": "JWT", "kid": worker_key.kid}, worker_claims())
    assert "worker token algorithm 'none' is not accepted" in await rejected(auth, token)


@pytest.mark.parametrize("which", ["worker", "identity"])
async def test_hs256_signed_with_the_public_key_is_refused(
        auth: Authenticator, worker_key: SigningKey, identity_key: SigningKey,
        which: str) -> None:
    key, claims = ((worker_key, worker_claims()) if which == "worker"
                   else (identity_key, producer_claims()))
    token = unsigned_token({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims,
                           secret=key.public_pem)
    assert "algorithm 'HS256' is not accepted" in await rejected(auth, token)


async def test_a_forged_signature_is_refused(auth: Authenticator, worker_key: SigningKey) -> None:
    impostor = SigningKey.rsa(worker_key.kid)  # same kid, different key
    assert await rejected(auth, impostor.sign(worker_claims())) == \
        "worker token signature does not verify"


async def test_a_tampered_payload_is_refused(auth: Authenticator, worker_key: SigningKey) -> None:
    header, _, signature = worker_key.sign(worker_claims()).split(".")
    widened = b64(json.dumps(worker_claims(eventTypes=["*"])).encode())
    message = await rejected(auth, f"{header}.{widened}.{signature}")
    assert message == "worker token signature does not verify"


async def test_an_algorithm_that_does_not_match_the_key_is_refused(
        auth: Authenticator, worker_key: SigningKey) -> None:
    # The JWK says RS256; a token claiming PS256 under the same kid is refused.
    token = jwt.encode(worker_claims(), worker_key.private, algorithm="PS256",
                       headers={"kid": worker_key.kid})
    assert "algorithm 'PS256' does not match its signing key" in await rejected(auth, token)


async def test_a_token_signed_by_the_other_issuers_key_is_refused(
        auth: Authenticator, identity_key: SigningKey) -> None:
    # A worker-audience token signed with the producers' key: the worker JWKS lacks that kid.
    message = await rejected(auth, identity_key.sign(worker_claims()))
    assert "kid='identity-ec' is not in the JWKS at http://127.0.0.1" in message


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "Zm9v.YmFy.YmF6"])
async def test_something_that_is_not_a_jwt_is_not_recognised(auth: Authenticator,
                                                             token: str) -> None:
    assert (await rejected(auth, token)).startswith("token not recognised")


async def test_a_worker_token_is_refused_when_no_worker_jwks_is_configured(
        jwks_server: JwksServer, identity_key: SigningKey) -> None:
    auth = authenticator(Settings(env="prod",
                                  identity_jwks_url=jwks_server.serve("/id.json", identity_key)))
    message = await rejected(auth, identity_key.sign(worker_claims()))
    assert message.startswith("token not recognised")
    await auth.aclose()


async def test_an_unreachable_jwks_is_a_clear_401(
        jwks_server: JwksServer, worker_key: SigningKey, identity_key: SigningKey) -> None:
    auth = authenticator(prod_settings(jwks_server, worker_key, identity_key))
    jwks_server.status = 500
    message = await rejected(auth, worker_key.sign(worker_claims()))
    assert "the JWKS at http://127.0.0.1" in message and "could not be fetched (HTTP 500" in message
    await auth.aclose()
