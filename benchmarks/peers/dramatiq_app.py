"""Dramatiq with its Redis broker; ``actor.send`` and the ``dramatiq`` worker."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from peers import REDIS_ENV, tally
from peers._senders import send_until

dramatiq.set_broker(RedisBroker(url=os.environ[REDIS_ENV]))


@dramatiq.actor(max_retries=0)
def noop(i: int) -> None:
    tally.hit()


def enqueue(n: int, until: float) -> int:
    return send_until(n, until, lambda i: noop.send(i))
