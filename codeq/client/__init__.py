"""The Python SDK: ``Client`` / ``AsyncClient`` over the HTTP API, and webhook signatures."""

from codeq.client.errors import (
                                 ApiError,
                                 BadRequest,
                                 Conflict,
                                 ConnectionFailed,
                                 Forbidden,
                                 InvalidRequest,
                                 NotFound,
                                 PayloadTooLarge,
                                 ServerError,
                                 ServiceUnavailable,
                                 Unauthorized,
)
from codeq.client.http import AsyncClient, Client, ClientConfig
from codeq.client.signature import verify_signature

__all__ = ["ApiError", "AsyncClient", "BadRequest", "Client", "ClientConfig", "Conflict",
           "ConnectionFailed", "Forbidden", "InvalidRequest", "NotFound", "PayloadTooLarge",
           "ServerError", "ServiceUnavailable", "Unauthorized", "verify_signature"]
