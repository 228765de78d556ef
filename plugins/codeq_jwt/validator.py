"""One JWT validator: decide "mine?" from the unverified token, then verify it fully."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt

from codeq.core.auth import Principal, Role
from codeq.core.errors import Unauthenticated
from codeq_jwt.jwks import KeySource

#: Only asymmetric signatures: ``none`` and every HMAC (``HS*``) are refused, so a
#: public key can never be used as a shared secret.
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "ES256", "ES384", "ES512", "EdDSA"})

Claims = dict[str, Any]
#: ``mine(claims)`` on the unverified claims: is this token for this validator?
Mine = Callable[[Claims], bool]


def peek(token: str) -> tuple[dict[str, Any], Claims] | None:
    """The unverified header and claims, or None when ``token`` is not a JWT at all."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return header, claims


def audiences(claims: Claims) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _string_claim(claims: Claims, name: str, kind: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise Unauthenticated(f"{kind} token claim {name!r} must be a non-empty string")
    return value


def _scopes(claims: Claims, kind: str) -> frozenset[str]:
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise Unauthenticated(f"{kind} token claim 'scope' must be a space-separated string")
    return frozenset(scope.split())


def worker_principal(claims: Claims) -> Principal:
    """``sub``, ``eventTypes``, ``scope`` (required) and ``workerGroup`` (optional)."""
    for name in ("eventTypes", "scope"):
        if name not in claims:
            raise Unauthenticated(f"worker token is missing the {name!r} claim")
    events = claims["eventTypes"]
    if not isinstance(events, list) or not events or \
            not all(isinstance(e, str) and e for e in events):
        raise Unauthenticated("worker token claim 'eventTypes' must be a non-empty list of "
                              "command names (or '*')")
    group = claims.get("workerGroup")
    if group is not None and (not isinstance(group, str) or not group):
        raise Unauthenticated("worker token claim 'workerGroup' must be a non-empty string")
    return Principal(role=Role.WORKER, sub=_string_claim(claims, "sub", "worker"),
                     scopes=_scopes(claims, "worker"), event_types=tuple(events),
                     worker_group=group, expires_at=float(claims["exp"]))


def producer_principal(claims: Claims) -> Principal:
    """An admin when ``role`` is ``ADMIN`` or the scope holds ``codeq:admin``."""
    scopes = _scopes(claims, "producer")
    return Principal(role=Role.PRODUCER, sub=_string_claim(claims, "sub", "producer"),
                     scopes=scopes, admin=claims.get("role") == "ADMIN" or "codeq:admin" in scopes,
                     expires_at=float(claims["exp"]))


class JwtValidator:
    """Verifies the tokens ``mine`` picks out with keys from ``keys``.

    ``issuer`` and ``audience`` are checked when set; ``exp``, ``iat`` and ``sub``
    are always required, ``leeway`` seconds of clock skew are tolerated.
    """

    def __init__(self, *, kind: str, keys: KeySource, mine: Mine,
                 principal: Callable[[Claims], Principal], issuer: str | None = None,
                 audience: str | None = None, leeway: float = 60.0) -> None:
        self.kind = kind
        self.keys = keys
        self.mine = mine
        self.principal = principal
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    async def validate(self, token: str) -> Principal | None:
        peeked = peek(token)
        if peeked is None or not self.mine(peeked[1]):
            return None
        header, unverified = peeked
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Unauthenticated(f"{self.kind} token algorithm {alg!r} is not accepted; "
                                  f"use one of {', '.join(sorted(ALGORITHMS))}")
        # Refuse a foreign issuer or audience before looking for its key, so such
        # tokens never cause a JWKS refetch. (Acceptance still needs the full check.)
        if self.issuer is not None and unverified.get("iss") != self.issuer:
            raise Unauthenticated(self._reason(jwt.InvalidIssuerError(), unverified))
        if self.audience is not None and self.audience not in audiences(unverified):
            raise Unauthenticated(self._reason(jwt.InvalidAudienceError(), unverified))
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated(f"{self.kind} token header 'kid' must be a string")
        jwk = await self.keys.get(kid)
        if jwk.get("alg", alg) != alg:
            raise Unauthenticated(f"{self.kind} token algorithm {alg!r} does not match its "
                                  f"signing key (kid={kid!r}, alg {jwk['alg']!r})")
        try:
            key = jwt.get_algorithm_by_name(alg).from_jwk(jwk)
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            raise Unauthenticated(f"{self.kind} token signing key kid={kid!r} cannot be used "
                                  f"with algorithm {alg}") from None
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(self._reason(exc, unverified)) from None
        return self.principal(claims)

    async def aclose(self) -> None:
        """Close the key source's HTTP client (idempotent: sources may be shared)."""
        close = getattr(self.keys, "aclose", None)
        if close is not None:
            await close()

    def _reason(self, exc: jwt.PyJWTError, unverified: Claims) -> str:
        kind = self.kind
        if isinstance(exc, jwt.ExpiredSignatureError):
            return f"{kind} token has expired"
        if isinstance(exc, jwt.ImmatureSignatureError):
            return f"{kind} token is not valid yet ({exc})"
        if isinstance(exc, jwt.InvalidSignatureError):
            return f"{kind} token signature does not verify"
        if isinstance(exc, jwt.InvalidIssuerError):
            return (f"{kind} token issuer {unverified.get('iss')!r} is not the trusted issuer "
                    f"{self.issuer!r}")
        if isinstance(exc, jwt.InvalidAudienceError):
            return (f"{kind} token audience {unverified.get('aud')!r} does not include "
                    f"{self.audience!r}")
        if isinstance(exc, jwt.MissingRequiredClaimError):
            return f"{kind} token is missing the {exc.claim!r} claim"
        return f"invalid {kind} token: {exc}"
