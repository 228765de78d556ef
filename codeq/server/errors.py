"""Every error becomes ``{"error": message, ...}`` with its status, here and only here.

- ``CodeqError`` (the core's tree): its ``status`` and ``to_body()``;
- request validation (FastAPI) and malformed JSON: 400 with a readable sentence;
- unknown route / wrong method (Starlette): 404 / 405;
- a store that does not answer (``StoreUnavailable``, connection errors): 503;
- anything else: 500 ``{"error": "internal error", "requestId"}``, logged with its
  traceback by ``RequestContextMiddleware``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from codeq.core.errors import CodeqError, StoreUnavailable
from codeq.core.models import describe
from codeq.server.responses import JSON

log = logging.getLogger("codeq.server")
_WHERE = {"body", "query", "path", "header"}


def validation_message(errors: list[Any]) -> str:
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            return f"request body is not valid JSON: {reason}".rstrip(": ")
    for error in errors:
        if tuple(error.get("loc", ())) != ("body",):
            continue
        if error.get("type") == "missing":
            return "request body required (a JSON object)"
        if error.get("type") in ("model_attributes_type", "dict_type"):
            hint = (" sent as Content-Type: application/json"
                    if isinstance(error.get("input"), bytes) else "")
            return f"request body must be a JSON object{hint}"
    trimmed = [{**e, "loc": tuple(e.get("loc", ()))[1:]} if e.get("loc") and e["loc"][0] in _WHERE
               else e for e in errors]
    return describe(trimmed) or "invalid request"


async def codeq_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CodeqError)
    if isinstance(exc, StoreUnavailable):
        log.warning("store unavailable: %s", exc.message)
    elif exc.status >= 500:
        log.error("%s: %s", type(exc).__name__, exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSON(exc.to_body(), status_code=exc.status, headers=headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSON({"error": validation_message(list(exc.errors()))}, status_code=400)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    elif exc.status_code == 400 and "parsing the body" in str(exc.detail):
        message = "request body could not be read as JSON"
    else:
        message = str(exc.detail)
    return JSON({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def store_connection_error(request: Request, exc: Exception) -> Response:
    log.warning("store connection failed: %s: %s", type(exc).__name__, exc)
    return JSON({"error": f"the store did not answer ({type(exc).__name__}); try again"},
                status_code=503)


def install(app: FastAPI) -> None:
    app.add_exception_handler(CodeqError, codeq_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ConnectionError, store_connection_error)
    app.add_exception_handler(TimeoutError, store_connection_error)
