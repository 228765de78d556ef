"""``auth login``: a login request to an identity service, then an optional token exchange.

Both steps are templates kept in the profile (``login:`` in the config file)::

    login:
      store: producer            # which token the result becomes: producer or worker
      email: me@example.com
      request:
        url: https://id.example.com/api/login
        method: POST
        headers: {Content-Type: application/json}
        body: '{"email": "${email}", "password": "${password}"}'
        tokenPath: data.token    # dotted path in the JSON answer
      exchange:                  # optional second step
        url: https://id.example.com/api/token/exchange
        headers: {Authorization: Bearer ${token}}
        tokenPath: accessToken

Placeholders: ``${email}``, ``${password}``, ``${token}`` (the login step's
token, in the exchange step). Values are JSON-escaped in JSON bodies and
URL-encoded in form bodies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from string import Template
from typing import Any
from urllib.parse import quote_plus

import httpx

DEFAULT_BODY = '{"email": "${email}", "password": "${password}"}'
DEFAULT_TOKEN_PATH = "token"
TIMEOUT_SECONDS = 30.0


class LoginError(Exception):
    """A step failed; the message says which and why."""


@dataclass
class Step:
    url: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    token_path: str = DEFAULT_TOKEN_PATH

    @classmethod
    def from_profile(cls, data: dict[str, Any]) -> Step:
        return cls(url=str(data["url"]), method=str(data.get("method") or "POST").upper(),
                   headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
                   body=data.get("body"), token_path=str(data.get("tokenPath")
                                                          or DEFAULT_TOKEN_PATH))

    def to_profile(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "method": self.method}
        if self.headers:
            out["headers"] = self.headers
        if self.body is not None:
            out["body"] = self.body
        out["tokenPath"] = self.token_path
        return out

    def placeholders(self) -> set[str]:
        texts = [self.url, self.body or "", *self.headers.values()]
        return {name for text in texts for name in Template(text).get_identifiers()}


def parse_headers(values: list[str]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"a header is 'Name: value', not {value!r}")
        headers[name.strip()] = text.strip()
    return headers


def dig(data: Any, path: str) -> Any:
    """``a.b.0.c`` in a JSON value; KeyError naming the path when absent."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif (isinstance(current, list) and part.isascii() and part.isdigit()
              and int(part) < len(current)):
            current = current[int(part)]
        else:
            raise KeyError(path)
    return current


def _render(step: Step, values: dict[str, str]) -> tuple[str, dict[str, str], str | None]:
    url = Template(step.url).safe_substitute({k: quote_plus(v) for k, v in values.items()})
    headers = {k: Template(v).safe_substitute(values) for k, v in step.headers.items()}
    if step.body is None:
        return url, headers, None
    kind = next((v for k, v in headers.items() if k.lower() == "content-type"),
                "application/json")
    if "json" in kind:
        escaped = {k: json.dumps(v)[1:-1] for k, v in values.items()}
    elif "x-www-form-urlencoded" in kind:
        escaped = {k: quote_plus(v) for k, v in values.items()}
    else:
        escaped = values
    headers.setdefault("Content-Type", kind)
    return url, headers, Template(step.body).safe_substitute(escaped)


def run_step(name: str, step: Step, values: dict[str, str]) -> str:
    url, headers, body = _render(step, values)
    try:
        response = httpx.request(step.method, url, headers=headers, content=body,
                                 timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise LoginError(f"{name} request to {url} failed: {exc}") from None
    if response.status_code >= 400:
        raise LoginError(f"{name} request to {url} answered HTTP {response.status_code}: "
                         f"{response.text.strip()[:300]}")
    try:
        token = dig(response.json(), step.token_path)
    except ValueError:
        raise LoginError(f"{name} answer from {url} is not JSON") from None
    except KeyError:
        raise LoginError(f"{name} answer from {url} has no {step.token_path!r} "
                         "(set the token path with --token-path)") from None
    if not isinstance(token, str) or not token:
        raise LoginError(f"{name} answer: {step.token_path!r} is not a non-empty string")
    return token


def login(request: Step, exchange: Step | None, values: dict[str, str]) -> str:
    """Run the login step, then the exchange step when there is one; the final token."""
    token = run_step("login", request, values)
    if exchange is not None:
        token = run_step("exchange", exchange, {**values, "token": token})
    return token
