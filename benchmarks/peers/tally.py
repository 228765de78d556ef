"""A completion counter every benchmarked handler bumps: one byte appended to a file.

``O_APPEND`` writes of one byte are atomic, so processes, forked children and
threads can all count into the same file without a lock, and the harness
reads the count as the file's size. It costs one syscall per task, the same
for every system measured. The file is named by ``BENCH_TALLY``.
"""

from __future__ import annotations

import os

TALLY_ENV = "BENCH_TALLY"
_fd: int | None = None


def hit() -> None:
    global _fd
    if _fd is None:
        _fd = os.open(os.environ[TALLY_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b".")
