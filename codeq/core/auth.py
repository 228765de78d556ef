"""Who is calling: the principal a token validator returns, and the checks on it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from codeq.core.errors import Forbidden


class Role(StrEnum):
    PRODUCER = "producer"
    WORKER = "worker"


class Scope(StrEnum):
    CLAIM = "codeq:claim"
    HEARTBEAT = "codeq:heartbeat"
    ABANDON = "codeq:abandon"
    NACK = "codeq:nack"
    RESULT = "codeq:result"
    SUBSCRIBE = "codeq:subscribe"
    ADMIN = "codeq:admin"


WORKER_SCOPES = frozenset({Scope.CLAIM, Scope.HEARTBEAT, Scope.ABANDON, Scope.NACK,
                           Scope.RESULT, Scope.SUBSCRIBE})
ALL_EVENTS = "*"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. ``sub`` is the worker id that owns leases."""

    role: Role
    sub: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    event_types: tuple[str, ...] = ()
    worker_group: str | None = None
    admin: bool = False
    expires_at: float | None = None

    def allows_event(self, command: str) -> bool:
        return ALL_EVENTS in self.event_types or command in self.event_types

    def require_scope(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"token lacks scope {scope.value}", scope=scope.value)

    def require_events(self, commands: Iterable[str]) -> None:
        denied = [c for c in commands if not self.allows_event(c)]
        if denied:
            raise Forbidden(f"token does not allow event type(s) {', '.join(denied)}; "
                            f"allowed: {', '.join(self.event_types) or 'none'}")

    def claimable(self, requested: Sequence[str] | None) -> list[str] | None:
        """The commands a claim may take: ``requested`` (checked) or all of the token's.

        None means every command (the token allows ``*`` and no list was asked for).
        """
        if requested:
            self.require_events(requested)
            return list(dict.fromkeys(requested))
        if ALL_EVENTS in self.event_types:
            return None
        return list(self.event_types)


def producer_as_worker(principal: Principal) -> Principal:
    """``allowProducerAsWorker``: a producer acting with every worker scope on every event."""
    return Principal(role=Role.WORKER, sub=principal.sub, scopes=frozenset(WORKER_SCOPES),
                     event_types=(ALL_EVENTS,), admin=principal.admin,
                     expires_at=principal.expires_at)


class TokenValidator(Protocol):
    """Turns a bearer token into a ``Principal`` (see the ``register_token_validators`` hook)."""

    async def validate(self, token: str) -> Principal | None: ...
