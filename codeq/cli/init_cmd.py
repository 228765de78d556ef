"""``codeq init``: create or update a profile in ``~/.codeq/config.yaml``."""

from __future__ import annotations

from typing import Annotated

import typer

from codeq.cli import output, state
from codeq.client.http import DEFAULT_BASE_URL


def init(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(
        "--name", help="Profile to write (default: --profile, else the current one).")] = None,
    base_url: Annotated[str | None, typer.Option(help="Server URL.")] = None,
    producer_token: Annotated[str | None, typer.Option(help="Producer token.")] = None,
    worker_token: Annotated[str | None, typer.Option(help="Worker token.")] = None,
    admin: Annotated[bool | None, typer.Option("--admin/--no-admin", help="Send X-Role: ADMIN "
                                               "on admin calls (dev servers).")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data directory of a local dev server "
                                                 "(for dev tokens).")] = None,
    prompt: Annotated[bool, typer.Option("--prompt/--no-prompt", help="Ask for what is not "
                                         "given.")] = True,
) -> None:
    """Create or update a profile (server URL, tokens) and make it the current one.

    Example:

        codeq init --name staging --base-url https://codeq.staging:8080 --no-prompt
    """
    s = state.get(ctx)
    profile_name = name or s.current_profile
    profile = s.config.profile(profile_name)
    if prompt:
        base_url = base_url or typer.prompt(
            "Server URL", default=profile.get("baseUrl") or s.base_url_flag or DEFAULT_BASE_URL)
        producer_token = producer_token or typer.prompt(
            "Producer token (empty: keep / none)", default="", hide_input=True,
            show_default=False) or None
        worker_token = worker_token or typer.prompt(
            "Worker token (empty: keep / none)", default="", hide_input=True,
            show_default=False) or None
        if admin is None:
            admin = typer.confirm("Send X-Role: ADMIN on admin calls (dev servers only)?",
                                  default=bool(profile.get("admin")))
    updates = {"baseUrl": base_url or profile.get("baseUrl") or s.base_url_flag
               or DEFAULT_BASE_URL, "producerToken": producer_token,
               "workerToken": worker_token, "admin": admin, "dataDir": data_dir}
    profile.update({k: v for k, v in updates.items() if v is not None})
    s.config.current = profile_name
    path = s.config.save()
    output.say(f"profile {profile_name} saved in {path} and made current")
