"""The ``codeq`` command: one root Typer app; each command group lives in its own module.

Global options live in the root callback and travel on one typed ``State``
(``codeq.cli.state``). Errors from the server are printed with its message on
stderr and exit 1; bad usage exits 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from codeq.cli import admin, auth, init_cmd, output, plugins_cmd, queues, serve, tasks, worker_cmd
from codeq.cli.output import Format
from codeq.cli.state import State
from codeq.client import ApiError, ConnectionFailed, InvalidRequest, Unauthorized

app = typer.Typer(
    name="codeq",
    help="codeq: a durable task queue. Server, worker runtime and operator's tool in one "
         "command.\n\nExample: codeq task create --event RESIZE --payload '{\"w\": 640}'",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        from codeq import __version__

        typer.echo(f"codeq {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    base_url: Annotated[str | None, typer.Option(
        envvar="CODEQ_BASE_URL", help="Server URL (default: the profile's, else "
        "http://localhost:8080).", show_default=False)] = None,
    profile: Annotated[str | None, typer.Option(
        envvar="CODEQ_PROFILE", help="Profile of ~/.codeq/config.yaml to use.")] = None,
    producer_token: Annotated[str | None, typer.Option(
        envvar="CODEQ_PRODUCER_TOKEN", help="Token for producer and admin calls.",
        show_default=False)] = None,
    worker_token: Annotated[str | None, typer.Option(
        envvar="CODEQ_WORKER_TOKEN", help="Token for worker calls.", show_default=False)] = None,
    admin: Annotated[bool, typer.Option(
        "--admin", help="Send X-Role: ADMIN on admin calls (honoured by dev servers).")] = False,
    out: Annotated[Format, typer.Option(
        "--output", "-o", help="table (for people) or json (for scripts).")] = Format.table,
    data_dir: Annotated[Path | None, typer.Option(
        envvar="CODEQ_DATA_DIR", help="Data directory of a local dev server: the CLI mints dev "
        "tokens with its key when no token is configured.", show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Global options, carried to every command on one ``State``."""
    ctx.obj = State(profile_name=profile, base_url_flag=base_url,
                    producer_token_flag=producer_token, worker_token_flag=worker_token,
                    admin_flag=admin, output=out, data_dir_flag=data_dir)


app.command("serve")(serve.serve)
app.command("plugins")(plugins_cmd.plugins)
app.command("init")(init_cmd.init)
app.add_typer(auth.app, name="auth")
app.add_typer(tasks.app, name="task")
app.add_typer(queues.app, name="queue")
app.add_typer(admin.app, name="admin")
app.add_typer(worker_cmd.app, name="worker")

HINTS = {
    Unauthorized: "configure a token (codeq auth set / codeq init), or for a local dev server "
                  "point --data-dir at its data directory",
    ConnectionFailed: "is the server running (codeq serve)? Check --base-url / CODEQ_BASE_URL",
}


#: Built-in groups no plugin extends: running one of them skips loading the plugins
#: (which costs about as much as the rest of start-up together).
PLUGIN_FREE = frozenset({"task", "queue", "worker", "auth", "init"})
#: Root options that take a value (so the value is not mistaken for the command).
VALUE_OPTIONS = frozenset({"--base-url", "--profile", "--producer-token", "--worker-token",
                           "--output", "-o", "--data-dir"})


def command_of(argv: list[str]) -> str | None:
    """The top-level command named in ``argv`` (arguments after the program name)."""
    args = iter(argv)
    for arg in args:
        if arg in VALUE_OPTIONS:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    if command_of(sys.argv[1:]) not in PLUGIN_FREE:
        from codeq.plugins import manager

        manager().hook.register_commands(app=app)
    try:
        app()
    except InvalidRequest as exc:  # arguments no request can carry: bad usage
        output.fail(str(exc))
        sys.exit(2)
    except ApiError as exc:
        output.fail(str(exc))
        hint = next((h for cls, h in HINTS.items() if isinstance(exc, cls)), None)
        if hint:
            output.say(f"hint: {hint}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
