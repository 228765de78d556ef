"""taskiq with taskiq-redis's ``RedisStreamBroker``: ``task.kiq`` and ``taskiq worker``."""

from __future__ import annotations

import asyncio
import os

from taskiq_redis import RedisStreamBroker

from peers import REDIS_ENV, tally
from peers._senders import send_all

broker = RedisStreamBroker(url=os.environ[REDIS_ENV])


@broker.task(task_name="noop")
async def noop(i: int) -> None:
    tally.hit()


async def _enqueue(n: int, until: float) -> int:
    await broker.startup()
    try:
        return await send_all(n, until, noop.kiq)
    finally:
        await broker.shutdown()


def enqueue(n: int, until: float) -> int:
    return asyncio.run(_enqueue(n, until))
