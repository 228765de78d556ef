"""``codeq auth``: tokens and profiles (set, show, clear, login, dev-token)."""

from __future__ import annotations

import base64
import json
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from codeq.cli import output, state
from codeq.cli.dev_token import dev_token
from codeq.cli.login import DEFAULT_BODY, LoginError, Step, parse_headers
from codeq.cli.login import login as run_login
from codeq.cli.output import Format, OutputOption

app = typer.Typer(help="Tokens and profiles.\n\nExample: codeq auth show", no_args_is_help=True)
app.command("dev-token")(dev_token)

SHOWN_CLAIMS = ("sub", "iss", "aud", "role", "eventTypes", "scope", "workerGroup")


class Target(StrEnum):
    producer = "producer"
    worker = "worker"


def mask(token: str) -> str:
    """Enough of a token to recognise it, never enough to use it."""
    if len(token) < 24:
        return "*" * 8
    return f"{token[:6]}…{token[-4:]}"


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, decoded without verification (None for other tokens)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def describe(token: str | None, source: str) -> dict[str, Any]:
    if not token:
        return {"token": None, "source": "not set"}
    info: dict[str, Any] = {"token": mask(token), "source": source}
    claims = jwt_claims(token)
    if claims is None:
        return info
    info.update({k: claims[k] for k in SHOWN_CLAIMS if k in claims})
    if isinstance(claims.get("exp"), (int, float)):
        left = claims["exp"] - time.time()
        info["expiresAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
        info["expires"] = (f"in {int(left // 3600)}h{int(left % 3600 // 60):02d}m" if left > 0
                           else "EXPIRED")
    return info


@app.command("set")
def set_(
    ctx: typer.Context,
    producer_token: Annotated[str | None, typer.Option(help="Token for producer and admin "
                                                       "calls.")] = None,
    worker_token: Annotated[str | None, typer.Option(help="Token for worker calls.")] = None,
    admin: Annotated[bool | None, typer.Option(
        "--admin/--no-admin", help="Send X-Role: ADMIN on admin calls (dev servers).")] = None,
) -> None:
    """Store tokens in the current profile (~/.codeq/config.yaml, mode 0600).

    Example:

        codeq --profile prod auth set --producer-token "$TOKEN"
    """
    s = state.get(ctx)
    if producer_token is None and worker_token is None and admin is None:
        raise typer.BadParameter("give --producer-token, --worker-token or --admin/--no-admin")
    profile = s.config.profile(s.current_profile)
    for key, value in (("producerToken", producer_token), ("workerToken", worker_token),
                       ("admin", admin)):
        if value is not None:
            profile[key] = value
    path = s.config.save()
    output.say(f"saved to profile {s.current_profile} in {path}")


@app.command()
def show(ctx: typer.Context, out: OutputOption = None) -> None:
    """Show the current profile and its tokens (masked, with their decoded claims).

    Example:

        codeq auth show -o json
    """
    s = state.get(ctx)
    profile = s.profile
    def source(flag: str | None) -> str:
        return "command line or environment" if flag else f"profile {s.current_profile}"
    producer = describe(s.configured_token("producer"), source(s.producer_token_flag))
    worker = describe(s.configured_token("worker"), source(s.worker_token_flag))
    info = {
        "profile": s.current_profile,
        "baseUrl": s.base_url,
        "admin": s.admin,
        "producer": producer,
        "worker": worker,
        "login": "configured" if profile.get("login") else "not configured",
    }
    fmt = s.fmt(out)
    if fmt is Format.json:
        output.emit_json(info)
        return
    output.record(info, fmt, skip=("producer", "worker"))
    for kind, details in (("producer", producer), ("worker", worker)):
        output.record(details, fmt, title=f"{kind} token")


@app.command()
def clear(
    ctx: typer.Context,
    producer: Annotated[bool, typer.Option("--producer", help="Forget the producer token.")
                        ] = False,
    worker: Annotated[bool, typer.Option("--worker", help="Forget the worker token.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Forget both tokens.")] = False,
) -> None:
    """Forget tokens stored in the current profile.

    Example:

        codeq auth clear --worker
    """
    s = state.get(ctx)
    if not (producer or worker or all_):
        raise typer.BadParameter("give --producer, --worker or --all")
    profile = s.config.profile(s.current_profile)
    if producer or all_:
        profile.pop("producerToken", None)
    if worker or all_:
        profile.pop("workerToken", None)
    path = s.config.save()
    output.say(f"cleared in profile {s.current_profile} ({path})")


@app.command()
def login(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Option(help="Prompted when missing.")] = None,
    password: Annotated[str | None, typer.Option(help="Prompted (hidden) when missing.")
                        ] = None,
    url: Annotated[str | None, typer.Option(help="Login request URL (saved in the profile).")
                   ] = None,
    method: Annotated[str | None, typer.Option(help="Login request method (POST).")] = None,
    header: Annotated[list[str] | None, typer.Option(help="'Name: value' (repeatable).")
                      ] = None,
    body: Annotated[str | None, typer.Option(help="Body template with ${email} ${password}.")
                    ] = None,
    token_path: Annotated[str | None, typer.Option(help="Dotted path of the token in the "
                                                   "JSON answer (token).")] = None,
    exchange_url: Annotated[str | None, typer.Option(help="Optional token exchange URL.")
                            ] = None,
    exchange_method: Annotated[str | None, typer.Option(help="Exchange method (POST).")] = None,
    exchange_header: Annotated[list[str] | None, typer.Option(
        help="Exchange header, ${token} is the login token (default Authorization: Bearer "
        "${token}).")] = None,
    exchange_body: Annotated[str | None, typer.Option(help="Exchange body template.")] = None,
    exchange_token_path: Annotated[str | None, typer.Option(help="Token path of the exchange "
                                                            "answer (token).")] = None,
    store: Annotated[Target | None, typer.Option("--as", help="Store the token as the producer "
                                                 "or the worker token (producer).")] = None,
) -> None:
    """Log in to your identity service and store the token it gives in the profile.

    The request (and an optional token exchange) are templates kept in the
    profile: give them once with the options, later runs reuse them.

    Example:

        codeq auth login --url https://id.example.com/login --token-path data.token --email me@example.com
    """
    s = state.get(ctx)
    profile = s.config.profile(s.current_profile)
    saved: dict[str, Any] = dict(profile.get("login") or {})
    try:
        request = _step(saved.get("request"), url, method, header, body, token_path,
                        default_body=DEFAULT_BODY)
        exchange = _step(saved.get("exchange"), exchange_url, exchange_method, exchange_header,
                         exchange_body, exchange_token_path,
                         default_headers={"Authorization": "Bearer ${token}"})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if request is None:
        raise typer.BadParameter("no login template in this profile yet: give --url (and "
                                 "--token-path, --body ... as needed)")
    email = email or saved.get("email")
    needed = request.placeholders() | (exchange.placeholders() if exchange else set())
    values: dict[str, str] = {}
    if "email" in needed:
        values["email"] = email or typer.prompt("Email")
    if "password" in needed:
        values["password"] = password or typer.prompt("Password", hide_input=True)
    try:
        token = run_login(request, exchange, values)
    except LoginError as exc:
        raise output.fail(str(exc)) from None
    target = store or Target(saved.get("store") or "producer")
    profile["login"] = {"store": target.value, **({"email": values["email"]} if "email" in values
                                                   else {}),
                        "request": request.to_profile(),
                        **({"exchange": exchange.to_profile()} if exchange else {})}
    profile[f"{target.value}Token"] = token
    path = s.config.save()
    output.say(f"logged in: {target.value} token {mask(token)} saved to profile "
               f"{s.current_profile} ({path})")


def _step(saved: dict[str, Any] | None, url: str | None, method: str | None,
          headers: list[str] | None, body: str | None, token_path: str | None, *,
          default_body: str | None = None, default_headers: dict[str, str] | None = None
          ) -> Step | None:
    """The saved template with the options given on this run applied over it."""
    if saved:
        step = Step.from_profile(saved)
    elif url:
        step = Step(url=url, headers=dict(default_headers or {}), body=default_body)
    else:
        return None
    if url:
        step.url = url
    if method:
        step.method = method.upper()
    if headers:
        step.headers.update(parse_headers(headers))
    if body is not None:
        step.body = body
    if token_path:
        step.token_path = token_path
    return step
