"""Background jobs: the promoter (delayed -> ready) and the reaper (expired leases).

Each is a named asyncio task started and stopped with the app lifespan. They
call the scheduler's one-shot operations in a loop: again at once when a batch
was full, else after a short pause. A failing store is logged and retried with
a growing pause; the loop never dies of it. Several server processes may run
them at once: every store step they take is atomic and fenced on the lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

log = logging.getLogger("codeq.background")

INTERVAL_SECONDS = 0.25
MAX_ERROR_PAUSE_SECONDS = 10.0


class Job:
    """Run ``step`` forever: it returns how many items it handled out of ``batch``."""

    def __init__(self, name: str, step: Callable[[], Awaitable[int]], batch: int,
                 interval: float = INTERVAL_SECONDS) -> None:
        self.name = name
        self.step = step
        self.batch = batch
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"codeq-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                handled = await self.step()
            except Exception as exc:
                failures += 1
                pause = min(self.interval * 2 ** min(failures, 10), MAX_ERROR_PAUSE_SECONDS)
                log.warning("%s failed (%s: %s); next try in %.1fs", self.name,
                            type(exc).__name__, exc, pause, exc_info=failures == 1)
                await asyncio.sleep(pause)
                continue
            if failures:
                log.info("%s works again after %d failure(s)", self.name, failures)
                failures = 0
            if handled < self.batch:
                await asyncio.sleep(self.interval)
            else:
                await asyncio.sleep(0)  # a full batch: drain on, but let requests run
