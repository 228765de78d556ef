"""Cross-process wake-ups: every script that makes work ready PUBLISHes its command.

Each store subscribes to ``codeq:ready`` on every primary (KVRocks does not
forward PUBLISH between cluster nodes; Redis Cluster does, and a duplicate
wake-up is harmless) and turns each message into ``ready.notify(command)``.
After a lost connection it resubscribes and wakes every waiter, since messages
may have been missed meanwhile; the scheduler's fallback re-check covers the
rest. A message never becomes ``available.emit``: only the process whose
script made the work ready announces it, so each transition is announced once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from codeq_redis.connection import UNAVAILABLE

log = logging.getLogger("codeq.redis")
POLL_SECONDS = 1.0
RETRY_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0)


class ReadyListener:
    def __init__(self, clients: list[Redis], channel: str, on_ready: Callable[[str], None],
                 on_gap: Callable[[], None]) -> None:
        self._clients = clients
        self._channel = channel
        self._on_ready = on_ready
        self._on_gap = on_gap
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Subscribe everywhere; returns once every subscription is confirmed."""
        for client in self._clients:
            pubsub = await self._subscribe(client)
            self._tasks.append(asyncio.create_task(self._run(client, pubsub),
                                                   name="codeq-redis-listener"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _subscribe(self, client: Redis) -> PubSub:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            while True:
                message = await pubsub.get_message(timeout=POLL_SECONDS)
                if message is not None and message["type"] == "subscribe":
                    return pubsub
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise

    async def _run(self, client: Redis, subscribed: PubSub) -> None:
        pubsub: PubSub | None = subscribed
        failures = 0
        try:
            while True:
                try:
                    if pubsub is None:
                        pubsub = await self._subscribe(client)
                        failures = 0
                        self._on_gap()
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=POLL_SECONDS)
                except UNAVAILABLE as exc:
                    if pubsub is not None:
                        log.warning("ready channel lost (%s); resubscribing", exc)
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
                    pubsub = None
                    await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                    failures += 1
                    continue
                if message is not None and message["type"] == "message":
                    self._on_ready(message["data"])
        finally:
            if pubsub is not None:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
