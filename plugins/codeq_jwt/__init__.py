"""JWT worker and producer tokens, verified against JWKS; in dev mode, the local dev key too.

Which validator a JWT belongs to is decided from its unverified claims, then
that validator verifies it fully (docs/security.md, "Which validator"):

1. dev mode only: ``iss: codeq-dev`` -> the dev key (worker when ``aud`` holds
   ``workerAudience``, producer/admin otherwise);
2. ``aud`` holds ``workerAudience``, or ``iss`` is ``workerIssuer`` and producers
   cannot come from that issuer -> the worker validator (``workerJwksUrl``);
3. any other JWT -> the producer validator (``identityJwksUrl``, else
   ``<identityServiceUrl>/.well-known/jwks.json``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from codeq import devkeys, hookimpl
from codeq.core.auth import TokenValidator
from codeq.core.config import Settings
from codeq.core.errors import ConfigError
from codeq_jwt.jwks import KeySource, RemoteJwks, StaticKeys
from codeq_jwt.validator import (
    ALGORITHMS,
    Claims,
    JwtValidator,
    audiences,
    producer_principal,
    worker_principal,
)

__all__ = ["ALGORITHMS", "JwtValidator", "RemoteJwks", "StaticKeys", "build_validators",
           "producer_jwks_url"]

JWKS_PATH = "/.well-known/jwks.json"


def producer_jwks_url(settings: Settings) -> str | None:
    """``identityJwksUrl``, else the well-known JWKS of ``identityServiceUrl``."""
    if settings.identity_jwks_url:
        return settings.identity_jwks_url
    if settings.identity_service_url:
        return settings.identity_service_url.rstrip("/") + JWKS_PATH
    return None


def _is_worker_token(settings: Settings) -> Callable[[Claims], bool]:
    producer_issuer_differs = producer_jwks_url(settings) is None or (
        settings.identity_issuer is not None and settings.identity_issuer != settings.worker_issuer)
    dedicated_issuer = settings.worker_issuer if producer_issuer_differs else None

    def is_worker(claims: Claims) -> bool:
        return settings.worker_audience in audiences(claims) or (
            dedicated_issuer is not None and claims.get("iss") == dedicated_issuer)

    return is_worker


def build_validators(settings: Settings, *, min_refetch_seconds: float = 30.0,
                     clock: Callable[[], float] = time.monotonic) -> dict[str, JwtValidator]:
    """The validators these settings configure, in the order they are asked."""
    leeway = settings.allowed_clock_skew_seconds
    validators: dict[str, JwtValidator] = {}
    if settings.dev:
        try:
            key = devkeys.load_or_create(settings.data_path)
        except (OSError, ValueError) as exc:
            raise ConfigError("dataDir", f"cannot load or create the dev signing key: "
                                         f"{exc}") from None
        dev_keys = StaticKeys(key.jwks, f"dev key in {key.path}")

        def is_dev(claims: Claims) -> bool:
            return claims.get("iss") == devkeys.DEV_ISSUER

        validators["jwt-dev-worker"] = JwtValidator(
            kind="dev worker", keys=dev_keys, principal=worker_principal,
            mine=lambda c: is_dev(c) and settings.worker_audience in audiences(c),
            issuer=devkeys.DEV_ISSUER, audience=settings.worker_audience, leeway=leeway)
        validators["jwt-dev-producer"] = JwtValidator(
            kind="dev producer", keys=dev_keys, principal=producer_principal, mine=is_dev,
            issuer=devkeys.DEV_ISSUER, audience=devkeys.DEV_PRODUCER_AUDIENCE, leeway=leeway)

    remotes: dict[str, RemoteJwks] = {}

    def remote(url: str) -> KeySource:
        if url not in remotes:
            remotes[url] = RemoteJwks(url, min_refetch_seconds=min_refetch_seconds, clock=clock)
        return remotes[url]

    is_worker = _is_worker_token(settings)
    if settings.worker_jwks_url:
        validators["jwt-worker"] = JwtValidator(
            kind="worker", keys=remote(settings.worker_jwks_url), principal=worker_principal,
            mine=is_worker, issuer=settings.worker_issuer, audience=settings.worker_audience,
            leeway=leeway)
    producer_url = producer_jwks_url(settings)
    if producer_url:
        validators["jwt-producer"] = JwtValidator(
            kind="producer", keys=remote(producer_url), principal=producer_principal,
            mine=lambda c: not is_worker(c), issuer=settings.identity_issuer,
            audience=settings.identity_audience, leeway=leeway)
    return validators


@hookimpl
def register_token_validators(register: Callable[[str, TokenValidator], None],
                              settings: Settings) -> None:
    for name, validator in build_validators(settings).items():
        register(name, validator)
