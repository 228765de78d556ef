"""Static producer tokens (``producerTokens``): opaque shared secrets, compared in constant time.

An entry is either a plain string (a producer named ``static-token-<n>``, ``n``
counting from 1 in list order) or a mapping ``{token, sub?, admin?}`` that
names the producer and may make it an admin.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from codeq import hookimpl
from codeq.core.auth import Principal, Role, Scope, TokenValidator
from codeq.core.config import ProducerToken, Settings
from codeq.core.errors import ConfigError


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison time independent of
    # the length of the configured tokens too.
    return hashlib.sha256(token.encode()).digest()


class StaticTokens:
    def __init__(self, entries: Sequence[str | ProducerToken]) -> None:
        self._entries: list[tuple[bytes, Principal]] = []
        for n, entry in enumerate(entries, start=1):
            if isinstance(entry, str):
                if not entry:
                    raise ConfigError("producerTokens", f"entry {n} is an empty token")
                entry = ProducerToken(token=entry)
            digest = _digest(entry.token)
            if any(digest == known for known, _ in self._entries):
                raise ConfigError("producerTokens", f"entry {n} repeats an earlier token")
            principal = Principal(role=Role.PRODUCER, sub=entry.sub or f"static-token-{n}",
                                  admin=entry.admin,
                                  scopes=frozenset({Scope.ADMIN.value}) if entry.admin
                                  else frozenset())
            self._entries.append((digest, principal))

    async def validate(self, token: str) -> Principal | None:
        """The principal of a configured token; None for any other token (not ours)."""
        candidate = _digest(token)
        found = None
        for digest, principal in self._entries:  # no early exit: every entry is compared
            if hmac.compare_digest(candidate, digest):
                found = principal
        return found


@hookimpl
def register_token_validators(register: Callable[[str, TokenValidator], None],
                              settings: Settings) -> None:
    if settings.producer_tokens:
        register("static-tokens", StaticTokens(settings.producer_tokens))
