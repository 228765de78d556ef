"""Wake-ups for long-polling claims.

A store calls ``notify(command)`` whenever a transition may have made work
ready for ``command`` (create, requeue, promotion, redrive, resume), including
work that another server process made ready when the store can tell (Redis
pub/sub). A claim registers *before* it looks at the store, so a task created
between "nothing to claim" and "start waiting" still wakes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager


class Waiter:
    def __init__(self, commands: frozenset[str] | None) -> None:
        self.commands = commands
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def wait(self, timeout: float) -> bool:
        """Wait until notified or ``timeout`` seconds pass; True when notified."""
        if timeout <= 0:
            return self.future.done()
        try:
            await asyncio.wait_for(asyncio.shield(self.future), timeout)
        except TimeoutError:
            return False
        return True


class ReadySignal:
    def __init__(self) -> None:
        self._waiters: set[Waiter] = set()

    def notify(self, command: str) -> None:
        for waiter in self._waiters:
            if not waiter.future.done() and (waiter.commands is None or command in waiter.commands):
                waiter.future.set_result(None)

    def notify_all(self) -> None:
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_result(None)

    @contextmanager
    def listen(self, commands: Iterable[str] | None) -> Iterator[Waiter]:
        """Register interest in ``commands`` (None: every command) for the ``with`` block."""
        waiter = Waiter(None if commands is None else frozenset(commands))
        self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            self._waiters.discard(waiter)
            if not waiter.future.done():
                waiter.future.cancel()


class AvailabilityFeed:
    """Listeners told which command's ready queue just went from empty to non-empty."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[str], None]] = []

    def subscribe(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(command)`` on each emit; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, command: str) -> None:
        for listener in list(self._listeners):
            listener(command)
