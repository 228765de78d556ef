"""RQ with its defaults: ``Queue.enqueue`` and ``rq worker-pool``."""

from __future__ import annotations

import os

from redis import Redis
from rq import Queue

from peers import REDIS_ENV, tally
from peers._senders import send_until


def noop(i: int) -> None:
    tally.hit()


def enqueue(n: int, until: float) -> int:
    queue = Queue(connection=Redis.from_url(os.environ[REDIS_ENV]))
    return send_until(n, until, lambda i: queue.enqueue(noop, i))
