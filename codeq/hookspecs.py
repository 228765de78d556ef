"""Every hook a codeq plugin can implement.

Hooks are plain (synchronous) functions called once at start-up; the objects
they register have async methods where they do I/O. A plugin module needs only
``from codeq import hookimpl``. Registering a name twice fails start-up and
names both plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from codeq.core.artifacts import ArtifactStore
    from codeq.core.auth import TokenValidator
    from codeq.core.backoff import BackoffPolicy
    from codeq.core.config import Settings
    from codeq.core.storage import Storage

hookspec = pluggy.HookspecMarker("codeq")
hookimpl = pluggy.HookimplMarker("codeq")

#: ``factory(url, settings) -> Storage`` for the URL schemes it was registered with.
StorageFactory = Callable[[str, "Settings"], "Storage"]
#: ``factory(settings) -> ArtifactStore``.
ArtifactStoreFactory = Callable[["Settings"], "ArtifactStore"]


@hookspec
def register_storage_backends(register: Callable[[str, StorageFactory], None]) -> None:
    """Offer storage backends by URL scheme.

    Called once when the plugin manager starts. Call ``register(scheme,
    factory)`` for each scheme (``"sqlite"``, ``"redis"``, ...); the factory
    gets the whole storage URL and the settings and returns an unopened
    ``codeq.core.storage.Storage``. Every call counts; a scheme registered by
    two plugins stops start-up.
    """


@hookspec
def register_token_validators(register: Callable[[str, TokenValidator], None],
                              settings: Settings) -> None:
    """Offer bearer-token validators.

    Called once per server start with the settings. Call ``register(name,
    validator)``; a validator's ``async validate(token)`` returns a
    ``codeq.core.auth.Principal`` for a token it recognises and has verified,
    None for a token that is not its kind (the next validator is asked), and
    raises ``codeq.core.errors.Unauthenticated`` for a token that is its kind
    but invalid (expired, bad signature). Validators are asked in the order
    they were registered. Register nothing when the settings do not configure
    you.
    """


@hookspec
def register_backoff_policies(register: Callable[[str, BackoffPolicy], None]) -> None:
    """Offer retry-delay policies by name.

    Call ``register(name, policy)``; ``policy(attempts, base_seconds,
    max_seconds, rng) -> seconds`` must be pure apart from ``rng`` (a
    ``random.Random``). The result is clamped to ``[0, max_seconds]``. Names
    can then be used in ``backoffPolicy``, ``queues.<cmd>.backoffPolicy`` and a
    task's ``backoff.policy``.
    """


@hookspec
def register_artifact_stores(register: Callable[[str, ArtifactStoreFactory], None]) -> None:
    """Offer places to keep uploaded result artifacts, by name.

    Call ``register(name, factory)``; ``factory(settings)`` returns a
    ``codeq.core.artifacts.ArtifactStore``. The server uses the one named by
    the ``artifactStore`` setting (default ``local``: a directory).
    """


@hookspec
def register_routes(router: APIRouter, settings: Settings) -> None:
    """Add HTTP routes to the server (called once per app build)."""


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add commands to the ``codeq`` command line; call ``app.add_typer`` or ``app.command``."""
