"""Many claims at once in one server process, on the Redis store (no HTTP).

Fills one command with ready tasks, then sends single-task claims from one store
(as one server process would for many workers) with 1, 8 and 32 in flight. Prints,
per level: claims per second, the CPU of this process and of redis-server per claim,
and how many claims came back empty although tasks were still ready (claims that
raced each other for the same head and ran out of rounds). Writes
``benchmarks/results/claim-contention.txt``.

    python benchmarks/claim_contention.py [--claims 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from _harness import BENCH_DIR, cpu_seconds, header, publish, table
from claim_latency import fill
from codeq_redis import RedisStorage

from codeq.testing.redis_server import RedisServer

RESULTS = BENCH_DIR / "results"
COMMAND = "bench.contention"
LEVELS = (1, 8, 32)


async def level(url: str, redis_pid: int, claims: int, at_once: int) -> list[str]:
    store = RedisStorage(url)
    await store.open()
    try:
        await fill(store, COMMAND, claims)
        gate = asyncio.Semaphore(at_once)

        async def one() -> int:
            async with gate:
                return len(await store.claim([COMMAND], worker_id="bench", lease_seconds=3600,
                                             count=1, now=time.time()))

        redis_before, started = cpu_seconds([redis_pid]), time.process_time()
        wall = time.perf_counter()
        got = await asyncio.gather(*(one() for _ in range(claims)))
        wall = time.perf_counter() - wall
        ours = (time.process_time() - started) / claims * 1000
        theirs = (cpu_seconds([redis_pid]) - redis_before) / claims * 1000
        await store.client.flushdb()  # the next level starts from an empty store
    finally:
        await store.close()
    return [str(at_once), f"{claims / wall:,.0f}", f"{ours:.3f}", f"{theirs:.3f}",
            str(got.count(0))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=4000)
    parser.add_argument("--output", type=Path, default=RESULTS / "claim-contention.txt")
    args = parser.parse_args(argv)
    with RedisServer.start(Path(tempfile.mkdtemp(prefix="codeq-contention-")) / "redis") as redis:
        rows = [asyncio.run(level(redis.url, redis.pid, args.claims, n)) for n in LEVELS]
    report = "\n\n".join([
        header("codeq claim contention benchmark", f"claims per level: {args.claims}"),
        table(["claims in flight", "claims/s", "store CPU ms/claim", "redis CPU ms/claim",
               "empty while ready"], rows)]) + "\n"
    publish(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
