"""Sampling profiles of running processes with py-spy, summarised as top functions.

``Recording`` runs ``py-spy record --format raw`` (collapsed stacks) on a
process and its children until stopped. ``summary`` reads such a file and
lists the functions with the most samples on top of the stack (self) and
anywhere on it (inclusive), as shares of all samples.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections import Counter
from pathlib import Path

from _harness import BENCH_DIR
from peers import script

REPO = BENCH_DIR.parent

#: Functions that wait: a sample on top of one of these is an idle thread, not a cost.
IDLE = frozenset({"select", "poll", "epoll_wait", "wait", "sleep", "accept", "recv",
                  "recv_into", "_wait_for_tstate_lock", "get", "acquire"})
OURS = re.compile(r"\((codeq|plugins)/")
FRAME = re.compile(r"^(?P<fn>.+?) \((?P<file>[^:]+)(?::\d+)?\)$")


class Recording:
    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [script("py-spy"), "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
             "--rate", "200", "--nonblocking", "--full-filenames", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _function(frame: str) -> str:
    found = FRAME.match(frame.strip())
    return found["fn"] if found else frame.strip()


def _short(frame: str) -> str:
    """``fn (/abs/path/file.py:12)`` -> ``fn (codeq/file.py)``: the path in the
    repository, else the last folder and file name."""
    found = FRAME.match(frame.strip())
    if not found:
        return frame.strip()
    file = Path(found["file"])
    where = (str(file.relative_to(REPO)) if file.is_relative_to(REPO)
             else "/".join(file.parts[-2:]))
    return f"{found['fn']} ({where})"


def summary(path: Path, top: int = 15) -> str:
    """Top functions by self and inclusive samples, idle (waiting) stacks left out."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    busy = idle = 0
    if not path.exists():
        return f"(no profile at {path})"
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        n = int(count)
        if _function(frames[-1]).rpartition(".")[2] in IDLE:
            idle += n
            continue
        busy += n
        own[_short(frames[-1])] += n
        for name in {_short(f) for f in frames}:
            inclusive[name] += n
    if not busy:
        return f"(no busy samples in {path})"
    lines = [(f"{busy} busy samples ({busy / (busy + idle):.0%} of all; idle = waiting in "
             f"{'/'.join(sorted(IDLE))}, left out)"), "  self:"]
    lines += [f"    {n / busy:6.1%}  {name}" for name, n in own.most_common(top)]
    ours = [(name, n) for name, n in inclusive.most_common()
            if OURS.search(name)][:top]
    lines.append("  inclusive, codeq's own functions:")
    lines += [f"    {n / busy:6.1%}  {name}" for name, n in ours]
    return "\n".join(lines)
