"""Input that no request can carry: a clean message and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.cli.conftest import Cli


def _clean(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(("payload", "word"), [('{"x": NaN}', "NaN"), ("[Infinity]", "Infinity"),
                                               ("[-Infinity]", "Infinity"),
                                               ("[1e400]", "1e400")])
def test_payload_without_a_json_form_is_refused(cli: Cli, payload: str, word: str) -> None:
    done = cli.run("task", "create", "-e", "BADIN", "--payload", payload, "-o", "json")
    _clean(done, 2, "not valid JSON", word)


def test_payload_with_a_lone_surrogate_is_refused(cli: Cli) -> None:
    done = cli.run("task", "create", "-e", "BADIN", "--payload", '"\\ud800"', "-o", "json")
    _clean(done, 2, "cannot send", "surrogates")


@pytest.mark.parametrize("args", [("task", "create", "-e", "BADIN", "--delay-seconds", "nan"),
                                  ("task", "create", "-e", "BADIN", "--delay-seconds", "inf"),
                                  ("task", "wait", "00000000-0000-4000-8000-000000000000",
                                   "--timeout", "nan"),
                                  ("worker", "start", "-e", "BADIN", "--ack", "complete",
                                   "--lease-seconds", "nan"),
                                  ("worker", "start", "-e", "BADIN", "--ack", "complete",
                                   "--lease-seconds", "-5"),
                                  ("worker", "start", "-e", "BADIN", "--ack", "complete",
                                   "--wait-seconds", "nan"),
                                  ("worker", "start", "-e", "BADIN", "--ack", "nack",
                                   "--nack-delay", "inf")])
def test_seconds_must_be_finite(cli: Cli, args: tuple[str, ...]) -> None:
    done = cli.run(*args, timeout=20)
    _clean(done, 2, "Invalid value")


@pytest.mark.parametrize("task_id", [".", ".."])
def test_dot_ids_reach_the_task_route(cli: Cli, task_id: str) -> None:
    """Sent bare, ``tasks/.`` was normalised into the task list and printed as a task."""
    done = cli.run("task", "get", task_id, "-o", "json")
    _clean(done, 1, "is not a task id", "HTTP 400")


def test_empty_id_is_bad_usage(cli: Cli) -> None:
    _clean(cli.run("task", "get", "", "-o", "json"), 2, "must not be empty")
    _clean(cli.run("task", "cancel", "", "-o", "json"), 2, "must not be empty")


@pytest.mark.parametrize("token", ["t\u00f6k", "a\nb"])
def test_token_a_header_cannot_carry(cli: Cli, token: str) -> None:
    done = cli.run("--producer-token", token, "task", "list", "-o", "json")
    _clean(done, 2, "the token holds characters")
    assert "cannot reach" not in done.stderr


@pytest.fixture
def not_codeq() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every GET with 200 and an HTML page."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = b"<html><body>hello</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_answer_that_is_not_json_is_reported(cli: Cli, not_codeq: str) -> None:
    """A base URL that is not a codeq server answering 200: a message, not a traceback."""
    done = cli.run("--base-url", not_codeq, "--producer-token", "t", "task", "list", "-o",
                   "json")
    _clean(done, 1, "unexpected answer", "<html>", "is the base URL a codeq server?")


@pytest.mark.parametrize(("url", "words"), [
    ("localhost:8080", "needs http:// or https://"),
    ("ftp://example.com", "needs http:// or https://"),
    ("http://[::1", "is not a URL"),  # was an InvalidURL traceback
    ("http://127.0.0.1:99999", "Port out of range"),
    ("http://127.0.0.1:8080/a\nb", "is not a URL"),
    ("http://127.0.0.1:8080/?x", "query"),  # every call went to "/?x/v1/codeq/..."
])
def test_base_url_that_cannot_be_one(cli: Cli, url: str, words: str) -> None:
    done = cli.run("--base-url", url, "--producer-token", "t",
                   "task", "list", "-o", "json")
    _clean(done, 2, "base URL", words)
    assert "hint: is the server running" not in done.stderr


@pytest.mark.parametrize(("text", "words"), [
    ("profiles: {default: [1]}\n", "profile default must map"),
    ("profiles: {default: x}\n", "profile default must map"),
    # YAML reads 0123 as the octal number 83: the token sent would have been "83".
    ("profiles: {default: {producerToken: 0123}}\n", "producerToken of profile default"),
    # A quoted 'no' is a true string: X-Role: ADMIN would have been sent.
    ("profiles: {default: {admin: 'no'}}\n", "admin of profile default"),
    ("currentProfile: [a]\n", "currentProfile"),
    ("profiles: {default: {login: {request: {url: 'http://127.0.0.1:9/', headers: [a]}}}}\n",
     "login of profile default"),
])
def test_malformed_profile_file_is_reported(cli: Cli, text: str, words: str) -> None:
    (cli.home / ".codeq").mkdir()
    (cli.home / ".codeq" / "config.yaml").write_text(text)
    for args in (("task", "list", "-o", "json"), ("auth", "show", "-o", "json"),
                 ("auth", "login", "--email", "a", "--password", "b")):
        _clean(cli.run(*args), 1, "config.yaml", words)


@pytest.mark.parametrize("url", ["redis://h:99999", "redis://:secret@h:99999/0"])
def test_serve_with_an_unusable_store_url(cli: Cli, url: str) -> None:
    done = cli.run("serve", "--storage", url, "--port", "0", "--data-dir", str(cli.cwd / "d"))
    _clean(done, 2, "configuration key 'storage'", "not usable", "Port out of range")
    assert "secret" not in done.stderr


def test_status_is_not_case_folded_from_other_scripts(cli: Cli) -> None:
    """``"ın_progress".upper()`` is ``IN_PROGRESS`` (dotless ı): it listed those tasks."""
    done = cli.run("task", "list", "--status", "\u0131n_progress", "-o", "json")
    _clean(done, 1, "status must be one of", "HTTP 400")
    assert cli.json("task", "list", "--status", "in_progress")["tasks"] is not None


def test_payload_that_is_not_utf8(cli: Cli) -> None:
    """A file that is not UTF-8 was a UnicodeDecodeError traceback."""
    (cli.cwd / "latin1.json").write_bytes(b'"caf\xe9"')
    done = cli.run("task", "create", "-e", "BADIN", "--payload", "@latin1.json", "-o", "json")
    _clean(done, 2, "latin1.json is not UTF-8 text")
    (cli.cwd / "utf8.json").write_bytes('"caf\u00e9"'.encode())
    assert cli.json("task", "create", "-e", "BADIN", "--payload", "@utf8.json")["payload"] == \
        "caf\u00e9"


@pytest.mark.parametrize("events", ["", " , "])
def test_worker_events_that_name_no_command(cli: Cli, events: str) -> None:
    """An empty --events (e.g. from an unset variable) claimed every command."""
    cli.json("task", "create", "-e", "BYSTANDER")
    done = cli.run("worker", "start", "--events", events, "--ack", "complete", timeout=20)
    _clean(done, 2, "--events", "names no command")
    assert "claimed" not in done.stderr
