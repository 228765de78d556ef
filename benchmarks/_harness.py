"""Shared machinery of the benchmarks: process groups, the tally, the producer, statistics.

Every process started here gets its own session, so that stopping it also
reaches the children it forked (Celery's pool, Dramatiq's workers...): SIGTERM
to the process we started, then SIGKILL to its process group.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from peers.tally import TALLY_ENV

from codeq.testing.redis_server import server_binary as redis_binary
from codeq.testing.server import free_port

BENCH_DIR = Path(__file__).resolve().parent
STOP_TIMEOUT = 10.0
#: How often the harness looks at the tally while it waits.
POLL_SECONDS = 0.002


def bench_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment plus ``extra``, with ``benchmarks/`` importable (``peers.*``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def expand(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``$NAME`` arguments replaced by their value in ``env``."""
    return [env[a[1:]] if a.startswith("$") and a[1:] in env else a for a in argv]


class Group:
    """Processes started together (one system's workers), stopped together by pid."""

    def __init__(self, argvs: Sequence[Sequence[str]], env: Mapping[str, str], log: Path) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            for argv in argvs:
                self.processes.append(subprocess.Popen(
                    expand(argv, env), env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, cwd=BENCH_DIR, start_new_session=True))
        self.log = log

    def check_alive(self) -> None:
        dead = [p for p in self.processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a worker exited with {dead[0].returncode}; see {self.log}")

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in self.processes:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever the process left behind in its own session
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


@contextmanager
def running(argvs: Sequence[Sequence[str]], env: Mapping[str, str], log: Path) -> Iterator[Group]:
    group = Group(argvs, env, log)
    try:
        yield group
    finally:
        group.stop()


class Tally:
    """The number of no-op tasks handled so far (see ``peers.tally``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    @property
    def env(self) -> dict[str, str]:
        return {TALLY_ENV: str(self.path)}

    def count(self) -> int:
        return self.path.stat().st_size

    def wait(self, target: int, timeout: float,
             alive: Callable[[], None] = lambda: None) -> list[tuple[float, int]]:
        """Samples ``(monotonic, count)`` until ``count >= target`` or ``timeout``."""
        deadline = time.monotonic() + timeout
        samples = [(time.monotonic(), self.count())]
        checked = samples[0][0]
        while samples[-1][1] < target and samples[-1][0] < deadline:
            time.sleep(POLL_SECONDS)
            now = time.monotonic()
            samples.append((now, self.count()))
            if now - checked > 1.0:
                alive()
                checked = now
        return samples


@dataclass(frozen=True)
class Produced:
    start: float
    end: float
    sent: int
    cpu: float  # seconds of CPU the producer used

    @property
    def rate(self) -> float:
        return self.sent / (self.end - self.start)


class Producer:
    """``python -m peers.produce MODULE N SECONDS`` in the background."""

    def __init__(self, module: str, tasks: int, seconds: float, env: Mapping[str, str],
                 log: Path) -> None:
        self.log = log
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "peers.produce", module, str(tasks), str(seconds)],
                env=dict(env), stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                cwd=BENCH_DIR)

    def result(self, timeout: float = 600) -> Produced:
        out, _ = self.process.communicate(timeout=timeout)
        if self.process.returncode != 0:
            raise RuntimeError(f"the producer failed; see {self.log}")
        stamps = json.loads(out.decode().strip().splitlines()[-1])
        return Produced(stamps["start"], stamps["end"], stamps["sent"], stamps["cpu"])


@dataclass(frozen=True)
class Spread:
    """Median and range of repeated measurements of one rate."""

    values: tuple[float, ...]
    capped: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def cell(self) -> str:
        if not self.values:
            return "-"
        mark = "*" if self.capped else ""
        if len(self.values) == 1:
            return f"{self.values[0]:,.0f}{mark}"
        return f"{self.median:,.0f}{mark} ({min(self.values):,.0f}-{max(self.values):,.0f})"


def spread(values: Sequence[float | None], capped: bool = False) -> Spread:
    return Spread(tuple(v for v in values if v is not None), capped)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def cpu_seconds(roots: Sequence[int]) -> float:
    """User + system CPU time of ``roots`` and all their living descendants (from /proc)."""
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    total, todo, seen = 0.0, list(roots), set()
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += used.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


@contextmanager
def echo_server() -> Iterator[tuple[str, int]]:
    """The do-nothing app (``peers/echo_app.py``) under uvicorn, as ``codeq serve`` runs
    (httptools, uvloop), answering on 127.0.0.1: its base URL and pid."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "peers.echo_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--http", "httptools", "--loop", "uvloop",
         "--log-level", "warning", "--no-access-log"],
        env=bench_env({}), cwd=BENCH_DIR, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the echo app did not start") from None
                time.sleep(0.1)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(10)


def header(title: str, *lines: str) -> str:
    """What ran, when, how, and on what: the first lines of every result file."""
    redis = subprocess.run([redis_binary(), "--version"], capture_output=True, text=True,
                           check=False).stdout.split()[2:3]
    return "\n".join([
        f"{title}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"command: python benchmarks/{Path(sys.argv[0]).name} {shlex.join(sys.argv[1:])}",
        (f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}, redis-server {' '.join(redis)}, "
        f"load average at the end {os.getloadavg()[0]:.1f}"),
        *lines])


def publish(report: str, output: Path) -> None:
    """Print a benchmark's report and write it to ``output`` (its results file)."""
    print(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)


def percentile(samples: Sequence[float], p: int) -> float:
    """The p-th percentile (1..99) of ``samples``."""
    return statistics.quantiles(samples, n=100)[p - 1]
