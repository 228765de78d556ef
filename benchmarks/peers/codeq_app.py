"""codeq's side of the workload: the no-op handler for ``codeq worker start --handler``
and the HTTP producer (single-task ``POST /tasks`` or ``POST /tasks/batch``).

The producer reads ``BENCH_CODEQ_URL``, ``BENCH_CODEQ_TOKEN`` (a producer
token), ``BENCH_CODEQ_COMMAND`` and ``BENCH_CODEQ_API`` (``single`` or ``batch``).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from codeq import AsyncClient
from codeq.client.calls import task_body
from peers import tally
from peers._senders import send_all

#: Tasks per ``POST /tasks/batch`` and batches in flight.
BATCH = 500
BATCHES_IN_FLIGHT = 4


async def handle(job: Any) -> dict[str, Any]:
    tally.hit()
    return {}


async def _enqueue(n: int, until: float) -> int:
    command, api = os.environ["BENCH_CODEQ_COMMAND"], os.environ["BENCH_CODEQ_API"]
    async with AsyncClient(os.environ["BENCH_CODEQ_URL"], os.environ["BENCH_CODEQ_TOKEN"],
                           retries=0) as client:
        if api == "single":
            return await send_all(n, until, lambda i: client.create_task(command, {"i": i}))
        chunks = [range(start, min(n, start + BATCH)) for start in range(0, n, BATCH)]

        async def send_chunk(k: int) -> None:
            results = await client.create_tasks([task_body(command, {"i": i})
                                                 for i in chunks[k]])
            failed = [r for r in results if "error" in r]
            if failed:
                raise RuntimeError(f"{len(failed)} creates failed, e.g. {failed[0]}")

        sent = await send_all(len(chunks), until, send_chunk, in_flight=BATCHES_IN_FLIGHT)
        return sum(len(chunk) for chunk in chunks[:sent])


def enqueue(n: int, until: float) -> int:
    return asyncio.run(_enqueue(n, until))


LATENCY_ENV = "BENCH_LATENCY_FILE"
_latency_fd: int | None = None


async def handle_timed(job: Any) -> dict[str, Any]:
    """Append ``<payload i> <time.monotonic_ns()>`` to ``BENCH_LATENCY_FILE``: when the
    worker got to hold task i (the latency benchmark subtracts the create's answer)."""
    global _latency_fd
    if _latency_fd is None:
        _latency_fd = os.open(os.environ[LATENCY_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                              0o644)
    os.write(_latency_fd, f"{job.payload['i']} {time.monotonic_ns()}\n".encode())
    return {}
