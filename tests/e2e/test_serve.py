"""``codeq serve`` as a user runs it: bad configuration, several processes, ``python -m``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from codeq.testing.server import ServerProcess


def run_serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codeq", "serve", "--data-dir", str(tmp_path),
                           "--port", "1", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          check=False)


def test_bad_configuration_exits_2_with_the_key(tmp_path: Path) -> None:
    config = tmp_path / "codeq.yaml"
    config.write_text("maxBodyBytes: -5\n")
    done = run_serve(tmp_path, "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.startswith("codeq: configuration key 'maxBodyBytes'")
    assert "Traceback" not in done.stderr


def test_unknown_storage_and_policy_exit_2(tmp_path: Path) -> None:
    done = run_serve(tmp_path, "--storage", "nosuch://x")
    assert done.returncode == 2 and "no storage backend" in done.stderr
    config = tmp_path / "codeq.yaml"
    config.write_text("backoffPolicy: wobbly\n")
    done = run_serve(tmp_path, "--config", str(config))
    assert done.returncode == 2 and "wobbly" in done.stderr and "Traceback" not in done.stderr
    done = run_serve(tmp_path, "--storage", "memory://", "--workers", "2")
    assert done.returncode == 2 and "memory://" in done.stderr


def test_dev_mode_says_so(tmp_path: Path) -> None:
    with ServerProcess.start(tmp_path, storage="memory://") as server:
        assert "DEV MODE on http://127.0.0.1:" in server.logs()


def test_several_processes_share_one_port_and_store(tmp_path: Path) -> None:
    with ServerProcess.start(tmp_path, args=("--workers", "2")) as server:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(children) >= 2
        producer = server.headers("producer")
        worker = server.headers("worker", sub="multi")
        with httpx.Client(base_url=server.api_url, timeout=10) as http:
            ids = {http.post("/tasks", headers=producer,
                             json={"command": "MULTI", "payload": i}).json()["id"]
                   for i in range(10)}
            claimed = set()
            for _ in range(10):
                response = http.post("/tasks/claim", headers=worker,
                                     json={"commands": ["MULTI"], "waitSeconds": 2})
                claimed.add(response.json()["id"])
            assert claimed == ids


def test_python_dash_m_codeq() -> None:
    done = subprocess.run([sys.executable, "-m", "codeq", "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and "serve" in done.stdout
