"""Outbound webhooks: availability notifications and durable result callbacks.

``Sender`` POSTs signed JSON after checking the outbound policy again (a name
may resolve elsewhere than it did at registration). ``Notifier`` hears the
store's ``available`` feed and tells the chosen subscribers, in background
tasks, so the request that filled the queue never waits for a receiver.
``CallbackDispatcher`` drains the store's outbox: each due callback is taken
(and held, so another server process does not send the same attempt), sent,
and either removed or rescheduled with exponential backoff until
``resultWebhookMaxAttempts``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import suppress
from typing import Any

import httpx

import codeq
from codeq.core import render
from codeq.core.config import Settings
from codeq.core.domain import Callback
from codeq.core.errors import InvalidInput
from codeq.core.events import Event
from codeq.core.jsontext import dumps
from codeq.core.scheduler import Scheduler
from codeq.core.signing import signature_headers
from codeq.core.subscriptions import Subscriptions

log = logging.getLogger("codeq.webhooks")

CLAIM_URL = "/v1/codeq/tasks/claim"
NOTIFY_TIMEOUT_SECONDS = 2.0
CALLBACK_TIMEOUT_SECONDS = 10.0
#: How long a taken callback is held: longer than one send can take.
CALLBACK_HOLD_SECONDS = 3 * CALLBACK_TIMEOUT_SECONDS
CALLBACK_BATCH = 50


class DeliveryFailed(Exception):
    """The receiver did not take the webhook; the message says why."""


class Sender:
    def __init__(self, settings: Settings, scheduler: Scheduler, timeout: float) -> None:
        self.secret = settings.webhook_hmac_secret
        self.outbound = scheduler.outbound
        self.http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False,
                                      headers={"user-agent": f"codeq/{codeq.__version__}"})

    async def post(self, url: str, payload: dict[str, Any]) -> None:
        try:
            await self.outbound.check(url)
        except InvalidInput as exc:
            raise DeliveryFailed(exc.message) from None
        body = dumps(payload)  # a result may hold what orjson refuses (wide integers)
        headers = {"content-type": "application/json",
                   **signature_headers(self.secret, body, time.time())}
        try:
            response = await self.http.post(url, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: a URL stored earlier
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"the receiver answered {response.status_code}")

    async def aclose(self) -> None:
        await self.http.aclose()


class Notifier:
    """Worker-availability notifications: best effort, never retried, never blocking."""

    def __init__(self, scheduler: Scheduler, subscriptions: Subscriptions,
                 settings: Settings) -> None:
        self.scheduler = scheduler
        self.subscriptions = subscriptions
        self.sender = Sender(settings, scheduler, NOTIFY_TIMEOUT_SECONDS)
        self._running: set[asyncio.Task[None]] = set()
        self._unsubscribe = scheduler.store.available.subscribe(self._available)

    def _available(self, command: str) -> None:
        task = asyncio.get_running_loop().create_task(self._notify(command))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _notify(self, command: str) -> None:
        try:
            now = self.scheduler.clock()
            recipients = await self.subscriptions.recipients(command, now)
            if not recipients:
                return
            stats = await self.scheduler.store.queue_stats(command, now=now)
        except Exception as exc:  # noqa: BLE001 - the store is down: advisory, so dropped
            log.warning("availability notification for %s skipped: %s", command, exc)
            return
        sent_at = render.timestamp(now, self.scheduler.settings.tz)
        await asyncio.gather(*(self._send(s.id, s.callback_url, {
            "eventType": command, "available": True, "queueDepth": stats.ready,
            "claimUrl": CLAIM_URL, "sentAt": sent_at, "notificationId": str(uuid.uuid4()),
        }) for s in recipients))

    async def _send(self, subscription_id: str, url: str, body: dict[str, Any]) -> None:
        try:
            await self.sender.post(url, body)
        except DeliveryFailed as exc:
            log.info("availability notification not delivered",
                     extra={"subscriptionId": subscription_id, "command": body["eventType"],
                            "reason": str(exc)})

    async def aclose(self) -> None:
        self._unsubscribe()
        for task in list(self._running):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await self.sender.aclose()


class CallbackDispatcher:
    """Delivers the result callbacks waiting in the store's outbox."""

    def __init__(self, scheduler: Scheduler, settings: Settings) -> None:
        self.scheduler = scheduler
        self.settings = settings
        self.sender = Sender(settings, scheduler, CALLBACK_TIMEOUT_SECONDS)

    def retry_delay(self, attempts: int) -> float:
        """The pause after the ``attempts``-th failed delivery: base, doubling, capped."""
        s = self.settings
        return min(s.result_webhook_base_backoff_seconds * 2.0 ** min(attempts - 1, 64),
                   s.result_webhook_max_backoff_seconds)

    async def step(self) -> int:
        """Send the callbacks due now; returns how many were taken."""
        store = self.scheduler.store
        due = await store.due_callbacks(now=self.scheduler.clock(), limit=CALLBACK_BATCH,
                                        hold_seconds=CALLBACK_HOLD_SECONDS)
        await asyncio.gather(*(self._deliver(callback) for callback in due))
        return len(due)

    async def _deliver(self, callback: Callback) -> None:
        store = self.scheduler.store
        task = await store.get(callback.task_id)
        record = await self.scheduler.result_of(task) if task is not None else None
        if task is None or record is None:  # cleaned up meanwhile: nothing left to tell
            await store.callback_attempted(callback.task_id, attempts=callback.attempts,
                                           retry_at=None)
            return
        body = {"eventType": task.command, **render.result(record, self.settings.tz)}
        attempt = callback.attempts + 1
        context = {"taskId": task.id, "command": task.command, "attempt": attempt}
        retry_at = None
        try:
            await self.sender.post(callback.url, body)
        except DeliveryFailed as exc:
            self.scheduler.recorder.count(Event.WEBHOOK_FAILED, task.command)
            if attempt < self.settings.result_webhook_max_attempts:
                pause = self.retry_delay(attempt)
                retry_at = self.scheduler.clock() + pause
                log.warning("result callback failed; will retry", extra={
                    **context, "reason": str(exc), "retryInSeconds": pause})
            else:
                log.error("result callback failed; giving up after %d attempts", attempt,
                          extra={**context, "reason": str(exc)})
        else:
            self.scheduler.recorder.count(Event.WEBHOOK_DELIVERED, task.command)
            log.info("result callback delivered", extra=context)
        await store.callback_attempted(callback.task_id, attempts=callback.attempts,
                                       retry_at=retry_at)

    async def aclose(self) -> None:
        await self.sender.aclose()
