"""``codeq auth``: tokens and profiles."""

from __future__ import annotations

import typer

from codeq.cli.dev_token import dev_token

app = typer.Typer(help="Tokens and profiles.", no_args_is_help=True)
app.command("dev-token")(dev_token)
