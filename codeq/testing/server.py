"""A real ``codeq serve`` process for tests, on 127.0.0.1 with its own data directory.

Shipped for plugin authors (and used by codeq's own API tests)::

    with ServerProcess.start(tmp_path, config={"maxBodyBytes": 65536}) as server:
        token = server.token("producer")
        httpx.post(f"{server.api_url}/tasks", json={...},
                   headers={"Authorization": f"Bearer {token}"})

The server runs in dev mode, so ``token(role)`` mints tokens with the dev key
it trusts. Its output goes to ``<data_dir>/server.log``; when it does not come
up, the error carries that log. It is stopped by its pid: SIGTERM, then
SIGKILL after a timeout. ``kill()`` is ``kill -9``, for crash tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from codeq.core.config import CONFIG_ENV, KEYS, env_names
from codeq.devkeys import DevRole, mint_token

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    """This process's environment minus every variable codeq's settings would read,
    so that a developer's ``PORT`` or ``CODEQ_STORAGE`` cannot leak into a test."""
    drop = {CONFIG_ENV, *(name for key in KEYS for name in env_names(key))}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra or {})
    return env


@dataclass
class ServerProcess:
    data_dir: Path
    storage: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_offset: int = field(default=0)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1/codeq"

    def token(self, role: DevRole, **kwargs: Any) -> str:
        """A dev token this server trusts; see ``codeq.devkeys.mint_token`` for ``kwargs``."""
        return mint_token(self.data_dir, role, **kwargs)

    def headers(self, role: DevRole, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, **kwargs)}"}

    def logs(self) -> str:
        """What the server wrote to stdout and stderr since it was started."""
        with self.log_path.open("rb") as fh:
            fh.seek(self._log_offset)
            return fh.read().decode(errors="replace")

    @classmethod
    @contextmanager
    def start(cls, data_dir: Path, *, storage: str | None = None,
              config: Mapping[str, Any] | None = None, args: tuple[str, ...] = (),
              env: Mapping[str, str] | None = None,
              timeout: float = START_TIMEOUT) -> Iterator[ServerProcess]:
        """Start a server (default store: SQLite in ``data_dir``), stop it on exit."""
        server = cls.launch(data_dir, storage=storage, config=config, args=args, env=env,
                            timeout=timeout)
        try:
            yield server
        finally:
            server.stop()

    @classmethod
    def launch(cls, data_dir: Path, *, storage: str | None = None,
               config: Mapping[str, Any] | None = None, args: tuple[str, ...] = (),
               env: Mapping[str, str] | None = None, port: int | None = None,
               timeout: float = START_TIMEOUT) -> ServerProcess:
        """Start a server and wait for ``/healthz``; the caller must ``stop()`` it.

        ``port`` pins the port (to restart a server where its clients expect it);
        by default a free one is picked.
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        storage = storage or f"sqlite:///{data_dir / 'codeq.db'}"
        config_file = data_dir / "codeq-test.yaml"
        config_file.write_text(yaml.safe_dump(dict(config or {})))
        log_path = data_dir / "server.log"
        last_error = ""
        chosen = port
        for _ in range(1 if chosen else 3):  # a free port can be taken before the bind
            port = chosen or free_port()
            offset = log_path.stat().st_size if log_path.exists() else 0
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "codeq", "serve", "--config", str(config_file),
                     "--storage", storage, "--data-dir", str(data_dir), "--host", "127.0.0.1",
                     "--port", str(port), *args],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=_clean_environment(env))
            server = cls(data_dir=data_dir, storage=storage, port=port, process=process,
                         log_path=log_path, _log_offset=offset)
            if server._wait_healthy(timeout):
                return server
            server.stop()
            last_error = server.logs()
            if "address already in use" not in last_error.lower():
                break
        message = f"codeq serve did not become healthy; its log:\n{last_error}"
        print(message, file=sys.stderr)
        raise RuntimeError(message)

    def _wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    if client.get(f"{self.base_url}/healthz").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        return False

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flush, as in a crash."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
