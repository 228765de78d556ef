"""What route handlers receive: the caller (``Principal``) and the app's services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from codeq.core.auth import Principal
from codeq.core.config import Settings
from codeq.core.errors import InvalidInput
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


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


async def known_query(request: Request) -> None:
    """Refuse a query parameter the route does not take, or one given twice: a typo such as
    ``?stauts=FAILED`` would otherwise list every task, and of ``?status=A&status=B`` only
    one would count (the query's counterpart of the bodies' unknown-field rule)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in known:
            takes = ", ".join(sorted(known)) if known else "none"
            raise InvalidInput(f"unknown query parameter {name[:64]!r} (this route takes: "
                               f"{takes})")
        if name in seen:
            raise InvalidInput(f"query parameter {name!r} is given more than once")
        seen.add(name)
