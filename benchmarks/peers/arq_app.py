"""arq: ``ArqRedis.enqueue_job`` and the ``arq`` worker (one process per core)."""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from arq import create_pool
from arq.connections import RedisSettings

from peers import REDIS_ENV, tally
from peers._senders import send_all

SETTINGS = RedisSettings.from_dsn(os.environ[REDIS_ENV])


async def noop(ctx: dict[str, Any], i: int) -> None:
    tally.hit()


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop]
    redis_settings = SETTINGS


async def _enqueue(n: int, until: float) -> int:
    pool = await create_pool(SETTINGS)
    try:
        return await send_all(n, until, lambda i: pool.enqueue_job("noop", i))
    finally:
        await pool.aclose()


def enqueue(n: int, until: float) -> int:
    return asyncio.run(_enqueue(n, until))
