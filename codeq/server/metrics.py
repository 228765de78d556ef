"""Prometheus metrics: ``GET /metrics`` (docs/operations.md lists every metric).

Two kinds of numbers:

- **Counted in the process**: task events (``Metrics`` is the scheduler's
  ``Recorder``), webhook deliveries and the HTTP latency histogram. With
  ``codeq serve --workers N`` each process writes them to files in the run's
  own ``PROMETHEUS_MULTIPROC_DIR`` (set by ``serve`` before the processes
  start) and every scrape, whichever process answers it, sums all of them.
- **Read from the store at scrape time**: queue depths per command and the age
  of each command's oldest ready task. They are the same whichever process
  reads them, so they need no aggregation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from fastapi import APIRouter
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import Scope

from codeq.core.domain import QueueStats
from codeq.core.errors import CodeqError
from codeq.core.events import Event
from codeq.core.scheduler import Scheduler
from codeq.core.storage import Storage
from codeq.server import schemas
from codeq.server.deps import Svc

log = logging.getLogger("codeq.metrics")

#: One counter per event, each labelled by ``command``: (name without ``_total``, help).
COUNTERS: dict[Event, tuple[str, str]] = {
    Event.CREATED: ("codeq_tasks_created", "Tasks created (idempotent replays not counted)"),
    Event.CLAIMED: ("codeq_tasks_claimed", "Tasks leased to a worker"),
    Event.COMPLETED: ("codeq_tasks_completed", "Results submitted with status COMPLETED"),
    Event.FAILED: ("codeq_tasks_failed", "Results submitted with status FAILED"),
    Event.NACKED: ("codeq_tasks_nacked", "NACKs that put the task back for a retry"),
    Event.DEAD_LETTERED: ("codeq_tasks_dead_lettered",
                          "Tasks moved to the DLQ (last attempt NACKed or expired)"),
    Event.LEASE_EXPIRED: ("codeq_tasks_lease_expired",
                          "Leases that ran out and were taken back by the reaper"),
    Event.REDRIVEN: ("codeq_tasks_redriven", "DLQ tasks put back to ready"),
    Event.CANCELLED: ("codeq_tasks_cancelled", "Tasks that became CANCELLED"),
    Event.WEBHOOK_DELIVERED: ("codeq_webhook_deliveries",
                              "Result webhooks accepted by their receiver"),
    Event.WEBHOOK_FAILED: ("codeq_webhook_failures", "Result webhook attempts that failed"),
}

#: Queue depths read from ``Storage.all_queue_stats``: (gauge name, ``QueueStats`` field, help).
DEPTHS: tuple[tuple[str, str, str], ...] = (
    ("codeq_queue_ready_tasks", "ready", "PENDING tasks that may be claimed now"),
    ("codeq_queue_delayed_tasks", "delayed", "PENDING tasks waiting for their time"),
    ("codeq_queue_in_progress_tasks", "in_progress", "Tasks leased to a worker"),
    ("codeq_queue_dlq_tasks", "dlq", "Tasks in the dead-letter queue"),
    ("codeq_queue_paused", "paused", "1 while the queue hands out no tasks"),
)

#: Seconds; long polls (``waitSeconds`` up to 30) land in the top buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)
#: The ``route`` label of requests that matched no route (never the raw path).
UNMATCHED_ROUTE = "unmatched"


class Metrics:
    """This process's counters and histogram; a ``codeq.core.events.Recorder``.

    ``multiprocess`` is for a process started by ``codeq serve --workers N``:
    scrapes then read every process's files instead of this process's memory.
    """

    def __init__(self, *, multiprocess: bool = False) -> None:
        # No ``*_created`` timestamp series: multiprocess mode cannot give them, so
        # neither mode does (the switch is process-wide in prometheus_client).
        disable_created_metrics()
        registry = CollectorRegistry()
        self._counters: dict[str, Counter] = {
            event: Counter(name, text, ["command"], registry=registry)
            for event, (name, text) in COUNTERS.items()}
        self._latency = Histogram("codeq_http_request_duration_seconds",
                                  "HTTP request latency by route template and status",
                                  ["method", "route", "status"], buckets=LATENCY_BUCKETS,
                                  registry=registry)
        self._source: Collector = registry
        if multiprocess:
            self._source = CollectorRegistry()
            MultiProcessCollector(self._source)

    def count(self, event: str, command: str, n: int = 1) -> None:
        counter = self._counters.get(event)
        if counter is None:
            log.warning("no metric counts the event %r", event)
            return
        counter.labels(command).inc(n)

    def observe_request(self, scope: Scope, status: int, seconds: float) -> None:
        """One finished HTTP request (a ``RequestContextMiddleware`` observer)."""
        self._latency.labels(scope["method"], route_template(scope), str(status)
                             ).observe(seconds)

    async def exposition(self, store: Storage, now: float) -> bytes:
        """The Prometheus text of a scrape: counters, histogram, then what the store says."""
        families = Snapshot(await store_families(store, now))
        counted, read = await asyncio.to_thread(
            lambda: (generate_latest(self._source), generate_latest(families)))
        return counted + read

    def router(self) -> APIRouter:
        router = APIRouter(tags=["health"])

        @router.get("/metrics", response_class=Response, responses={200: {
            "description": "Prometheus text format", "content": {CONTENT_TYPE_LATEST: {}}}},
            openapi_extra={"x-codeq-auth": schemas.PUBLIC.extension()})
        async def metrics(svc: Svc) -> Response:
            """Counters, latency histograms and queue depths; no token needed."""
            scheduler: Scheduler = svc.scheduler
            body = await self.exposition(scheduler.store, scheduler.clock())
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        return router


def route_template(scope: Scope) -> str:
    """The template of the route that answered (``/v1/codeq/tasks/{task_id}``), never the
    raw path, so that the number of label values stays that of the routes.

    The router leaves the matched route in the scope. Its ``path_format`` may lack
    the prefix of the router it was included with, so the template is the part of the
    path before where the route's pattern matches, followed by ``path_format``.
    """
    route = scope.get("route")
    pattern = getattr(route, "path_regex", None)
    template = getattr(route, "path_format", None)
    if pattern is None or template is None:
        return UNMATCHED_ROUTE
    path: str = scope["path"]
    for start, char in enumerate(path):
        if char == "/" and pattern.fullmatch(path[start:]):  # its ``^`` needs a slice
            return path[:start] + template
    return template


class Snapshot:
    """Metric families already read, handed to ``generate_latest`` as a collector."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def store_families(store: Storage, now: float) -> list[Metric]:
    """Queue depths and oldest ready ages per command, the outbox backlog, and
    ``codeq_store_up`` (0, and nothing else, when the store did not answer)."""
    up = GaugeMetricFamily("codeq_store_up", "1 when the store answered this scrape's reads")
    try:
        stats = await store.all_queue_stats(now=now)
        outbox = await store.outbox_size()
    except (CodeqError, ConnectionError, TimeoutError) as exc:
        log.warning("metrics: cannot read queue depths (%s)", exc)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    families: list[Metric] = [up, GaugeMetricFamily(
        "codeq_webhook_outbox_size", "Result webhooks waiting to be delivered", value=outbox)]
    for name, field, text in DEPTHS:
        gauge = GaugeMetricFamily(name, text, labels=["command"])
        for queue in stats:
            gauge.add_metric([queue.command], float(getattr(queue, field)))
        families.append(gauge)
    age = GaugeMetricFamily("codeq_oldest_ready_age_seconds",
                            "How long the longest-waiting ready task has waited (0: none ready)",
                            labels=["command"])
    for queue in stats:
        age.add_metric([queue.command], oldest_ready_age(queue, now))
    families.append(age)
    return families


def oldest_ready_age(stats: QueueStats, now: float) -> float:
    """Seconds since the oldest ready task became ready; 0 when none is (or clocks disagree)."""
    if stats.oldest_ready_at is None:
        return 0.0
    return max(0.0, now - stats.oldest_ready_at)
