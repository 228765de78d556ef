"""Profiles in ~/.codeq/config.yaml, ``auth set|show|clear|login``, dev tokens."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from tests.cli.conftest import Cli

SECRET = "sk-login-" + "9" * 40


@pytest.fixture
def identity() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A fake identity service on 127.0.0.1: /login, then /exchange of the login token."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                         "body": body.decode()})
            if self.path == "/api/login":
                data = json.loads(body)
                ok = data == {"email": "ada@example.com", "password": 'p"w'}
                self._answer(200 if ok else 401, {"data": {"token": "LOGIN-TOKEN"}} if ok
                             else {"error": "bad credentials"})
            elif self.path == "/api/exchange":
                ok = self.headers.get("Authorization") == "Bearer LOGIN-TOKEN"
                self._answer(200 if ok else 403, {"accessToken": SECRET} if ok else {})
            else:
                self._answer(404, {})

        def _answer(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def config(cli: Cli) -> dict[str, Any]:
    path = cli.home / ".codeq" / "config.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def strings(value: Any) -> list[str]:
    """Every key and string value in a parsed YAML document, however deep."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else []


def test_auth_login_with_exchange_stores_the_token(cli: Cli, identity: tuple[str, list[Any]]
                                                  ) -> None:
    url, seen = identity
    cli.ok("auth", "login", "--url", f"{url}/api/login", "--token-path", "data.token",
           "--exchange-url", f"{url}/api/exchange", "--exchange-token-path", "accessToken",
           "--email", "ada@example.com", "--password", 'p"w')
    assert [s["path"] for s in seen] == ["/api/login", "/api/exchange"]
    profile = config(cli)["profiles"]["default"]
    assert profile["producerToken"] == SECRET
    assert profile["login"]["email"] == "ada@example.com"
    # The password is never stored (json.dumps would escape its quote, hiding it: look at the
    # parsed values and at the file itself).
    assert 'p"w' not in strings(config(cli))
    assert 'p"w' not in (cli.home / ".codeq" / "config.yaml").read_text()
    # The templates are kept: the next login only needs the password.
    done = cli.ok("auth", "login", "--as", "worker", input='p"w\n')
    assert config(cli)["profiles"]["default"]["workerToken"] == SECRET
    assert SECRET not in done.stdout + done.stderr
    bad = cli.run("auth", "login", input="wrong\n")
    assert bad.returncode == 1
    assert "HTTP 401" in bad.stderr and "bad credentials" in bad.stderr


def test_auth_show_masks_tokens_and_decodes_claims(cli: Cli) -> None:
    assert cli.server is not None
    token = cli.server.token("worker", sub="w-7", events=["A", "B"])
    cli.ok("auth", "set", "--worker-token", token, "--producer-token", SECRET)
    table = cli.ok("--worker-token", token, "auth", "show")
    assert token not in table.stdout + table.stderr and SECRET not in table.stdout
    assert "w-7" in table.stdout
    shown = cli.ok("auth", "show", "-o", "json")
    assert token not in shown.stdout and SECRET not in shown.stdout
    info = json.loads(shown.stdout)
    assert info["worker"]["sub"] == "w-7" and info["worker"]["eventTypes"] == ["A", "B"]
    assert info["worker"]["token"] == f"{token[:6]}…{token[-4:]}"
    assert info["worker"]["expires"].startswith("in ")
    cli.ok("auth", "clear", "--worker")
    after = cli.json("auth", "show")
    assert after["worker"]["token"] is None and after["producer"]["token"] is not None
    assert cli.run("auth", "clear").returncode == 2


def test_profiles_switch_with_flag_and_environment(cli: Cli) -> None:
    assert cli.server is not None
    real = cli.server.base_url
    cli.ok("init", "--no-prompt", "--name", "dead", "--base-url", "http://127.0.0.1:9")
    cli.ok("init", "--no-prompt", "--name", "live", "--base-url", real,
           "--producer-token", cli.server.token("producer"))
    assert config(cli)["currentProfile"] == "live"
    env = {k: v for k, v in cli.env().items() if k not in ("CODEQ_BASE_URL", "CODEQ_DATA_DIR")}
    created = cli.json("task", "create", "-e", "PROFILED", env=env)
    assert created["command"] == "PROFILED"
    for chosen in (cli.run("--profile", "dead", "task", "get", created["id"], env=env),
                   cli.run("task", "get", created["id"], env={**env, "CODEQ_PROFILE": "dead"})):
        assert chosen.returncode == 1
        assert "cannot reach the codeq server at http://127.0.0.1:9" in chosen.stderr
    assert cli.json("--profile", "live", "task", "get", created["id"], env=env)["id"] == \
        created["id"]
    shown = cli.json("auth", "show", env={**env, "CODEQ_PROFILE": "dead"})
    assert (shown["profile"], shown["baseUrl"]) == ("dead", "http://127.0.0.1:9")


def test_dev_tokens_are_minted_and_announced(cli: Cli) -> None:
    done = cli.run("task", "create", "-e", "DEVTOKEN", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert "using a dev token minted with the dev key" in done.stderr
    assert json.loads(done.stdout)["command"] == "DEVTOKEN"
    elsewhere = cli.run("task", "create", "-e", "DEVTOKEN",
                        env=cli.env(CODEQ_DATA_DIR=str(cli.home / "nothing-here")))
    assert elsewhere.returncode == 1
    assert "HTTP 401" in elsewhere.stderr and "hint:" in elsewhere.stderr


def test_init_asks_for_what_is_missing(cli: Cli) -> None:
    cli.ok("init", "--name", "asked", "--producer-token", SECRET, "--worker-token", SECRET,
           input="http://127.0.0.1:7000\ny\n")
    saved = config(cli)
    assert saved["currentProfile"] == "asked"
    assert saved["profiles"]["asked"] == {"baseUrl": "http://127.0.0.1:7000",
                                          "producerToken": SECRET, "workerToken": SECRET,
                                          "admin": True}
