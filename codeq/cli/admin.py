"""``codeq admin``: maintenance of the store, through the server (cleanup) or directly (migrate)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Self

import typer
from rich.progress import MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

from codeq.cli import output, state
from codeq.cli.output import OutputOption
from codeq.core import migrate as migration
from codeq.core.errors import CodeqError, ConfigError

app = typer.Typer(help="Maintenance (admin): clean up finished tasks, migrate between stores."
                       "\n\nExample: codeq admin cleanup --limit 5000", no_args_is_help=True)


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


class _Reporter:
    """Shows migration progress on stderr: a progress bar on a terminal, plain lines otherwise."""

    #: Plain mode prints a task count at most this often (seconds), plus each phase's end.
    PLAIN_INTERVAL = 2.0

    def __init__(self) -> None:
        self.bar: Progress | None = None
        if output.stderr.is_terminal:
            self.bar = Progress(*Progress.get_default_columns()[:-1], MofNCompleteColumn(),
                                TimeElapsedColumn(), console=output.stderr, transient=False)
        self.phases: dict[migration.Phase, TaskID] = {}
        self.printed_at = 0.0

    def __enter__(self) -> Self:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, progress: migration.Progress) -> None:
        if self.bar is not None:
            if progress.phase not in self.phases:
                self.phases[progress.phase] = self.bar.add_task(progress.phase.value)
            self.bar.update(self.phases[progress.phase], completed=progress.done,
                            total=progress.total)
            return
        finished = progress.total is not None and progress.done >= progress.total
        now = time.monotonic()
        if finished or now - self.printed_at >= self.PLAIN_INTERVAL:
            self.printed_at = now
            of = f" of {progress.total}" if progress.total is not None else ""
            output.say(f"{progress.phase.value}: {progress.done}{of}")


async def _migrate(source_url: str, target_url: str, page_size: int,
                   reporter: _Reporter) -> migration.Report:
    from codeq.core.config import load_settings
    from codeq.plugins import open_storage

    # The URLs carry everything a store needs; settings of the environment play no part.
    settings = load_settings(environ={})
    source = open_storage(source_url, settings)
    target = open_storage(target_url, settings)
    await source.open()
    try:
        await target.open()
        try:
            return await migration.migrate(source, target, now=time.time(),
                                           page_size=page_size, on_progress=reporter)
        finally:
            await target.close()
    finally:
        await source.close()


@app.command()
def migrate(
    ctx: typer.Context,
    source: Annotated[str, typer.Option(
        "--from", help="Store to copy from: sqlite:///path, redis://..., redis+cluster://...",
        show_default=False)],
    target: Annotated[str, typer.Option(
        "--to", help="Store to copy into (the same kinds of URL as --storage).",
        show_default=False)],
    page_size: Annotated[int, typer.Option(min=1, max=10_000, help="Tasks read per page.")
                         ] = migration.PAGE_SIZE,
    out: OutputOption = None,
) -> None:
    """Copy every task, result, subscription and pending callback from one store to another.

    Works on the stores directly (no server); stop the servers on the source
    first. Tasks keep their state and queue; paused queues stay paused. Run it
    again after an interruption: what the target holds already is skipped.
    Exits 1 when the target's counts do not match the source's at the end.

    Example:

        codeq admin migrate --from sqlite:///var/lib/codeq/codeq.db --to redis://redis:6379/0
    """
    fmt = state.get(ctx).fmt(out)
    try:
        with _Reporter() as reporter:
            report = asyncio.run(_migrate(source, target, page_size, reporter))
    except ConfigError as exc:
        raise output.fail(exc.message, 2) from None
    except CodeqError as exc:
        raise output.fail(exc.message) from None
    output.rows(report.as_dict(), [{"status": status, "tasks": count}
                                   for status, count in sorted(report.statuses.items())],
                ("status", "tasks"), fmt, empty="the source holds no tasks")
    output.say(f"copied {report.copied} tasks ({report.already_there} already there), "
               f"{report.queues} queues ({len(report.paused)} paused), "
               f"{report.subscriptions} subscriptions, {report.callbacks} pending callbacks")
    if not report.verified:
        for line in report.differences:
            output.say(f"  {line}")
        raise output.fail("verification failed: the target's counts differ from the source's")
    output.say("verified: the target's counts per status and queue match the source's")
