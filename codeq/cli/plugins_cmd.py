"""``codeq plugins``: what is loaded, from where, with which hooks."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table


def plugins(
    output: str = typer.Option("table", "--output", "-o", help="table or json"),
) -> None:
    """List the loaded plugins: name, version, source and hooks.

    Example: codeq plugins -o json
    """
    from codeq.plugins import plugin_info

    infos = plugin_info()
    if output == "json":
        typer.echo(json.dumps([{"name": p.name, "version": p.version, "source": p.source,
                                "hooks": list(p.hooks)} for p in infos], indent=2))
        return
    table = Table("plugin", "version", "source", "hooks")
    for p in infos:
        table.add_row(p.name, p.version or "-", p.source, ", ".join(p.hooks))
    Console().print(table)
