"""KVRocks as a drop-in: the plugin sends only commands Apache KVRocks supports.

The contract suite runs (in a subprocess, pointed at a private server through
``CODEQ_TEST_REDIS_URL``) while MONITOR records every command the server
executes, including those run inside the Lua scripts; each must be in
``kvrocks_commands.txt``, derived from KVRocks' command table. Only the
10,000-task load test (marked slow) is left out: it repeats the 1,000-task one
on a larger scale, and MONITOR slows the server down too much for it.
"""

from __future__ import annotations

import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
from collections import Counter

import pytest

from codeq.testing.redis_server import RedisCluster, RedisServer

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent.parent
#: Commands whose first argument is a subcommand worth checking on its own.
CONTAINERS = {"CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "OBJECT", "PUBSUB",
              "SCRIPT", "XINFO", "XGROUP", "MEMORY"}
#: Never on the hot path, whatever the server supports (issue 3).
FORBIDDEN = {"BRPOPLPUSH", "SPUBLISH", "MULTI", "EXEC", "OBJECT", "WATCH"}
TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"')


def supported() -> set[str]:
    lines = (HERE / "kvrocks_commands.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


class Monitor:
    """MONITOR on one server in a thread; counts ``COMMAND`` / ``COMMAND SUB`` names."""

    def __init__(self, port: int) -> None:
        self.seen: Counter[str] = Counter()
        self.lua: Counter[str] = Counter()
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
        self._file = self._sock.makefile("rb")
        assert self._file.readline().strip() == b"+OK"
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self._file:
                line = raw.decode(errors="replace")
                tokens = TOKEN.findall(line)
                if not tokens:
                    continue
                name = tokens[0].upper()
                if name in CONTAINERS and len(tokens) > 1:
                    name = f"{name} {tokens[1].upper()}"
                self.seen[name] += 1
                if "[0 lua]" in line or " lua]" in line:
                    self.lua[name] += 1
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._file.close()
        self._sock.close()


def run_contract_suite(url: str, scheme_filter: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEQ_TEST_REDIS_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/contract", "-q", "-p", "no:cacheprovider",
         "-k", scheme_filter, "-m", "not slow", "-x"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)


def check(monitors: list[Monitor], result: subprocess.CompletedProcess[str]) -> None:
    for monitor in monitors:
        monitor.stop()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
    seen: Counter[str] = sum((m.seen for m in monitors), Counter())
    lua: Counter[str] = sum((m.lua for m in monitors), Counter())
    # The recording is real: scripts ran, and their inner commands were seen.
    assert seen["EVALSHA"] > 100 and lua["ZADD"] > 100 and lua["PUBLISH"] > 0
    print("commands seen:", " ".join(f"{name}={n}" for name, n in sorted(seen.items())))
    unsupported = sorted(set(seen) - supported())
    assert unsupported == [], f"commands KVRocks does not support: {unsupported}"
    assert sorted(set(seen) & FORBIDDEN) == []


@pytest.mark.slow
def test_the_contract_suite_uses_only_kvrocks_commands(tmp_path: pathlib.Path) -> None:
    with RedisServer.start(tmp_path / "monitored") as server:
        monitor = Monitor(server.port)
        result = run_contract_suite(server.url, "redis and not rediss and not cluster")
        check([monitor], result)


@pytest.mark.slow
def test_the_contract_suite_on_a_cluster_uses_only_kvrocks_commands(
        tmp_path: pathlib.Path) -> None:
    with RedisCluster.start(tmp_path / "monitored") as cluster:
        monitors = [Monitor(node.port) for node in cluster.nodes]
        result = run_contract_suite(cluster.url, "cluster")
        check(monitors, result)
