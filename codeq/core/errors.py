"""Errors users can act on.

Every refusal in codeq is one of these, raised by the core (or a store) and
turned into an HTTP status in exactly one place (``codeq.server.errors``)::

    CodeqError                 500  something unexpected
     ├── ConfigError            -   bad configuration; startup stops
     ├── InvalidInput          400  the request names something wrong
     ├── Unauthenticated       401  no token, or a token that does not verify
     ├── Forbidden             403  valid token, but lacks scope / event type / ownership
     ├── NotFound              404  unknown task, result, subscription or artifact
     ├── Conflict              409  the task is not in a state that allows the call
     ├── PayloadTooLarge       413  request body over ``maxBodyBytes``
     └── StoreUnavailable      503  the store did not answer
"""

from __future__ import annotations

from typing import Any


class CodeqError(Exception):
    """Base of every codeq error; ``status`` is the HTTP status it maps to."""

    status = 500

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def to_body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


class ConfigError(CodeqError):
    """A configuration key has a bad value; ``key`` names it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"configuration key {key!r}: {reason}", key=key)
        self.key = key
        self.reason = reason


class InvalidInput(CodeqError):
    status = 400


class Unauthenticated(CodeqError):
    status = 401


class Forbidden(CodeqError):
    status = 403


class NotFound(CodeqError):
    status = 404


class Conflict(CodeqError):
    status = 409


class PayloadTooLarge(CodeqError):
    status = 413


class StoreUnavailable(CodeqError):
    status = 503
