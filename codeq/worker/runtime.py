"""The worker runtime: claim, run handlers under heartbeats, report, stop gracefully.

One asyncio loop drives everything. Each claimed task gets a ``Job``, its
handler (async, or sync in a thread) and a heartbeat task that extends the
lease every third of it; when a heartbeat answers ``cancelRequested`` (or the
lease is lost) the handler is stopped and the task abandoned (or dropped).
Results are submitted until the lease would expire, so a server restart
during submission does not lose them.

On SIGINT / SIGTERM the worker claims nothing more; in-flight tasks get
``grace_seconds`` to finish (none with ``abandon_on_stop``) and are then
abandoned, so no task stays leased by a process that is gone. A second
signal abandons everything at once.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol, TypeVar

from codeq.client import AsyncClient, Client
from codeq.client.errors import TRANSIENT, ApiError, Conflict, Forbidden, NotFound
from codeq.worker.job import Job, parse_time
from codeq.worker.outcomes import Abandon, Fail, Leave, Retry
from codeq.worker.results import MAX_ITEMS, ResultBatcher
from codeq.worker.stats import Stats

Handler = Callable[[Job], Any]
H = TypeVar("H", bound=Handler)
#: The longest pause between claims after a transient error.
MAX_ERROR_PAUSE = 10.0
MAX_REPORT_PAUSE = 5.0
MAX_REASON_CHARS = 4000
#: Claim requests in flight at once, at most (one is round-trip bound when tasks are quick).
#: Keep it below the client's connection limit, so results never wait behind long polls.
CLAIMERS = 4


class Listener(Protocol):
    """Told about everything the worker does (the CLI prints it)."""

    def __call__(self, event: str, job: Job | None, detail: str) -> None: ...


def _ignore(event: str, job: Job | None, detail: str) -> None:
    return None


class Worker:
    """Runs handlers for claimed tasks::

        worker = codeq.Worker(codeq.Client(url, token), events=["RESIZE"])

        @worker.handler("RESIZE")
        async def resize(job: codeq.Job) -> dict:
            return {"size": len(job.payload["pixels"])}

        worker.run()
    """

    def __init__(self, client: Client | AsyncClient, events: Sequence[str] | None = None, *,
                 concurrency: int = 1, lease_seconds: float | None = None,
                 wait_seconds: float = 10, batch: bool = False, grace_seconds: float = 30,
                 abandon_on_stop: bool = False, listener: Listener | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.events = list(events) if events else None
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.batch = batch
        self.grace_seconds = grace_seconds
        self.abandon_on_stop = abandon_on_stop
        self.listener: Listener = listener or _ignore
        self.stats = Stats()
        self._handlers: dict[str, Handler] = {}
        self._default: Handler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._hard_stop: asyncio.Event | None = None
        self._interrupt: asyncio.Event | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        #: Slots held by claims in flight, and a signal that slots were given back.
        self._reserved = 0
        self._slots_freed: asyncio.Event | None = None
        self._aborts: dict[str, Callable[[str], None]] = {}
        self._threads: ThreadPoolExecutor | None = None
        self._results: ResultBatcher | None = None

    # -- set up ------------------------------------------------------------
    def handler(self, command: str | None = None) -> Callable[[H], H]:
        """Decorator: ``fn(job)`` handles ``command`` (every other command when None)."""
        def register(fn: H) -> H:
            if command is None:
                self._default = fn
            else:
                self._handlers[command] = fn
            return fn
        return register

    def _commands(self) -> list[str] | None:
        if self.events:
            return self.events
        if self._default is None and self._handlers:
            return list(self._handlers)
        return None

    # -- run ------------------------------------------------------------------
    def run(self) -> None:
        """Run until SIGINT / SIGTERM (blocking)."""
        asyncio.run(self.run_async())

    def stop(self, *, abandon: bool = False) -> None:
        """Ask the worker to stop (thread-safe); ``abandon`` gives in-flight tasks back now."""
        loop = self._loop
        if loop is None:
            return
        def signal_stop() -> None:
            assert self._stopping and self._hard_stop and self._interrupt
            if self._stopping.is_set():
                self._interrupt.set()
            if abandon or self._stopping.is_set() or self.abandon_on_stop:
                self._hard_stop.set()
            self._stopping.set()
        loop.call_soon_threadsafe(signal_stop)

    async def run_async(self, *, handle_signals: bool = True) -> None:
        """Run until ``stop()`` or a signal; in-flight tasks are finished or abandoned."""
        if not self._handlers and self._default is None:
            raise ValueError("register a handler first (@worker.handler(...))")
        unhandled = [e for e in self.events or () if e not in self._handlers]
        if unhandled and self._default is None:
            raise ValueError(f"no handler for {', '.join(unhandled)} (register one, or a "
                             "default handler with @worker.handler())")
        self._loop = asyncio.get_running_loop()
        self._stopping, self._hard_stop = asyncio.Event(), asyncio.Event()
        self._interrupt = asyncio.Event()
        self._slots_freed = asyncio.Event()
        owned = isinstance(self.client, Client)
        client = (AsyncClient.from_config(self.client.config) if isinstance(self.client, Client)
                  else self.client)
        self._results = ResultBatcher(client) if self.batch else None
        signals = (signal.SIGINT, signal.SIGTERM)
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in signals:
                self._loop.add_signal_handler(sig, self._on_signal, sig)
        # Sync handlers get one thread per slot, not the loop's small shared pool.
        self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="codeq-handler")
        try:
            await self._claimers(client)
        finally:
            try:
                await self._drain()
            finally:
                self._threads.shutdown(wait=False, cancel_futures=True)
                if handle_signals and threading.current_thread() is threading.main_thread():
                    for sig in signals:
                        self._loop.remove_signal_handler(sig)
                if owned:
                    await client.aclose()
                self._loop = None

    def _on_signal(self, sig: signal.Signals) -> None:
        assert self._stopping is not None
        again = self._stopping.is_set()
        if again or self.abandon_on_stop:
            how = "abandoning in-flight tasks now"
        else:
            how = f"finishing in-flight tasks (up to {self.grace_seconds:g}s; again to abandon)"
        self.listener("stopping", None, f"{sig.name}: {how}")
        self.stop(abandon=again)

    async def _claimers(self, client: AsyncClient) -> None:
        """Up to ``CLAIMERS`` claim loops; the first error of one stops them all."""
        try:
            async with asyncio.TaskGroup() as claimers:
                for _ in range(min(self.concurrency, CLAIMERS)):
                    claimers.create_task(self._claim_loop(client))
        except ExceptionGroup as group:
            raise group.exceptions[0] from None

    async def _claim_loop(self, client: AsyncClient) -> None:
        """One of the claimers: claims for free slots while no stop was asked."""
        assert self._stopping is not None and self._interrupt is not None
        assert self._slots_freed is not None
        stopping, interrupt, freed = self._stopping, self._interrupt, self._slots_freed
        errors = 0
        while not stopping.is_set():
            free = self.concurrency - len(self._jobs) - self._reserved
            if free <= 0:
                freed.clear()
                waiters = {asyncio.create_task(stopping.wait()), asyncio.create_task(freed.wait())}
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
                continue
            wanted = min(free, MAX_ITEMS) if self.batch else 1
            self._reserved += wanted
            try:
                # A claim is allowed to finish even when a stop arrives (a dropped
                # answer would strand a lease); only a second stop request cuts it short.
                claim = asyncio.create_task(self._claim(client, wanted))
                hard = asyncio.create_task(interrupt.wait())
                await asyncio.wait({claim, hard}, return_when=asyncio.FIRST_COMPLETED)
                hard.cancel()
                if not claim.done():
                    claim.cancel()
                    return
            finally:
                self._reserved -= wanted
                freed.set()
            try:
                tasks = claim.result()
            except (*TRANSIENT, TimeoutError) as exc:
                errors += 1
                pause = min(MAX_ERROR_PAUSE, 0.5 * 2 ** errors)
                self.listener("error", None, f"claim failed: {exc}; retrying in {pause:.1f}s")
                try:
                    await asyncio.wait_for(stopping.wait(), pause)
                except TimeoutError:
                    pass
                continue
            errors = 0
            for task in tasks:
                job = Job.from_task(task, self.lease_seconds)
                self.stats.claimed += 1
                if stopping.is_set():
                    await self._finish(client, job, Abandon(), "worker stopping")
                    continue
                self.listener("claimed", job, f"attempt {job.attempts}")
                runner = asyncio.create_task(self._process(client, job))
                self._jobs.add(runner)
                self.stats.in_flight = len(self._jobs)
                runner.add_done_callback(self._forget)

    def _forget(self, runner: asyncio.Task[None]) -> None:
        self._jobs.discard(runner)
        self.stats.in_flight = len(self._jobs)
        if self._slots_freed is not None:
            self._slots_freed.set()

    async def _claim(self, client: AsyncClient, free: int) -> list[dict[str, Any]]:
        if self.batch and free > 1:
            return await client.claim_batch(free, self._commands(), lease_seconds=self.lease_seconds,
                                            wait_seconds=self.wait_seconds)
        task = await client.claim(self._commands(), lease_seconds=self.lease_seconds,
                                  wait_seconds=self.wait_seconds)
        return [task] if task is not None else []

    async def _drain(self) -> None:
        assert self._hard_stop is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (0 if self.abandon_on_stop else self.grace_seconds)
        hard = asyncio.create_task(self._hard_stop.wait())
        while self._jobs and not self._hard_stop.is_set() and loop.time() < deadline:
            await asyncio.wait({hard, *self._jobs}, timeout=deadline - loop.time(),
                               return_when=asyncio.FIRST_COMPLETED)
        hard.cancel()
        for abort in list(self._aborts.values()):
            abort("worker stopping")
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)

    # -- one task ---------------------------------------------------------------
    async def _invoke(self, job: Job) -> Any:
        handler = self._handlers.get(job.command, self._default)
        if handler is None:
            raise Abandon(f"no handler for {job.command}")
        if inspect.iscoroutinefunction(handler):
            return await handler(job)
        value = await asyncio.get_running_loop().run_in_executor(self._threads, handler, job)
        if inspect.isawaitable(value):
            return await value
        return value

    async def _process(self, client: AsyncClient, job: Job) -> None:
        lease = self.lease_seconds or max(1.0, job.lease_until - time.time())
        runner = asyncio.current_task()
        assert runner is not None
        why: list[str] = []
        handling = True

        def abort(reason: str) -> None:
            # The handler runs in this task: stop it once, and never the report after it.
            if handling and not why:
                why.append(reason)
                job.cancelled.set()
                runner.cancel()

        self._aborts[job.id] = abort
        # Most handlers finish before the first heartbeat is due: start one only then.
        beats: list[asyncio.Task[None]] = []
        due = asyncio.get_running_loop().call_later(
            self._beat_interval(lease),
            lambda: beats.append(asyncio.create_task(self._heartbeat(client, job, lease, abort))))
        try:
            try:
                outcome = await self._invoke(job)
            except asyncio.CancelledError:
                handling = False
                if not why:  # this job itself is being cancelled
                    raise
                runner.uncancel()  # the abort's cancel is handled here; reporting goes on
                if why[0].startswith("lease lost"):
                    self.listener("lost", job, why[0])
                    return
                await self._finish(client, job, Abandon(), why[0])
                return
            except Exception as exc:  # noqa: BLE001 -- a failing handler means a retry
                outcome = exc
            handling = False
            await self._finish(client, job, outcome, None)
        finally:
            self._aborts.pop(job.id, None)
            due.cancel()
            for beat in beats:
                beat.cancel()

    @staticmethod
    def _beat_interval(lease: float) -> float:
        return max(0.5, lease / 3)

    async def _heartbeat(self, client: AsyncClient, job: Job, lease: float,
                         abort: Callable[[str], None]) -> None:
        """Extend the lease now, then every third of it, until told to stop."""
        while True:
            try:
                answer = await client.heartbeat(job.id, extend_seconds=lease,
                                                lease_id=job.lease_id)
            except (Conflict, NotFound, Forbidden) as exc:
                abort(f"lease lost: {exc}")
                return
            except ApiError as exc:
                self.listener("error", job, f"heartbeat failed: {exc}")
            else:
                job.lease_until = parse_time(answer.get("leaseUntil")) or job.lease_until
                if answer.get("cancelRequested"):
                    abort("cancel requested")
                    return
            await asyncio.sleep(self._beat_interval(lease))

    async def _finish(self, client: AsyncClient, job: Job, outcome: Any,
                      reason: str | None) -> None:
        """Tell the server how the task ended, retrying while the lease lasts."""
        if isinstance(outcome, Leave):
            self.listener("left", job, "no report: the lease will expire")
            return
        report, event, detail = self._report_for(client, job, outcome, reason)
        pause = 0.25
        while True:
            try:
                await report()
                break
            except TRANSIENT as exc:
                if time.time() + pause >= job.lease_until:
                    self.listener("error", job, f"gave up reporting ({exc}): the lease expired")
                    return
                self.listener("error", job, f"report failed: {exc}; retrying")
                await asyncio.sleep(pause)
                pause = min(MAX_REPORT_PAUSE, pause * 2)
            except ApiError as exc:
                self.listener("error", job, f"the server refused the report: {exc}")
                return
        counters = {"completed": "completed", "failed": "failed", "retried": "retried",
                    "abandoned": "abandoned"}
        setattr(self.stats, counters[event], getattr(self.stats, counters[event]) + 1)
        self.stats.finished()
        self.listener(event, job, detail)

    def _report_for(self, client: AsyncClient, job: Job, outcome: Any, reason: str | None
                    ) -> tuple[Callable[[], Awaitable[Any]], str, str]:
        lease_id = job.lease_id
        if isinstance(outcome, Abandon):
            return (lambda: client.abandon(job.id, lease_id=lease_id), "abandoned",
                    reason or str(outcome) or "abandoned by the handler")
        if isinstance(outcome, Fail):
            return (self._result(client, job, "FAILED", error=outcome.error), "failed",
                    outcome.error)
        if isinstance(outcome, BaseException):
            if isinstance(outcome, Retry):
                text, delay = outcome.reason, outcome.delay_seconds
            else:
                text, delay = f"{type(outcome).__name__}: {outcome}", None
            text = text[-MAX_REASON_CHARS:]
            return (lambda: client.nack(job.id, delay_seconds=delay, reason=text,
                                        lease_id=lease_id), "retried", text)
        try:
            json.dumps(outcome)
        except (TypeError, ValueError) as exc:
            text = f"the handler's result is not JSON: {exc}"
            return (lambda: client.nack(job.id, reason=text, lease_id=lease_id), "retried", text)
        return self._result(client, job, "COMPLETED", result=outcome), "completed", ""

    def _result(self, client: AsyncClient, job: Job, status: Literal["COMPLETED", "FAILED"],
                **fields: Any) -> Callable[[], Awaitable[Any]]:
        """How to submit a result: with the next batch when claiming in batches."""
        batcher = self._results
        if batcher is None:
            return lambda: client.submit_result(job.id, status, lease_id=job.lease_id, **fields)
        item = {"taskId": job.id, "status": status, **fields}
        if job.lease_id:
            item["leaseId"] = job.lease_id
        return lambda: batcher.submit(item)
