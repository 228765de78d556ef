"""The store-limit loop of ``benchmarks/throughput.py`` still runs: it builds the claim
script's calls with the store's own (private) helpers, which a refactor can move."""

from __future__ import annotations

import sys
from pathlib import Path

from codeq.testing.redis_server import RedisServer

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


async def test_the_claim_script_loop_claims_every_task(redis_server: RedisServer) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _store_limit import measure
    finally:
        sys.path.remove(str(BENCHMARKS))
    limit = await measure(redis_server.url, 200)  # raises when a claim takes nothing
    assert limit.sequential > 0 and limit.pipelined > 0
