"""The store's own ceiling for one transition: the Redis claim script alone, no HTTP.

A command is filled with ready tasks, its ids are read in claim order, and the
``claim`` script (exactly the call ``RedisStorage.claim`` makes for one task)
is then run once per task: one EVALSHA at a time from one connection
(``sequential``: round-trip bound), and ``PIPELINE`` calls per round trip
(``pipelined``: what Redis itself sustains). Keys and arguments are built
before the clock starts, so the figure is the store's, not this process's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from claim_latency import fill
from codeq_redis import RedisStorage
from codeq_redis.keys import QueueKeys
from codeq_redis.store import _Claimer

COMMAND = "bench.limit"
PIPELINE = 100


@dataclass(frozen=True)
class Limit:
    sequential: float
    pipelined: float


async def measure(url: str, tasks: int) -> Limit:
    """Claims per second, sequential and pipelined, over ``tasks`` ready tasks (fills and
    leaves ``COMMAND`` behind: run it on a store that is flushed afterwards)."""
    store = RedisStorage(url)
    await store.open()
    try:
        await fill(store, COMMAND, tasks)
        ids = [i.decode() if isinstance(i, bytes) else i
               for i in await store.client.zrange(QueueKeys(COMMAND).ready, 0, -1)]
        now = time.time()
        sha = store._scripts.by_name["claim"].sha
        claimer = _Claimer("bench", str(now + 3600), 1)
        calls = [store._claim_calls(COMMAND, [task_id], [claimer], now)[0][1:]
                 for task_id in ids]
        half = len(calls) // 2
        started = time.perf_counter()
        for keys, args in calls[:half]:
            await store.client.evalsha(sha, len(keys), *keys, *args)
        sequential = half / (time.perf_counter() - started)
        rest = calls[half:]
        started = time.perf_counter()
        for at in range(0, len(rest), PIPELINE):
            pipe = store.client.pipeline(transaction=False)
            for keys, args in rest[at:at + PIPELINE]:
                pipe.evalsha(sha, len(keys), *keys, *args)
            replies = await pipe.execute()
            if any(len(reply) != 2 for reply in replies):
                raise RuntimeError("a pipelined claim did not take its task")
        pipelined = len(rest) / (time.perf_counter() - started)
        if (await store.queue_stats(COMMAND, now=time.time())).ready:
            raise RuntimeError("the claim loop left ready tasks behind")
        return Limit(sequential, pipelined)
    finally:
        await store.close()
