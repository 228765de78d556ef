"""The ``codeq`` command: one root Typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

from codeq.cli import auth, plugins_cmd, serve

app = typer.Typer(
    name="codeq",
    help="codeq: a durable task queue. Server, worker runtime and operator's tool in one command.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("serve")(serve.serve)
app.command("plugins")(plugins_cmd.plugins)
app.add_typer(auth.app, name="auth")


def main() -> None:
    from codeq.plugins import manager

    manager().hook.register_commands(app=app)
    app()
