"""Errors raised by the SDK, one class per HTTP status the server uses::

    ApiError                   any failed call; ``status`` and the server's ``message``
     ├── ConnectionFailed      None  the server could not be reached (refused, reset, timeout)
     ├── InvalidRequest        None  the arguments cannot be sent at all (also a ValueError)
     ├── BadRequest            400   invalid input
     ├── Unauthorized          401   no token, or a token the server does not accept
     ├── Forbidden             403   the token lacks a scope, an event type or ownership
     ├── NotFound              404   unknown task, result, subscription or artifact
     ├── Conflict              409   the task is not in a state that allows the call
     ├── PayloadTooLarge       413   the body is over the server's ``maxBodyBytes``
     ├── ServiceUnavailable    503   the server's store did not answer
     └── ServerError           other 5xx (and unexpected statuses)
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A call that did not succeed. ``message`` is the server's ``error`` text."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None,
                 body: dict[str, Any] | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.body = body or {}
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status else self.message


class ConnectionFailed(ApiError):
    """No HTTP answer: connection refused or reset, DNS failure, timeout."""


class InvalidRequest(ApiError, ValueError):
    """Arguments no request can carry (NaN or Infinity in JSON, lone surrogates, a token
    with control characters, an empty id); raised before anything is sent."""


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class ServiceUnavailable(ApiError):
    status = 503


class ServerError(ApiError):
    status = 500


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 503: ServiceUnavailable,
}


def error_for(status: int, body: Any, request_id: str | None) -> ApiError:
    """The exception for an HTTP error answer, carrying the server's message."""
    data = body if isinstance(body, dict) else {}
    message = str(data.get("error") or f"HTTP {status} without an error message")
    cls = BY_STATUS.get(status, ServerError)
    return cls(message, status=status, body=data, request_id=request_id)


#: Errors worth retrying: the server may answer differently in a moment.
TRANSIENT = (ConnectionFailed, ServiceUnavailable, ServerError)
