"""``codeq task``: create, inspect, wait for, cancel and list tasks."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from codeq.cli import output, state
from codeq.cli.output import Format, OutputOption
from codeq.cli.params import finite

app = typer.Typer(help="Create, inspect, wait for, cancel and list tasks.\n\nExample: codeq task list --event RESIZE", no_args_is_help=True)

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
LIST_COLUMNS = ("id", "command", "status", "priority", "attempts", "createdAt")
TaskId = Annotated[str, typer.Argument(help="The task id (a UUID).", show_default=False)]


def parse_payload(value: str) -> Any:
    """``--payload``: JSON text, ``@file`` (JSON in a file) or ``-`` (JSON on stdin)."""
    data: bytes | str
    if value == "-":
        data, source = sys.stdin.buffer.read(), "stdin"
    elif value.startswith("@"):
        try:
            data, source = Path(value[1:]).read_bytes(), value[1:]
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {value[1:]}: {exc.strerror}") from None
    else:
        data, source = value, "--payload"
    try:  # JSON is UTF-8 (RFC 8259); bytes that are not were a traceback or lone surrogates
        text = data.decode() if isinstance(data, bytes) else data
        text.encode()
    except UnicodeError as exc:
        raise typer.BadParameter(f"{source} is not UTF-8 text: {exc}") from None
    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite_float)
    except ValueError as exc:
        raise typer.BadParameter(f"{source} is not valid JSON: {exc}") from None


def _not_json(name: str) -> Any:
    """``NaN``, ``Infinity``: Python's json reads them, JSON has no such values."""
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a JSON number (a 64-bit float)")
    return value


@app.command()
def create(
    ctx: typer.Context,
    event: Annotated[str, typer.Option("--event", "-e", help="Command (event type) of the task.",
                                       show_default=False)],
    payload: Annotated[str, typer.Option(help="JSON, @file with JSON, or - for JSON on stdin.")
                       ] = "null",
    priority: Annotated[int | None, typer.Option(help="0..9, higher first.")] = None,
    webhook: Annotated[str | None, typer.Option(help="http(s) URL called with the result.")
                       ] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Deliveries before the DLQ.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(
        help="Same key (per command) returns the original task instead of a new one.")] = None,
    run_at: Annotated[str | None, typer.Option(help="RFC 3339 time before which it is not "
                                               "handed out.")] = None,
    delay_seconds: Annotated[float | None, typer.Option(callback=finite, help="Delay before it is handed out.")
                             ] = None,
    out: OutputOption = None,
) -> None:
    """Create a task and print it.

    Example:

        id=$(codeq task create --event RESIZE --payload '{"w": 640}' -o json | jq -r .id)
    """
    s = state.get(ctx)
    body = parse_payload(payload)
    with s.client() as client:
        task = client.create_task(event, body, priority=priority, webhook=webhook,
                                  max_attempts=max_attempts, idempotency_key=idempotency_key,
                                  run_at=run_at, delay_seconds=delay_seconds)
    output.record(task, s.fmt(out))


@app.command()
def get(
    ctx: typer.Context,
    task_id: TaskId,
    history: Annotated[bool, typer.Option(help="Include the timeline of transitions.")] = False,
    out: OutputOption = None,
) -> None:
    """Show a task.

    Example:

        codeq task get 0f8e... --history
    """
    s = state.get(ctx)
    with s.client() as client:
        task = client.get_task(task_id, history=history)
    fmt = s.fmt(out)
    output.record(task, fmt, skip=("history",))
    if fmt is Format.table and task.get("history"):
        output.rows(task, task["history"], ("at", "event", "workerId", "reason"), fmt)


@app.command()
def result(ctx: typer.Context, task_id: TaskId, out: OutputOption = None) -> None:
    """Show the result record of a finished task.

    Example:

        codeq task result 0f8e... -o json
    """
    s = state.get(ctx)
    with s.client() as client:
        record = client.get_result(task_id)["result"]
    output.record(record, s.fmt(out))


@app.command()
def wait(
    ctx: typer.Context,
    task_id: TaskId,
    timeout: Annotated[float | None, typer.Option(callback=finite, help="Give up after this many seconds.")
                       ] = None,
    out: OutputOption = None,
) -> None:
    """Wait until a task finishes, then print its result (exit 1 when FAILED or CANCELLED).

    Example:

        codeq task wait "$id" --timeout 60 -o json
    """
    s = state.get(ctx)
    fmt = s.fmt(out)
    deadline = None if timeout is None else time.monotonic() + timeout
    with s.client() as client:
        spinner = output.stderr.status(f"waiting for task {task_id}")
        if output.stderr.is_terminal and fmt is Format.table:
            spinner.start()
        try:
            task = _poll(client, task_id, deadline)
        finally:
            spinner.stop()
        if task["status"] == "CANCELLED":
            output.record(task, fmt)
            raise output.fail(f"task {task_id} was cancelled")
        record = client.get_result(task_id)["result"]
    output.record(record, fmt)
    if record["status"] != "COMPLETED":
        raise output.fail(f"task {task_id} failed: {record.get('error')}")


def _poll(client: Any, task_id: str, deadline: float | None) -> dict[str, Any]:
    pause = 0.1
    while True:
        task: dict[str, Any] = client.get_task(task_id)
        if task["status"] in TERMINAL:
            return task
        if deadline is not None and time.monotonic() + pause > deadline:
            raise output.fail(f"timed out: task {task_id} is still {task['status']}")
        time.sleep(pause)
        pause = min(2.0, pause * 1.5)


@app.command()
def cancel(ctx: typer.Context, task_id: TaskId, out: OutputOption = None) -> None:
    """Cancel a task (a running one stops at its next heartbeat).

    Example:

        codeq task cancel 0f8e...
    """
    s = state.get(ctx)
    with s.client() as client:
        task = client.cancel_task(task_id)
    output.record(task, s.fmt(out))


def _status(value: str | None) -> str | None:
    """Upper-cased for the server when ASCII: ``str.upper`` makes ``ı`` an ``I`` and ``ſ``
    an ``S``, so ``ın_progress`` would have listed IN_PROGRESS tasks."""
    return value.upper() if value and value.isascii() else value


@app.command("list")
def list_(
    ctx: typer.Context,
    event: Annotated[str | None, typer.Option("--event", "-e", help="Only this command.")
                     ] = None,
    status: Annotated[str | None, typer.Option(
        help="PENDING, IN_PROGRESS, COMPLETED, FAILED or CANCELLED.")] = None,
    limit: Annotated[int, typer.Option(help="Tasks per page (1..1000).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="nextCursor of the previous page.")] = None,
    out: OutputOption = None,
) -> None:
    """List tasks, one page at a time.

    Example:

        codeq task list --event RESIZE --status FAILED --limit 20
    """
    s = state.get(ctx)
    with s.client() as client:
        page = client.list_tasks(command=event, status=_status(status), limit=limit,
                                 cursor=cursor)
    fmt = s.fmt(out)
    output.rows(page, page["tasks"], LIST_COLUMNS, fmt, empty="no tasks")
    if fmt is Format.table and page.get("nextCursor"):
        output.say(f"more: --cursor {page['nextCursor']}")
