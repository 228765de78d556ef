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
    """Wakes one waiting claim per notification, the longest-waiting first.

    Waking every waiter for one new task would send them all to the store for
    one of them to win. Instead a woken claim that filled its whole count
    passes the wake on (``notify`` again: more may be ready), and one that ends
    without claiming (cancelled, failed) hands it to the next waiter, so no
    ready task is left waiting for the fallback re-check.
    """

    def __init__(self) -> None:
        self._waiters: dict[Waiter, None] = {}  # insertion-ordered: the oldest first

    def notify(self, command: str) -> None:
        for waiter in self._waiters:
            if not waiter.future.done() and (waiter.commands is None or command in waiter.commands):
                waiter.future.set_result(None)
                return

    def notify_all(self) -> None:
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_result(None)

    @contextmanager
    def listen(self, commands: Iterable[str] | None) -> Iterator[Waiter]:
        """Register interest in ``commands`` (None: every command) for the ``with`` block."""
        waiter = Waiter(None if commands is None else frozenset(commands))
        self._waiters[waiter] = None
        try:
            yield waiter
        except BaseException:
            if waiter.future.done() and not waiter.future.cancelled():
                self._pass_on(waiter)
            raise
        finally:
            self._waiters.pop(waiter, None)
            if not waiter.future.done():
                waiter.future.cancel()

    def _pass_on(self, woken: Waiter) -> None:
        """Give a wake-up its waiter will not use to another waiter that may use it."""
        if woken.commands is None:
            self.notify_all()
            return
        for command in woken.commands:
            self.notify(command)


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
