"""CLI tests drive the real ``codeq`` executable against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from codeq.testing.server import ServerProcess

CODEQ = str(Path(sys.executable).with_name("codeq"))
RUN_TIMEOUT = 60.0


def cli_env(home: Path, server: ServerProcess | None, **extra: str) -> dict[str, str]:
    """A clean environment: a private HOME, no CODEQ_* from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEQ_")}
    env.update(HOME=str(home), COLUMNS="200", NO_COLOR="1")
    if server is not None:
        env.update(CODEQ_BASE_URL=server.base_url, CODEQ_DATA_DIR=str(server.data_dir))
    env.update(extra)
    return env


@dataclass
class Cli:
    """Runs ``codeq`` with a private HOME, pointed at ``server``."""

    home: Path
    server: ServerProcess | None
    cwd: Path

    def env(self, **extra: str) -> dict[str, str]:
        return cli_env(self.home, self.server, **extra)

    def run(self, *args: str, input: str | None = None, timeout: float = RUN_TIMEOUT,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CODEQ, *args], input=input, capture_output=True, text=True,
                              timeout=timeout, env=env or self.env(), cwd=self.cwd, check=False)

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        done = self.run(*args, **kwargs)
        assert done.returncode == 0, f"codeq {' '.join(args)}: {done.returncode}\n{done.stderr}"
        return done

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "-o", "json", **kwargs).stdout)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """A long-running ``codeq`` (a worker); stop it with ``stop``."""
        return subprocess.Popen([CODEQ, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, env=env or self.env(),
                                cwd=self.cwd)


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 20.0
         ) -> tuple[int, str]:
    """Signal a process this test started, wait for it, return its exit code and stderr."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return process.returncode, err


def until(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def logged(err: str, event: str, command: str, task_id: str) -> bool:
    """Whether the worker's stderr has the plain log line of ``event`` for this task (the
    closing summary names every event too, so looking for the bare word proves nothing)."""
    line = rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d {event} +{re.escape(command)} {task_id}\b"
    return re.search(line, err, re.MULTILINE) is not None


class Api:
    """Direct HTTP calls for checks the CLI does not make (e.g. a second worker's claim)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    def create(self, command: str, payload: Any = None, **fields: Any) -> str:
        """A task created over HTTP (quicker than the CLI when the CLI is not under test)."""
        r = httpx.post(f"{self.server.api_url}/tasks", headers=self.server.headers("producer"),
                       json={"command": command, "payload": payload, **fields})
        r.raise_for_status()
        return str(r.json()["id"])

    def task(self, task_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.server.api_url}/tasks/{task_id}", params={"history": "true"},
                      headers=self.server.headers("producer"))
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def claim(self, command: str, sub: str = "other-worker") -> dict[str, Any] | None:
        r = httpx.post(f"{self.server.api_url}/tasks/claim", json={"commands": [command]},
                       headers=self.server.headers("worker", sub=sub))
        r.raise_for_status()
        return None if r.status_code == 204 else r.json()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the CLI tests (start-up costs seconds); each test uses its own commands."""
    with ServerProcess.start(tmp_path_factory.mktemp("server"), storage="memory://") as running:
        yield running


@pytest.fixture
def cli(tmp_path: Path, server: ServerProcess) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home=home, server=server, cwd=tmp_path)


@pytest.fixture
def api(server: ServerProcess) -> Api:
    return Api(server)
