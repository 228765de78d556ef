"""Everything the CLI prints: data on stdout (rich tables, or JSON with ``-o json``),
messages and errors on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class Format(StrEnum):
    table = "table"
    json = "json"


#: ``-o`` is accepted after any data command as well as before it.
OutputOption = Annotated[Format | None, typer.Option(
    "--output", "-o", help="table (for people) or json (for scripts; only JSON on stdout).",
    show_default=False)]

STATUS_STYLES = {"PENDING": "yellow", "IN_PROGRESS": "cyan", "COMPLETED": "green",
                 "FAILED": "red", "CANCELLED": "magenta"}


def say(message: str) -> None:
    """A message for the person at the terminal (stderr, so stdout stays data)."""
    stderr.print(escape(message))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    stderr.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _styled(key: str, value: Any) -> str:
    text = escape(_cell(value))
    style = STATUS_STYLES.get(str(value)) if key == "status" else None
    return f"[{style}]{text}[/{style}]" if style else text


def record(data: dict[str, Any], fmt: Format, *, title: str | None = None,
           skip: Iterable[str] = ()) -> None:
    """One object: JSON, or a two-column table of its fields."""
    if fmt is Format.json:
        emit_json(data)
        return
    table = Table(show_header=False, title=title, title_justify="left", box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    hidden = set(skip)
    for key, value in data.items():
        if key not in hidden:
            table.add_row(key, _styled(key, value))
    stdout.print(table)


def rows(data: Any, items: Sequence[dict[str, Any]], columns: Sequence[str], fmt: Format, *,
         empty: str = "nothing to show") -> None:
    """A listing: JSON of ``data``, or a table of ``items`` with ``columns``."""
    if fmt is Format.json:
        emit_json(data)
        return
    if not items:
        say(empty)
        return
    table = Table()
    for column in columns:
        table.add_column(column, no_wrap=column in ("id", "taskId"), overflow="fold")
    for item in items:
        table.add_row(*(_styled(c, item.get(c)) for c in columns))
    stdout.print(table)
