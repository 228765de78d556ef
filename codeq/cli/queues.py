"""``codeq queue``: queue depths, the DLQ, redrive, pause and resume (admin routes)."""

from __future__ import annotations

from typing import Annotated

import typer

from codeq.cli import output, state
from codeq.cli.output import Format, OutputOption

app = typer.Typer(help="Inspect and operate queues (admin).\n\nExample: codeq queue inspect RESIZE --dlq", no_args_is_help=True)

STATS_COLUMNS = ("command", "ready", "delayed", "inProgress", "dlq", "paused", "oldestReadyAt")
DLQ_COLUMNS = ("id", "status", "attempts", "error", "updatedAt")
Command = Annotated[str, typer.Argument(help="The command (event type) of the queue.",
                                        show_default=False)]


@app.command("list")
def list_(ctx: typer.Context, out: OutputOption = None) -> None:
    """List every queue with its depths.

    Example:

        codeq queue list -o json
    """
    s = state.get(ctx)
    with s.client("admin") as client:
        queues = client.list_queues()
    output.rows({"queues": queues}, queues, STATS_COLUMNS, s.fmt(out), empty="no queues yet")


@app.command()
def inspect(
    ctx: typer.Context,
    command: Command,
    dlq: Annotated[bool, typer.Option("--dlq", help="List the dead-lettered tasks instead.")
                   ] = False,
    limit: Annotated[int, typer.Option(help="DLQ tasks per page (1..1000).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="nextCursor of the previous page.")] = None,
    out: OutputOption = None,
) -> None:
    """Show one queue's depths, or its dead-letter queue with --dlq.

    Example:

        codeq queue inspect RESIZE --dlq --limit 10
    """
    s = state.get(ctx)
    fmt = s.fmt(out)
    with s.client("admin") as client:
        if not dlq:
            output.record(client.get_queue(command), fmt)
            return
        page = client.list_dlq(command, limit=limit, cursor=cursor)
    output.rows(page, page["tasks"], DLQ_COLUMNS, fmt, empty=f"the DLQ of {command} is empty")
    if fmt is Format.table and page.get("nextCursor"):
        output.say(f"more: --cursor {page['nextCursor']}")


@app.command()
def redrive(
    ctx: typer.Context,
    command: Command,
    ids: Annotated[list[str] | None, typer.Option(
        "--id", help="A task to move back (repeatable); default: oldest first.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many tasks.")] = None,
    out: OutputOption = None,
) -> None:
    """Move dead-lettered tasks back to the ready queue (attempts reset to 0).

    Example:

        codeq queue redrive RESIZE --limit 100
    """
    s = state.get(ctx)
    with s.client("admin") as client:
        answer = client.redrive(command, ids=ids or None, limit=limit)
    fmt = s.fmt(out)
    if fmt is Format.json:
        output.emit_json(answer)
    else:
        output.say(f"redriven: {answer['redriven']}")


@app.command()
def pause(ctx: typer.Context, command: Command, out: OutputOption = None) -> None:
    """Pause a queue: it still accepts tasks but hands none out.

    Example:

        codeq queue pause RESIZE
    """
    s = state.get(ctx)
    with s.client("admin") as client:
        output.record(client.pause_queue(command), s.fmt(out))


@app.command()
def resume(ctx: typer.Context, command: Command, out: OutputOption = None) -> None:
    """Resume a paused queue.

    Example:

        codeq queue resume RESIZE
    """
    s = state.get(ctx)
    with s.client("admin") as client:
        output.record(client.resume_queue(command), s.fmt(out))
