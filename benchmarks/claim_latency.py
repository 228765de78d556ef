"""Claim latency (p50 / p99) on the Redis store at ready-queue depth 1,000 and 500,000.

Starts a private redis-server (codeq.testing.redis_server) and times claims of
one task, topping the queue up after each claim (untimed) so the depth stays
put: first on a command with 1,000 ready tasks and nothing else stored, then,
after filling a second command to 500,000 ready tasks, on both commands in
alternating blocks (so machine noise hits both alike). A claim is the whole
store call: peek the head (one round trip) and run the claim script (one).
Exits 1 when the 500,000-deep claim is more than 1.5x slower (p50 or p99).

    python benchmarks/claim_latency.py [--claims 3000] [--big 500000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

from codeq_redis import RedisStorage

from codeq.core.domain import Task
from codeq.testing.redis_server import RedisServer

SMALL = "bench.small"
BIG = "bench.big"
FILL_BATCH = 1000
BLOCKS = 10


def task(store: RedisStorage, command: str, n: int, now: float) -> Task:
    t = Task(id=store.new_task_id(command), command=command, payload={"n": n}, priority=n % 10,
             max_attempts=5, created_at=now, updated_at=now)
    t.record(now, "created")
    return t


async def fill(store: RedisStorage, command: str, depth: int) -> float:
    started = time.perf_counter()
    current = (await store.queue_stats(command, now=time.time())).ready
    while current < depth:
        n = min(FILL_BATCH, depth - current)
        now = time.time()
        await store.create_many([task(store, command, current + i, now) for i in range(n)],
                                now=now)
        current += n
    return time.perf_counter() - started


async def measure(store: RedisStorage, command: str, claims: int) -> list[float]:
    """Time ``claims`` single-task claims; each is followed by an (untimed) create."""
    samples: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for n in range(claims):
            started = time.perf_counter_ns()
            got = await store.claim([command], worker_id="bench", lease_seconds=3600, count=1,
                                    now=time.time())
            samples.append((time.perf_counter_ns() - started) / 1e6)
            assert len(got) == 1
            await store.create(task(store, command, n, time.time()), now=time.time())
    finally:
        gc.enable()
    return samples


def summary(label: str, depth: int, samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    p50, p99 = cuts[49], cuts[98]
    print(f"{label:<34} depth {depth:>9,}  claims {len(samples):>6}  p50 {p50:6.3f} ms  "
          f"p99 {p99:6.3f} ms")
    return p50, p99


async def main(claims: int, small: int, big: int) -> int:
    with RedisServer.start(Path(tempfile.mkdtemp(prefix="codeq-bench-"))) as server:
        store = RedisStorage(server.url)
        await store.open()
        try:
            await fill(store, SMALL, small)
            await measure(store, SMALL, 200)  # warm-up
            alone = summary("small queue, nothing else stored", small,
                            await measure(store, SMALL, claims))
            seconds = await fill(store, BIG, big)
            print(f"(filled {BIG} to {big:,} ready tasks in {seconds:.0f} s)")
            await asyncio.sleep(2)  # let Redis finish rehashing its keyspace after the bulk load
            await measure(store, BIG, 200)
            # Alternate blocks so that both depths see the same machine noise.
            both: dict[str, list[float]] = {SMALL: [], BIG: []}
            for _ in range(BLOCKS):
                for command in (SMALL, BIG):
                    both[command] += await measure(store, command, claims // BLOCKS)
            near = summary("small queue, next to the big one", small, both[SMALL])
            far = summary("big queue", big, both[BIG])
            depth = (await store.queue_stats(BIG, now=time.time())).ready
        finally:
            await store.close()
    print(f"big / small, measured side by side: p50 {far[0] / near[0]:.2f}x  "
          f"p99 {far[1] / near[1]:.2f}x")
    print(f"big / small alone:                  p50 {far[0] / alone[0]:.2f}x  "
          f"p99 {far[1] / alone[1]:.2f}x   (big queue depth at the end: {depth:,})")
    return 0 if max(far[0] / near[0], far[1] / near[1]) <= 1.5 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=3000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=500_000)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.claims, args.small, args.big)))
