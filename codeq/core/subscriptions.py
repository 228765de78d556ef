"""Worker availability subscriptions: who subscribes, and who is told when work appears.

Rules of SPEC section 2: a worker token with ``codeq:subscribe`` subscribes
for a subset of its event types; a token claim ``workerGroup`` makes the
delivery mode default to ``group`` and pins the group id; only the subscribing
``sub`` may renew or delete. ``recipients`` picks who hears about a command
whose ready queue just filled: every ``fanout`` subscriber, the next member of
each ``group`` (round-robin, the turn kept in the store so every server
process shares it) and one member of each ``hash`` pool per minute; each
subscriber at most once per its ``minIntervalSeconds``.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable

from codeq.core import models
from codeq.core.auth import ALL_EVENTS, Principal, Scope
from codeq.core.config import Settings
from codeq.core.domain import DeliveryMode, Subscription, new_id
from codeq.core.errors import Forbidden, InvalidInput, NotFound
from codeq.core.outbound import OutboundPolicy
from codeq.core.storage import Storage

#: The time bucket of ``hash`` mode: the same subscriber is picked within it.
HASH_BUCKET_SECONDS = 60
SWEEP_BATCH = 500
#: ``recipients`` reads the subscription list at most this often (it runs on
#: every create into an empty queue); changes made through this process are seen at once.
LIST_CACHE_SECONDS = 1.0


class Subscriptions:
    def __init__(self, store: Storage, settings: Settings, policy: OutboundPolicy,
                 as_worker: Callable[[Principal, Scope], Principal],
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.settings = settings
        self.policy = policy
        self.as_worker = as_worker
        self.clock = clock
        self._listed: tuple[float, list[Subscription]] | None = None

    async def subscribe(self, principal: Principal, req: models.Subscribe) -> Subscription:
        worker = self.as_worker(principal, Scope.SUBSCRIBE)
        if req.event_types is None:
            event_types = list(worker.event_types)
        else:
            if ALL_EVENTS in req.event_types and ALL_EVENTS not in worker.event_types:
                raise Forbidden("eventTypes '*' needs a token that allows every event type")
            worker.require_events(e for e in req.event_types if e != ALL_EVENTS)
            event_types = list(dict.fromkeys(req.event_types))
        if not event_types:
            raise InvalidInput("eventTypes: the token allows no event types to subscribe to")
        mode, group = self._mode_and_group(worker, req)
        await self.policy.check(req.callback_url, field="callbackUrl")
        now = self.clock()
        interval = req.min_interval_seconds
        subscription = Subscription(
            id=new_id(), owner=worker.sub, callback_url=req.callback_url, event_types=event_types,
            delivery_mode=mode, group_id=group,
            min_interval_seconds=(self.settings.subscription_min_interval_seconds
                                  if interval is None else interval),
            created_at=now, expires_at=now + req.ttl_seconds)
        await self.store.save_subscription(subscription)
        self._listed = None
        return subscription

    @staticmethod
    def _mode_and_group(worker: Principal, req: models.Subscribe
                        ) -> tuple[DeliveryMode, str | None]:
        pinned = worker.worker_group
        if pinned is not None and req.group_id is not None and req.group_id != pinned:
            raise InvalidInput(f"groupId {req.group_id!r} differs from the token's workerGroup "
                               f"{pinned!r}; omit groupId or use the token's group")
        group = req.group_id or pinned
        mode = req.delivery_mode or (DeliveryMode.GROUP if pinned else DeliveryMode.FANOUT)
        if mode is DeliveryMode.GROUP and group is None:
            raise InvalidInput("deliveryMode group needs a groupId (or a token with a "
                               "workerGroup claim)")
        return mode, group

    async def _owned(self, principal: Principal, subscription_id: str) -> Subscription:
        worker = self.as_worker(principal, Scope.SUBSCRIBE)
        if not models.is_uuid(subscription_id):
            raise InvalidInput(f"{subscription_id[:64]!r} is not a subscription id "
                               "(a lowercase UUID)")
        found = await self.store.get_subscription(subscription_id)
        if found is None or found.expires_at <= self.clock():
            raise NotFound(f"no subscription with id {subscription_id[:64]}")
        if found.owner != worker.sub:
            raise Forbidden(f"subscription {subscription_id} belongs to another worker")
        return found

    async def renew(self, principal: Principal, subscription_id: str,
                    req: models.RenewSubscription) -> Subscription:
        found = await self._owned(principal, subscription_id)
        found.expires_at = self.clock() + req.ttl_seconds
        if not await self.store.renew_subscription(subscription_id, expires_at=found.expires_at):
            raise NotFound(f"no subscription with id {subscription_id[:64]}")
        self._listed = None
        return found

    async def unsubscribe(self, principal: Principal, subscription_id: str) -> None:
        await self._owned(principal, subscription_id)
        await self.store.delete_subscription(subscription_id)
        self._listed = None

    async def sweep_once(self) -> int:
        """Delete expired subscriptions; returns how many."""
        return await self.store.sweep_subscriptions(now=self.clock(), limit=SWEEP_BATCH)

    async def _active(self, now: float) -> list[Subscription]:
        if self._listed is None or not 0 <= now - self._listed[0] < LIST_CACHE_SECONDS:
            self._listed = (now, await self.store.subscriptions(now=now))
        return [s for s in self._listed[1] if s.expires_at > now]

    async def recipients(self, command: str, now: float) -> list[Subscription]:
        """Who to notify that ``command`` has work, each cleared by its throttle."""
        chosen: list[Subscription] = []
        pools: dict[tuple[DeliveryMode, str | None], list[Subscription]] = defaultdict(list)
        for subscription in await self._active(now):
            if subscription.matches(command):
                pools[subscription.delivery_mode, subscription.group_id].append(subscription)
        for (mode, group), members in pools.items():
            if mode is DeliveryMode.FANOUT:
                candidates = members
            elif mode is DeliveryMode.GROUP:
                turn = await self.store.next_turn(f"group:{group}")
                start = (turn - 1) % len(members)
                candidates = members[start:] + members[:start]
            else:
                bucket = int(now // HASH_BUCKET_SECONDS)
                pick = zlib.crc32(f"{command}|{group}|{bucket}".encode()) % len(members)
                candidates = [members[pick]]
            for subscription in candidates:
                if await self.store.mark_notified(
                        subscription.id, now=now,
                        min_interval_seconds=subscription.min_interval_seconds):
                    chosen.append(subscription)
                    if mode is not DeliveryMode.FANOUT:
                        break
        return chosen
