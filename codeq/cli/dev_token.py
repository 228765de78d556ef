"""``codeq auth dev-token``: mint a token with the dev server's local signing key."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class DevRole(StrEnum):
    producer = "producer"
    worker = "worker"
    admin = "admin"


def dev_token(
    role: Annotated[DevRole, typer.Option(help="Kind of token.")] = DevRole.producer,
    events: Annotated[str, typer.Option(
        help="Worker tokens: comma-separated event types the token may claim ('*': all).")] = "*",
    sub: Annotated[str | None, typer.Option(
        show_default="dev-<role>", help="Subject (the worker id for worker tokens).")] = None,
    ttl: Annotated[int, typer.Option(min=1, help="Lifetime in seconds.")] = 3600,
    worker_group: Annotated[str | None, typer.Option(
        help="Worker tokens: the workerGroup claim.")] = None,
    audience: Annotated[str | None, typer.Option(
        help="Audience; only needed when the server's workerAudience is not codeq-worker.")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(
        envvar="CODEQ_DATA_DIR", show_default="$XDG_DATA_HOME/codeq",
        help="The dev server's data directory.")] = None,
) -> None:
    """Print a token signed with the dev key, trusted by a dev-mode server using the same data dir.

    Example: export CODEQ_WORKER_TOKEN=$(codeq auth dev-token --role worker --events RESIZE,THUMB)
    """
    # Imported here: jwt, cryptography and pydantic would slow every other codeq command.
    from codeq import devkeys
    from codeq.core.config import default_data_dir

    event_types = tuple(e.strip() for e in events.split(",") if e.strip())
    if role is DevRole.worker and not event_types:
        raise typer.BadParameter("give at least one event type (or '*')", param_hint="--events")
    try:
        token = devkeys.mint_token(data_dir or default_data_dir(), role.value, sub=sub,
                                   events=event_types, ttl=ttl, worker_group=worker_group,
                                   audience=audience)
    except (OSError, ValueError) as exc:
        typer.echo(f"codeq: cannot use the dev key: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(token)
