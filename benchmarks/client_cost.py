"""What a Python producer or worker spends per HTTP request: CPU of the client process.

Starts a do-nothing ASGI app (``peers/echo_app.py``) under uvicorn on 127.0.0.1 and
sends it the same request (``POST /tasks/{id}/result`` with a small JSON body and a
bearer token, 32 at a time) from one process in three ways, in alternating rounds:
aiohttp alone (a reference: the usual fast asyncio client), ``codeq.AsyncClient`` as it
sends by default, and
``codeq.AsyncClient(transport=httpx.AsyncHTTPTransport())``, which sends through httpx.
Prints client CPU ms per request (median of the rounds) and writes
``benchmarks/results/client-cost.txt``.

    python benchmarks/client_cost.py [--requests 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
from _harness import BENCH_DIR, echo_server, header, publish, table

from codeq import AsyncClient

RESULTS = BENCH_DIR / "results"
AT_ONCE = 32
TASK_ID = "0b1c8b1e-8c1a-4c3e-9d7f-2b6a8e1c4d50"
Send = Callable[[], Awaitable[object]]


async def cpu_per_request(send: Send, requests: int) -> float:
    """Client CPU ms per request, ``AT_ONCE`` requests in flight."""
    gate = asyncio.Semaphore(AT_ONCE)

    async def one() -> None:
        async with gate:
            await send()

    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    return (time.process_time() - started) / requests * 1000


async def measure(url: str, requests: int, rounds: int) -> dict[str, list[float]]:
    body = b'{"status":"COMPLETED","result":{"ok":true}}'
    headers = {"Authorization": "Bearer T", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as session, \
            AsyncClient(url, "T") as direct, \
            AsyncClient(url, "T", transport=httpx.AsyncHTTPTransport()) as through_httpx:

        async def raw() -> None:
            async with session.post(f"{url}/v1/codeq/tasks/{TASK_ID}/result", data=body,
                                    headers=headers) as answer:
                await answer.json()

        ways: dict[str, Send] = {
            "aiohttp alone (reference)": raw,
            "codeq.AsyncClient (default)": lambda: direct.submit_result(
                TASK_ID, "COMPLETED", result={"ok": True}),
            "codeq.AsyncClient through httpx": lambda: through_httpx.submit_result(
                TASK_ID, "COMPLETED", result={"ok": True}),
        }
        found: dict[str, list[float]] = {name: [] for name in ways}
        for send in ways.values():
            await cpu_per_request(send, requests // 10)  # warm-up: connections, imports
        for _ in range(rounds):
            for name, send in ways.items():
                found[name].append(await cpu_per_request(send, requests))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "client-cost.txt")
    args = parser.parse_args(argv)
    with echo_server() as (url, _):
        found = asyncio.run(measure(url, args.requests, args.rounds))
    floor = statistics.median(next(iter(found.values())))
    rows = [[name, f"{statistics.median(v):.3f}", f"{min(v):.3f}-{max(v):.3f}",
             f"{statistics.median(v) / floor:.2f}x"] for name, v in found.items()]
    report = "\n\n".join([
        header("codeq client cost benchmark",
               f"requests per round: {args.requests}, {AT_ONCE} in flight, rounds: "
               f"{args.rounds} (median, min-max)"),
        table(["client", "CPU ms/request", "min-max", "vs aiohttp"], rows)]) + "\n"
    publish(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
