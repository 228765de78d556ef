"""The web dashboard at ``/ui``: static files shipped in this package, nothing else.

A built-in plugin that uses only the public ``register_routes`` hook. The page
is hand-written HTML, CSS and vanilla JavaScript (no CDN, no build step) that
talks to the public HTTP API with the admin token the operator gives it;
the server side only hands out files, plus one convenience for dev mode:

- ``GET /ui`` redirects to ``/ui/`` (relative, so a path prefix added by a
  reverse proxy survives), ``GET /ui/`` is the page, ``GET /ui/assets/<file>``
  its CSS and JavaScript;
- ``GET /ui/dev-token`` answers ``{"token", "role", "expiresIn"}`` with a fresh
  admin token signed by the dev key, only when the server runs in dev mode and
  the request comes straight from the loopback interface to a loopback host
  name; 404 otherwise. Any local process that can reach the port gets an admin
  token this way, which is what dev mode is for (one developer's machine); it
  is why the route refuses everything that is not plainly local, and why a
  shared host should not run ``env: dev`` (docs/dashboard.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codeq import hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from codeq.core.config import Settings


@hookimpl
def register_routes(router: APIRouter, settings: Settings) -> None:
    # Imported here: the command line loads every plugin, and needs none of the web stack.
    from codeq_dashboard.routes import build_router

    router.include_router(build_router(settings))
