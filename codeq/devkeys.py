"""The dev-mode signing key: created once in the data directory, trusted by a dev server.

``codeq serve`` in ``env: dev`` and ``codeq auth dev-token`` share one EC
P-256 key kept in ``<dataDir>/dev-signing-key.pem`` (mode 0600). Whoever
comes first creates it; the file appears atomically (a hard link of a fully
written temporary file, which fails rather than overwrites), so two processes
starting at once end up with the same key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from codeq.core.auth import ALL_EVENTS, WORKER_SCOPES

KEY_FILE = "dev-signing-key.pem"
ALGORITHM = "ES256"
#: ``iss`` of every dev token; a dev server trusts this issuer only with the dev key.
DEV_ISSUER = "codeq-dev"
#: ``aud`` of dev producer and admin tokens.
DEV_PRODUCER_AUDIENCE = "codeq"
#: ``aud`` of dev worker tokens: the default ``workerAudience``.
DEV_WORKER_AUDIENCE = "codeq-worker"

DevRole = Literal["producer", "worker", "admin"]


@dataclass(frozen=True)
class DevKey:
    private_key: ec.EllipticCurvePrivateKey
    path: Path

    @cached_property
    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    @cached_property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of the public key: stable for as long as the file lives."""
        jwk = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        members = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")},
                             separators=(",", ":"), sort_keys=True)
        digest = hashlib.sha256(members.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM,
                          headers={"kid": self.kid})


def load_or_create(data_dir: Path) -> DevKey:
    """The dev key in ``data_dir``, created (0600, atomically) when there is none yet."""
    data_dir = Path(data_dir)
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".dev-key-")  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race: use its key
        finally:
            os.unlink(tmp)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path} does not hold an EC P-256 private key; delete it to get a "
                         "new dev key")
    return DevKey(private_key=key, path=path)


def mint_token(data_dir: Path, role: DevRole, *, sub: str | None = None,
               events: tuple[str, ...] | list[str] = (ALL_EVENTS,), ttl: int = 3600,
               scopes: list[str] | tuple[str, ...] | None = None,
               worker_group: str | None = None, audience: str | None = None) -> str:
    """A token signed with the dev key of ``data_dir`` (created when missing).

    ``worker``: every worker scope unless ``scopes`` says otherwise, ``eventTypes``
    from ``events``, audience ``codeq-worker`` (pass ``audience`` when the server's
    ``workerAudience`` differs). ``producer``: audience ``codeq``. ``admin``: a
    producer token with ``role: ADMIN``. ``events`` and ``worker_group`` only
    apply to worker tokens.
    """
    if role not in ("producer", "worker", "admin"):
        raise ValueError(f"role must be producer, worker or admin, not {role!r}")
    now = int(time.time())
    claims: dict[str, Any] = {"iss": DEV_ISSUER, "sub": sub or f"dev-{role}", "iat": now,
                              "exp": now + int(ttl)}
    if role == "worker":
        claims["aud"] = audience or DEV_WORKER_AUDIENCE
        claims["eventTypes"] = list(events)
        claims["scope"] = " ".join(sorted(WORKER_SCOPES) if scopes is None else scopes)
        if worker_group:
            claims["workerGroup"] = worker_group
    else:
        claims["aud"] = audience or DEV_PRODUCER_AUDIENCE
        if scopes:
            claims["scope"] = " ".join(scopes)
        if role == "admin":
            claims["role"] = "ADMIN"
    return load_or_create(data_dir).sign(claims)
