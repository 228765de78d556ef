"""``codeq worker start``: the worker runtime from the shell."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from codeq.cli import output, state
from codeq.cli.params import finite, positive
from codeq.long_running import settle_collector
from codeq.worker import Job, Stats, Worker
from codeq.worker.handlers import ack_handler, exec_handler, load_handler

app = typer.Typer(help="Run workers.\n\nExample: codeq worker start --events RESIZE --exec ./resize.sh", no_args_is_help=True)

EVENT_STYLES = {"completed": "green", "failed": "red", "retried": "yellow", "abandoned": "magenta",
                "lost": "red", "error": "red", "stopping": "bold"}
#: The events of a task that went as planned: not logged with ``--quiet``.
ROUTINE = frozenset({"claimed", "completed"})


class Ack(StrEnum):
    complete = "complete"
    abandon = "abandon"
    nack = "nack"
    none = "none"


class Reporter:
    """Worker events as plain log lines, or above a live status line on a terminal."""

    def __init__(self, stats: Stats, *, quiet: bool = False) -> None:
        self.stats = stats
        self.quiet = quiet
        self.live: Live | None = None
        if output.stderr.is_terminal:
            self.live = Live(console=output.stderr, refresh_per_second=2, transient=True,
                             get_renderable=lambda: Text(self.stats.line(), style="dim"))

    def __call__(self, event: str, job: Job | None, detail: str) -> None:
        if self.quiet and event in ROUTINE:
            return
        what = f"{job.command} {job.id}" if job else ""
        text = " ".join(part for part in (f"{event:<9}", what, detail) if part)
        if self.live is not None:
            style = EVENT_STYLES.get(event)
            line = escape(text)
            output.stderr.print(f"[{style}]{line}[/{style}]" if style else line)
        else:  # plain lines: written as they are, without rich's rendering per task
            stream = output.stderr.file
            stream.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")
            stream.flush()


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def _choose_handler(exec_: str | None, handler: str | None, ack: Ack | None,
                    nack_delay: float | None, timeout: float | None) -> Callable[[Job], Any]:
    given = [name for name, v in (("--exec", exec_), ("--handler", handler), ("--ack", ack))
             if v is not None]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of --exec, --handler or --ack"
                                 + (f" (got {', '.join(given)})" if given else ""))
    if exec_ is not None:
        return exec_handler(exec_, timeout=timeout)
    if handler is not None:
        try:
            return load_handler(handler)
        except (ImportError, ValueError, TypeError) as exc:
            raise typer.BadParameter(f"--handler {handler}: {exc}") from None
    assert ack is not None
    return ack_handler(ack.value, nack_delay=nack_delay)


@app.command()
def start(
    ctx: typer.Context,
    events: Annotated[list[str] | None, typer.Option(
        "--events", "-e", help="Commands to claim, comma-separated (default: all the token "
        "allows).", show_default=False)] = None,
    exec_: Annotated[str | None, typer.Option(
        "--exec", help="Shell command per task: payload JSON on stdin, stdout is the result.")
                     ] = None,
    handler: Annotated[str | None, typer.Option(
        help="Python callable module:function (sync or async) receiving the job.")] = None,
    ack: Annotated[Ack | None, typer.Option(help="Demo mode without a handler.")] = None,
    nack_delay: Annotated[float | None, typer.Option(
        min=0, callback=finite, help="Delay of --ack nack (default: the server's backoff).")] = None,
    timeout: Annotated[float | None, typer.Option(
        callback=positive, help="Kill an --exec command after this many seconds and NACK.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks handled at once.")] = 1,
    lease_seconds: Annotated[float, typer.Option(callback=positive, help="Lease per claim; heartbeats every "
                                                 "third of it.")] = 60,
    wait_seconds: Annotated[float, typer.Option(min=0, max=30, callback=finite, help="Long-poll of each claim.")
                            ] = 10,
    batch: Annotated[bool, typer.Option(
        help="Claim up to the free slots in one call; send results in batches.")] = False,
    grace_seconds: Annotated[float, typer.Option(
        min=0, callback=finite, help="On SIGINT/SIGTERM, time for in-flight tasks to finish before they are abandoned.")
                             ] = 30,
    abandon_on_stop: Annotated[bool, typer.Option(
        help="On SIGINT/SIGTERM, abandon in-flight tasks at once.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Log only what needs attention (failures, retries, lost leases, "
        "errors, stops), not every claim and completion.")] = False,
) -> None:
    """Claim tasks and run a handler for each, with heartbeats and graceful stop.

    Example:

        codeq worker start --events RESIZE --concurrency 4 --exec './resize.sh'
    """
    s = state.get(ctx)
    chosen = _choose_handler(exec_, handler, ack, nack_delay, timeout)
    commands = _split(events)
    if events is not None and not commands:  # e.g. --events "$EMPTY": not "every command"
        raise typer.BadParameter("names no command; leave --events out to claim every command "
                                 "the token allows", param_hint="--events")
    worker = Worker(s.client("worker", events=commands or None, retries=3), commands or None,
                    concurrency=concurrency, lease_seconds=lease_seconds,
                    wait_seconds=wait_seconds, batch=batch, grace_seconds=grace_seconds,
                    abandon_on_stop=abandon_on_stop)
    worker.handler()(chosen)
    reporter = Reporter(worker.stats, quiet=quiet)
    worker.listener = reporter
    output.say(f"worker started: events {', '.join(commands) or 'all allowed'}; concurrency "
               f"{concurrency}; lease {lease_seconds:g}s; server {s.base_url}")
    settle_collector()
    if reporter.live is not None:
        with reporter.live:
            worker.run()
    else:
        worker.run()
    output.say(f"worker stopped: {worker.stats.line()}")
