"""``codeq admin``: maintenance of the store through the server."""

from __future__ import annotations

from typing import Annotated

import typer

from codeq.cli import output, state
from codeq.cli.output import OutputOption

app = typer.Typer(help="Maintenance (admin).\n\nExample: codeq admin cleanup --limit 5000", no_args_is_help=True)


@app.command()
def cleanup(
    ctx: typer.Context,
    command: Annotated[str | None, typer.Option(help="Only tasks of this command.")] = None,
    before: Annotated[str | None, typer.Option(
        help="RFC 3339 time; tasks whose retention ended before it go (default: now).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many tasks (default 1000).")
                     ] = None,
    out: OutputOption = None,
) -> None:
    """Delete every trace of finished tasks whose retention has ended.

    Example:

        codeq admin cleanup --command RESIZE --limit 5000
    """
    s = state.get(ctx)
    with s.client("admin") as client:
        answer = client.cleanup(limit=limit, before=before, command=command)
    output.record(answer, s.fmt(out))
