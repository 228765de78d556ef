"""The Redis soak test at ten times its CI size: 200,000 tasks, two store instances.

Runs ``tests/redis/test_soak.py`` with ``CODEQ_SOAK_TASKS`` (default 200,000):
random complete / nack / abandon / lease expiry across two stores on one
private redis-server; fails unless every task is completed exactly once.

    python benchmarks/redis_soak.py [tasks]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    tasks = sys.argv[1] if len(sys.argv) > 1 else "200000"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/redis/test_soak.py", "-q", "-p",
         "no:cacheprovider", "-o", "timeout=3600"],
        cwd=ROOT, env={**os.environ, "CODEQ_SOAK_TASKS": tasks}, check=False)
    print(f"{tasks} tasks: {'ok' if result.returncode == 0 else 'FAILED'} in "
          f"{time.monotonic() - started:.0f} s")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
