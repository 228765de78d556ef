"""Huey's ``RedisHuey``: calling the task enqueues it; ``huey_consumer`` runs it."""

from __future__ import annotations

import os

from huey import RedisHuey

from peers import REDIS_ENV, tally
from peers._senders import send_until

huey = RedisHuey("bench", url=os.environ[REDIS_ENV])


@huey.task()
def noop(i: int) -> None:
    tally.hit()


def enqueue(n: int, until: float) -> int:
    return send_until(n, until, lambda i: noop(i))
