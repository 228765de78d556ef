"""Copy everything one store holds into another, through the storage contract only.

``migrate(source, target, now=...)`` works between any two backends: queue
pause flags first (so a paused queue never hands out a restored task), then
every task page by page in creation order with its result (``restore`` keeps
each one in the state and queue it had, under the same id: users hold ids, so
they never change), then the live subscriptions and the pending result
callbacks. ``restore`` refuses an id the target holds already, so a copy that
was interrupted simply runs again: those tasks count as
"already there". At the end the target's task counts per status and every
command's queue depths are compared with the source's.

The copy is a snapshot only while nothing else writes to the source: stop the
servers of the source (or pause everything) before migrating.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from codeq.core.domain import QueueStats, ResultRecord, Status, Task
from codeq.core.storage import Storage

PAGE_SIZE = 500
#: ``get_result`` calls in flight at once while reading one page.
RESULT_READS_IN_FLIGHT = 32
#: Only ``complete`` stores a result, and it ends the task COMPLETED or FAILED.
HAS_RESULT = frozenset({Status.COMPLETED, Status.FAILED})


class Phase(StrEnum):
    QUEUES = "queues"
    TASKS = "tasks"
    SUBSCRIPTIONS = "subscriptions"
    CALLBACKS = "callbacks"
    VERIFY = "verifying"


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a migration is: ``done`` of ``total`` items of ``phase`` (None: not known yet)."""

    phase: Phase
    done: int
    total: int | None


OnProgress = Callable[[Progress], None]


@dataclass(slots=True)
class Report:
    """What a migration did, and what its verification found."""

    copied: int = 0
    already_there: int = 0
    #: Tasks of the source per status, as read while copying.
    statuses: Counter[str] = field(default_factory=Counter)
    queues: int = 0
    paused: list[str] = field(default_factory=list)
    subscriptions: int = 0
    callbacks: int = 0
    #: One line per count that differs between source and target; empty when they agree.
    differences: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["statuses"] = dict(sorted(self.statuses.items()))
        data["verified"] = self.verified
        return data


async def pages(store: Storage, page_size: int = PAGE_SIZE, *, command: str | None = None
                ) -> AsyncIterator[list[Task]]:
    """Every task of ``store`` (or of one command) in creation order, one page at a time."""
    cursor: str | None = None
    while True:
        page = await store.list_tasks(command=command, status=None, limit=page_size,
                                      cursor=cursor)
        if page.tasks:
            yield page.tasks
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def count_statuses(store: Storage, page_size: int = PAGE_SIZE,
                         on_page: Callable[[int], None] | None = None) -> Counter[str]:
    """How many tasks ``store`` holds per status.

    Read command by command: the order across commands does not matter here, and
    a store may list one command much more cheaply than all of them merged.
    """
    counts: Counter[str] = Counter()
    for command in await store.commands():
        async for page in pages(store, page_size, command=command):
            counts.update(task.status.value for task in page)
            if on_page is not None:
                on_page(counts.total())
    return counts


async def _results(store: Storage, tasks: Sequence[Task]) -> list[ResultRecord | None]:
    """The result of each task (None where it can have none), a few reads at a time."""
    found: list[ResultRecord | None] = [None] * len(tasks)
    wanted = [i for i, task in enumerate(tasks) if task.status in HAS_RESULT]
    for start in range(0, len(wanted), RESULT_READS_IN_FLIGHT):
        batch = wanted[start:start + RESULT_READS_IN_FLIGHT]
        records = await asyncio.gather(*(store.get_result(tasks[i].id) for i in batch))
        for i, record in zip(batch, records, strict=True):
            found[i] = record
    return found


async def _read_page(store: Storage, page_size: int, cursor: str | None
                     ) -> tuple[list[Task], list[ResultRecord | None], str | None]:
    page = await store.list_tasks(command=None, status=None, limit=page_size, cursor=cursor)
    return page.tasks, await _results(store, page.tasks), page.next_cursor


async def _prefetched(store: Storage, page_size: int
                      ) -> AsyncGenerator[tuple[list[Task], list[ResultRecord | None]], None]:
    """Like ``pages`` with each task's result; the next page is read while the caller works."""
    reading = asyncio.ensure_future(_read_page(store, page_size, None))
    try:
        while True:
            tasks, results, cursor = await reading
            if cursor is not None:
                reading = asyncio.ensure_future(_read_page(store, page_size, cursor))
            if tasks:
                yield tasks, results
            if cursor is None:
                return
    finally:
        reading.cancel()


def _ignore(progress: Progress) -> None:
    return None


class _Migration:
    def __init__(self, source: Storage, target: Storage, now: float, page_size: int,
                 on_progress: OnProgress) -> None:
        self.source, self.target, self.now = source, target, now
        self.page_size = page_size
        self.tell = on_progress
        self.report = Report()

    async def run(self) -> Report:
        await self.copy_queue_flags()
        await self.copy_tasks()
        await self.copy_subscriptions()
        await self.copy_callbacks()
        self.report.differences = await self.verify()
        return self.report

    async def copy_queue_flags(self) -> None:
        """Every known command, paused or not, so that ``commands()`` agrees too."""
        commands = await self.source.commands()
        for done, command in enumerate(commands, 1):
            paused = (await self.source.queue_stats(command, now=self.now)).paused
            await self.target.set_paused(command, paused)
            if paused:
                self.report.paused.append(command)
            self.tell(Progress(Phase.QUEUES, done, len(commands)))
        self.report.queues = len(commands)

    async def copy_tasks(self) -> None:
        """Restores one page in order while the next one is read."""
        report = self.report
        async with aclosing(_prefetched(self.source, self.page_size)) as read:
            async for page, results in read:
                restored = await self.target.restore_many(list(zip(page, results, strict=True)))
                for task, fresh in zip(page, restored, strict=True):
                    if fresh:
                        report.copied += 1
                    else:
                        report.already_there += 1
                    report.statuses[task.status.value] += 1
                self.tell(Progress(Phase.TASKS, report.copied + report.already_there, None))
        seen = report.copied + report.already_there
        self.tell(Progress(Phase.TASKS, seen, seen))

    async def copy_subscriptions(self) -> None:
        subscriptions = await self.source.subscriptions(now=self.now)
        for done, subscription in enumerate(subscriptions, 1):
            await self.target.save_subscription(subscription)
            self.tell(Progress(Phase.SUBSCRIPTIONS, done, len(subscriptions)))
        self.report.subscriptions = len(subscriptions)

    async def copy_callbacks(self) -> None:
        callbacks = await self.source.callbacks()
        for done, callback in enumerate(callbacks, 1):
            await self.target.restore_callback(callback)
            self.tell(Progress(Phase.CALLBACKS, done, len(callbacks)))
        self.report.callbacks = len(callbacks)

    async def verify(self) -> list[str]:
        expected = self.report.statuses.total()
        found = await count_statuses(
            self.target, self.page_size,
            lambda seen: self.tell(Progress(Phase.VERIFY, seen, max(expected, seen))))
        differences = _differ("tasks", self.report.statuses, found)
        commands = sorted(set(await self.source.commands()) | set(await self.target.commands()))
        for command in commands:
            differences += _differ(
                f"queue {command}",
                _depths(await self.source.queue_stats(command, now=self.now)),
                _depths(await self.target.queue_stats(command, now=self.now)))
        return differences


def _depths(stats: QueueStats) -> dict[str, int]:
    return {"ready": stats.ready, "delayed": stats.delayed, "in_progress": stats.in_progress,
            "dlq": stats.dlq, "paused": int(stats.paused)}


def _differ(what: str, source: Counter[str] | dict[str, int],
            target: Counter[str] | dict[str, int]) -> list[str]:
    return [f"{what} {key}: source {source.get(key, 0)}, target {target.get(key, 0)}"
            for key in sorted(set(source) | set(target))
            if source.get(key, 0) != target.get(key, 0)]


async def migrate(source: Storage, target: Storage, *, now: float, page_size: int = PAGE_SIZE,
                  on_progress: OnProgress = _ignore) -> Report:
    """Copy every task, result, subscription, pending callback and pause flag of ``source``
    into ``target`` (both opened), then compare their counts.

    Running it again after an interruption completes the copy; tasks the target
    holds already are left as they are and counted in ``already_there``.
    """
    return await _Migration(source, target, now, page_size, on_progress).run()
