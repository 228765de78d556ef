"""Producer loops shared by the app modules: send task ``i`` for i = 0, 1, ... until
``n`` were sent or the monotonic clock passes ``until``; they return how many were sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

#: Sends in flight for asyncio producers.
IN_FLIGHT = 64


def send_until(n: int, until: float, send: Callable[[int], object]) -> int:
    for i in range(n):
        if time.monotonic() >= until:
            return i
        send(i)
    return n


async def send_all(n: int, until: float, send: Callable[[int], Awaitable[object]],
                   in_flight: int = IN_FLIGHT) -> int:
    """``send_until`` from ``in_flight`` coroutines at once."""
    counter = iter(range(n))
    sent = 0

    async def lane() -> None:
        nonlocal sent
        for i in counter:
            if time.monotonic() >= until:
                return
            await send(i)
            sent += 1

    await asyncio.gather(*(lane() for _ in range(min(in_flight, n))))
    return sent
