"""What route handlers receive: the caller (``Principal``) and the app's services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from codeq.core.auth import Principal
from codeq.core.config import Settings
from codeq.core.scheduler import Scheduler
from codeq.core.subscriptions import Subscriptions
from codeq.server.auth import Authenticator

#: Declared for the OpenAPI document (``/docs`` "Authorize"); the authenticator
#: reads the raw header itself so that it can say what is wrong with it.
_bearer = HTTPBearer(auto_error=False, description="a producer, worker or admin token")


@dataclass(frozen=True, slots=True)
class Services:
    """Built by the lifespan, kept on ``app.state.services``."""

    settings: Settings
    scheduler: Scheduler
    subscriptions: Subscriptions
    authenticator: Authenticator
    tz: tzinfo


async def services(request: Request) -> Services:
    # async: FastAPI would run a plain function in a thread pool, on every request.
    found: Services = request.app.state.services
    return found


async def principal(request: Request,
                    _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
                    ) -> Principal:
    """The verified caller; ``Unauthenticated`` (401) when the token is missing or invalid."""
    authenticator: Authenticator = request.app.state.authenticator
    return await authenticator.authenticate(request.headers.get("authorization"),
                                            request.headers.get("x-role"))


Caller = Annotated[Principal, Depends(principal)]
Svc = Annotated[Services, Depends(services)]
