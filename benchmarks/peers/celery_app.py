"""Celery with its Redis broker; results ignored (nothing reads them)."""

from __future__ import annotations

import os

from celery import Celery

from peers import REDIS_ENV, tally
from peers._senders import send_until

app = Celery("bench", broker=os.environ[REDIS_ENV])
app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True,
                worker_hijack_root_logger=False)


@app.task(name="noop")
def noop(i: int) -> None:
    tally.hit()


def enqueue(n: int, until: float) -> int:
    return send_until(n, until, lambda i: noop.delay(i))
