"""The systems compared with codeq: each runs the same no-op task on the same Redis.

Every app module (``peers.<name>_app``) defines a no-op task that bumps the
tally, and ``enqueue(n)`` that sends ``n`` of them with the library's ordinary
producer API. ``PEERS`` says how to start each library's own documented worker,
sized for a 2-core machine. The modules read the broker URL from
``BENCH_REDIS_URL`` and are imported only in the processes that run them.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

REDIS_ENV = "BENCH_REDIS_URL"
CORES = 2


def script(name: str) -> str:
    """A console script installed next to this Python (the venv's ``bin``)."""
    return str(Path(sys.executable).parent / name)


@dataclass(frozen=True)
class Peer:
    name: str
    packages: tuple[str, ...]
    module: str
    #: One argv per worker process the library's docs would start on 2 cores.
    workers: tuple[tuple[str, ...], ...]
    sizing: str

    def missing(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]


PEERS = (
    Peer("celery", ("celery", "redis"), "peers.celery_app",
         ((script("celery"), "-A", "peers.celery_app", "worker", "--concurrency", str(CORES),
           "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
           "--without-heartbeat"),),
         "prefork, --concurrency 2"),
    Peer("rq", ("rq",), "peers.rq_app",
         ((script("rq"), "worker-pool", "--num-workers", str(CORES), "--quiet", "--url",
           "$" + REDIS_ENV),),
         "rq worker-pool -n 2 (a fork per job)"),
    Peer("dramatiq", ("dramatiq", "redis"), "peers.dramatiq_app",
         ((script("dramatiq"), "peers.dramatiq_app", "--processes", str(CORES), "--threads",
           "8"),),
         "--processes 2 --threads 8"),
    Peer("arq", ("arq",), "peers.arq_app",
         tuple((script("arq"), "peers.arq_app.WorkerSettings") for _ in range(CORES)),
         "2 worker processes, max_jobs 10"),
    Peer("huey", ("huey", "redis"), "peers.huey_app",
         ((script("huey_consumer"), "peers.huey_app.huey", "--workers", str(CORES),
           "--worker-type", "process", "--quiet"),),
         "huey_consumer -k process -w 2"),
    Peer("taskiq", ("taskiq", "taskiq_redis"), "peers.taskiq_app",
         ((script("taskiq"), "worker", "peers.taskiq_app:broker", "--workers", str(CORES),
           "--log-level", "WARNING"),),
         "taskiq worker --workers 2, RedisStreamBroker"),
)
