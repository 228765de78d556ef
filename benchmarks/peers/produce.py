"""``python -m peers.produce MODULE N SECONDS``: run ``MODULE.enqueue`` for at most N tasks
and SECONDS seconds, then print when it ran and how many it sent.

Prints one JSON line ``{"start": s, "end": s, "sent": n, "cpu": s}``: times
in ``time.monotonic()`` seconds (one clock for every process of the machine),
so the harness can line the producer up with the tally it watches, and the
CPU time the sending took.
"""

from __future__ import annotations

import importlib
import json
import sys
import time


def main(module: str, n: int, seconds: float) -> None:
    enqueue = importlib.import_module(module).enqueue
    cpu = time.process_time()
    start = time.monotonic()
    sent = enqueue(n, start + seconds)
    end = time.monotonic()
    print(json.dumps({"start": start, "end": end, "sent": sent,
                      "cpu": time.process_time() - cpu}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
