"""Bearer tokens in, ``Principal`` out: the one place the server authenticates a request.

The validators come from the ``register_token_validators`` hook and are asked
in order: None means "not my kind of token", a ``Principal`` means verified,
``Unauthenticated`` means "mine, but invalid" (its message is passed on).
Verified principals are cached under the SHA-256 of the token until the
token expires, so a busy worker does not pay for a signature check on every
request. Only a principal a validator returned is ever cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from codeq.core.auth import Principal, Role, TokenValidator
from codeq.core.config import Settings
from codeq.core.errors import Unauthenticated
from codeq.plugins import token_validators

#: Bearer tokens longer than this are refused before any validator sees them.
MAX_TOKEN_LENGTH = 16 * 1024
DEFAULT_CACHE_SIZE = 10_000


class Authenticator:
    def __init__(self, validators: Sequence[TokenValidator], *, dev: bool = False,
                 cache_size: int = DEFAULT_CACHE_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        self.validators = list(validators)
        self.dev = dev
        self.cache_size = cache_size
        self.clock = clock
        self._cache: OrderedDict[bytes, Principal] = OrderedDict()

    async def authenticate(self, authorization: str | None, x_role: str | None = None
                           ) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` header, or ``Unauthenticated``.

        ``x_role`` is the ``X-Role`` header: in dev mode ``ADMIN`` makes a producer an
        admin (the CLI's ``--admin``); outside dev mode it is ignored.
        """
        principal = await self._verify(bearer_token(authorization))
        if self.dev and principal.role is Role.PRODUCER and not principal.admin \
                and (x_role or "").strip().upper() == "ADMIN":
            principal = dataclasses.replace(principal, admin=True)
        return principal

    async def _verify(self, token: str) -> Principal:
        key = hashlib.sha256(token.encode()).digest()
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None:
            if cached.expires_at is not None and cached.expires_at > now:
                self._cache.move_to_end(key)
                return cached
            del self._cache[key]
        if not self.validators:
            raise Unauthenticated("this server has no token validators configured")
        for validator in self.validators:
            principal = await validator.validate(token)
            if principal is not None:
                self._remember(key, principal, now)
                return principal
        raise Unauthenticated("token not recognised: it is neither a JWT this server trusts "
                              "(see docs/security.md) nor a configured static token")

    def _remember(self, key: bytes, principal: Principal, now: float) -> None:
        # Principals without an expiry (static tokens) are cheap to verify and not cached.
        if principal.expires_at is None or principal.expires_at <= now or self.cache_size <= 0:
            return
        self._cache[key] = principal
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def aclose(self) -> None:
        """Close what the validators hold open (JWKS HTTP clients)."""
        self._cache.clear()
        for validator in self.validators:
            close = getattr(validator, "aclose", None)
            if close is not None:
                await close()


def bearer_token(authorization: str | None) -> str:
    """The token in an ``Authorization`` value, or ``Unauthenticated`` saying what is wrong."""
    if not authorization or not authorization.strip():
        raise Unauthenticated("missing Authorization header; send 'Authorization: Bearer <token>'")
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    token = parts[1]
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated(f"bearer token longer than {MAX_TOKEN_LENGTH} characters")
    return token


def build_authenticator(settings: Settings) -> Authenticator:
    """The authenticator of a server with these settings (validators from the plugins)."""
    return Authenticator(token_validators(settings), dev=settings.dev)
