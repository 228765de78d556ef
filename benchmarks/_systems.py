"""The systems under test, behind one small interface the phases drive.

``CodeqSystem`` is a real ``codeq serve`` (1 or 2 processes, SQLite or the
shared private Redis) with ``codeq worker start`` processes; ``PeerSystem`` is
one peer library on the same Redis with its own worker. The harness never
imports a peer library itself: producers and workers are separate processes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from peers import CORES, REDIS_ENV, Peer

from codeq.testing.redis_server import RedisServer, command
from codeq.testing.server import ServerProcess

#: Worker processes per system: one per core.
CODEQ_WORKERS = CORES
#: Tasks each codeq worker process holds at once. One-task claims: 64 is plenty (four claim
#: loops, each one call at a time). Batch claims: a claim takes up to the free slots and
#: results go back together; for a no-op handler the worker is sized as
#: docs/operations.md advises for quick handlers (two batches of 500, the producer's size,
#: so the next claim is out while a batch's results go back).
CODEQ_CONCURRENCY = {"single": 64, "batch": 1024}
SETTLE_POLL = 0.005
#: A loaded 2-core machine can take this long to start two server processes.
SERVER_START_TIMEOUT = 120.0


class System(Protocol):
    kind: str
    redis: RedisServer
    name: str
    store: str
    servers: str
    module: str
    sizing: str

    def session(self, run: int) -> AbstractContextManager[None]: ...
    def env(self, phase: str) -> dict[str, str]: ...
    def workers(self, phase: str) -> list[list[str]]: ...
    def reset(self) -> None: ...
    def server_pids(self) -> dict[str, int]: ...
    def settle(self, phase: str, timeout: float) -> None: ...


def flush(redis: RedisServer) -> None:
    reply = command(redis.port, "FLUSHALL")
    if reply != "OK":
        raise RuntimeError(f"FLUSHALL answered {reply}")


@dataclass
class CodeqSystem:
    """``codeq serve`` + the worker runtime; each phase uses its own command."""

    store: str  # "sqlite" | "redis"
    api: str  # "single" | "batch"
    server_processes: int
    redis: RedisServer
    root: Path
    module: str = "peers.codeq_app"
    kind: str = "codeq"
    server: ServerProcess | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"codeq {self.api}"

    @property
    def servers(self) -> str:
        return f"{self.server_processes} proc"

    @property
    def sizing(self) -> str:
        return (f"{CODEQ_WORKERS} x codeq worker --quiet --concurrency "
                f"{CODEQ_CONCURRENCY[self.api]}" + (" --batch" if self.api == "batch" else ""))

    @contextmanager
    def session(self, run: int) -> Iterator[None]:
        storage = None
        if self.store == "redis":
            flush(self.redis)
            storage = self.redis.url
        data_dir = self.root / f"codeq-{self.store}-{self.api}-{self.server_processes}p-{run}"
        args = ("--workers", str(self.server_processes)) if self.server_processes > 1 else ()
        with ServerProcess.start(data_dir, storage=storage, args=args,
                                 timeout=SERVER_START_TIMEOUT) as server:
            self.server = server
            try:
                yield
            finally:
                self.server = None

    def _server(self) -> ServerProcess:
        assert self.server is not None, "outside a session"
        return self.server

    @staticmethod
    def command(phase: str) -> str:
        return f"bench.{phase}"

    def env(self, phase: str) -> dict[str, str]:
        server = self._server()
        return {"BENCH_CODEQ_URL": server.base_url, "BENCH_CODEQ_TOKEN": server.token("producer"),
                "BENCH_CODEQ_COMMAND": self.command(phase), "BENCH_CODEQ_API": self.api,
                "CODEQ_BASE_URL": server.base_url}

    def workers(self, phase: str) -> list[list[str]]:
        server = self._server()
        argvs = []
        for i in range(CODEQ_WORKERS):
            token = server.token("worker", sub=f"bench-worker-{i}")
            argvs.append([sys.executable, "-m", "codeq", "--worker-token", token, "worker",
                          "start", "--quiet", "--events", self.command(phase), "--handler",
                          "peers.codeq_app:handle",
                          "--concurrency", str(CODEQ_CONCURRENCY[self.api]),
                          "--lease-seconds", "300", "--wait-seconds", "5", "--abandon-on-stop",
                          *(["--batch"] if self.api == "batch" else [])])
        return argvs

    def reset(self) -> None:
        """Nothing to clear: the next phase uses another command."""

    def server_pids(self) -> dict[str, int]:
        return {"server": self._server().pid}

    def settle(self, phase: str, timeout: float) -> None:
        """Wait until the server holds nothing of ``phase`` ready or in progress
        (the tally counts handler calls; a cycle ends with the stored result)."""
        server = self._server()
        url = f"{server.api_url}/admin/queues/{self.command(phase)}"
        deadline = time.monotonic() + timeout
        with httpx.Client(headers=server.headers("admin"), timeout=5) as client:
            while time.monotonic() < deadline:
                stats = client.get(url).raise_for_status().json()
                if stats["ready"] + stats["inProgress"] + stats["delayed"] == 0:
                    return
                time.sleep(SETTLE_POLL)
        raise TimeoutError(f"{self.name}: tasks of {phase} still open after {timeout:.0f} s")


@dataclass
class PeerSystem:
    """One peer library on the shared Redis, flushed between phases."""

    peer: Peer
    redis: RedisServer
    store: str = "redis"
    servers: str = "-"
    kind: str = "peer"

    @property
    def name(self) -> str:
        return self.peer.name

    @property
    def module(self) -> str:
        return self.peer.module

    @property
    def sizing(self) -> str:
        return self.peer.sizing

    @contextmanager
    def session(self, run: int) -> Iterator[None]:
        flush(self.redis)
        yield

    def env(self, phase: str) -> dict[str, str]:
        return {REDIS_ENV: self.redis.url}

    def workers(self, phase: str) -> list[list[str]]:
        return [list(argv) for argv in self.peer.workers]

    def reset(self) -> None:
        flush(self.redis)

    def server_pids(self) -> dict[str, int]:
        return {}

    def settle(self, phase: str, timeout: float) -> None:
        """The tally is the end: these libraries acknowledge around the handler."""
