"""Worker availability notifications: who is told, when, how often, and the token rules."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from codeq.core.config import load_settings
from codeq.plugins import open_storage
from codeq.testing.receiver import Receiver
from codeq.testing.server import ServerProcess
from tests.webhooks.conftest import CONFIG, Api, assert_signed

NOTIFICATION_FIELDS = {"eventType", "available", "queueDepth", "claimUrl", "sentAt",
                       "notificationId"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver.start() as running:
        yield running


def subscribe(worker: httpx.Client, url: str, **body: Any) -> str:
    response = worker.post("/workers/subscriptions", json={"callbackUrl": url,
                                                           "minIntervalSeconds": 0, **body})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"subscriptionId", "expiresAt"}
    return str(response.json()["subscriptionId"])


def drain(api: Api, command: str) -> None:
    """Claim and finish everything ready, so the next create fills an empty queue."""
    while True:
        claimed = api.worker.post("/tasks/claim", json={"commands": [command]})
        if claimed.status_code == 204:
            return
        api.worker.post(f"/tasks/{claimed.json()['id']}/result",
                        json={"status": "COMPLETED", "result": None})


def test_fanout_reaches_every_subscriber_signed(api: Api, command: str,
                                                receiver: Receiver) -> None:
    for name in ("a", "b"):
        subscribe(api.client("worker", sub=f"fan-{name}", events=[command]),
                  receiver.url(f"/{name}"))
    api.create(command)
    api.create(command)  # the queue was not empty: no second notification
    [to_a] = receiver.wait_for(1, path="/a")
    [to_b] = receiver.wait_for(1, path="/b")
    time.sleep(0.3)
    assert len(receiver.received()) == 2
    body = to_a.json()
    assert set(body) == NOTIFICATION_FIELDS
    assert body["eventType"] == command and body["available"] is True
    assert body["queueDepth"] >= 1 and body["claimUrl"] == "/v1/codeq/tasks/claim"
    assert body["notificationId"] != to_b.json()["notificationId"]
    assert_signed(to_a)


def test_group_mode_round_robins(api: Api, command: str, receiver: Receiver) -> None:
    for name in ("m1", "m2", "m3"):
        subscribe(api.client("worker", sub=name, events=[command], worker_group=f"g-{command}"),
                  receiver.url(f"/{name}"))
    for round_ in range(6):
        api.create(command)
        receiver.wait_for(round_ + 1)
        drain(api, command)
    assert Counter(r.path for r in receiver.received()) == {"/m1": 2, "/m2": 2, "/m3": 2}


def test_hash_mode_picks_one_subscriber_per_minute(api: Api, command: str,
                                                   receiver: Receiver) -> None:
    if time.time() % 60 > 50:  # let the three notifications share one minute
        time.sleep(61 - time.time() % 60)
    for name in ("h1", "h2", "h3"):
        subscribe(api.client("worker", sub=name, events=[command]), receiver.url(f"/{name}"),
                  deliveryMode="hash")
    for round_ in range(3):
        api.create(command)
        receiver.wait_for(round_ + 1)
        drain(api, command)
    assert len({r.path for r in receiver.received()}) == 1


def test_throttled_by_min_interval(api: Api, command: str, receiver: Receiver) -> None:
    subscribe(api.client("worker", sub="slow", events=[command]), receiver.url(),
              minIntervalSeconds=3)
    api.create(command)
    receiver.wait_for(1)
    drain(api, command)
    api.create(command)
    time.sleep(0.5)
    assert len(receiver.received()) == 1, "a second notification inside minIntervalSeconds"


def test_delayed_task_notifies_when_it_becomes_visible(api: Api, command: str,
                                                       receiver: Receiver) -> None:
    subscribe(api.client("worker", sub="patient", events=[command]), receiver.url())
    created_at = time.time()
    api.create(command, delaySeconds=1.5)
    [request] = receiver.wait_for(1, timeout=5)
    assert 1.5 - 0.05 <= request.at - created_at <= 2.5
    assert request.json()["queueDepth"] == 1


def test_expired_subscription_gets_nothing_and_is_swept(api: Api, command: str,
                                                        receiver: Receiver) -> None:
    worker = api.client("worker", sub="brief", events=[command])
    subscription_id = subscribe(worker, receiver.url(), ttlSeconds=0.5)
    time.sleep(1.2)  # expired, and the sweep (every 0.5 s) has run
    api.create(command)
    time.sleep(0.5)
    assert receiver.received() == []
    assert worker.post(f"/workers/subscriptions/{subscription_id}/heartbeat").status_code == 404

    async def stored() -> object:
        store = open_storage(api.server.storage, load_settings(environ={}))
        await store.open()
        try:
            return await store.get_subscription(subscription_id)
        finally:
            await store.close()

    assert asyncio.run(stored()) is None, "the sweep removed it from the store"


def test_expired_subscription_is_dead_before_any_sweep(tmp_path: Path, command: str,
                                                       receiver: Receiver) -> None:
    """Expiry alone ends a subscription: with the sweep far away, an expired (still stored)
    subscription is neither notified nor renewable."""
    config = {**CONFIG, "subscriptionCleanupIntervalSeconds": 3600}
    with ServerProcess.start(tmp_path, config=config) as server, Api(server) as api:
        worker = api.client("worker", sub="lapsed", events=[command])
        subscription_id = subscribe(worker, receiver.url(), ttlSeconds=0.5)
        time.sleep(1.2)
        api.create(command)
        time.sleep(0.5)
        assert receiver.received() == []
        heartbeat = worker.post(f"/workers/subscriptions/{subscription_id}/heartbeat")
        assert heartbeat.status_code == 404, heartbeat.text

        async def stored() -> object:
            store = open_storage(server.storage, load_settings(environ={}))
            await store.open()
            try:
                return await store.get_subscription(subscription_id)
            finally:
                await store.close()

        assert asyncio.run(stored()) is not None, "not swept: expiry alone refused it"


def test_renew_and_delete_only_by_the_subscriber(api: Api, command: str,
                                                 receiver: Receiver) -> None:
    owner = api.client("worker", sub="owner", events=[command])
    other = api.client("worker", sub="other", events=[command])
    subscription_id = subscribe(owner, receiver.url(), ttlSeconds=60)
    path = f"/workers/subscriptions/{subscription_id}"
    assert other.post(f"{path}/heartbeat").status_code == 403
    assert other.delete(path).status_code == 403
    asked = time.time()
    renewed = owner.post(f"{path}/heartbeat", json={"ttlSeconds": 600})
    assert renewed.status_code == 200 and renewed.json()["subscriptionId"] == subscription_id
    # The new expiry is the asked TTL from now (not the 60 s given at registration, nor
    # the 300 s default).
    expires_at = datetime.fromisoformat(renewed.json()["expiresAt"]).timestamp()
    assert asked + 600 - 5 <= expires_at <= time.time() + 600 + 1, renewed.json()
    assert owner.delete(path).status_code == 204
    assert owner.delete(path).status_code == 404
    api.create(command)
    time.sleep(0.5)
    assert receiver.received() == []


@pytest.mark.parametrize(("token", "body", "status", "message"), [
    ({"events": ["A"]}, {"eventTypes": ["B"]}, 403, "event type"),
    ({"events": ["A"]}, {"eventTypes": ["*"]}, 403, "every event type"),
    ({"events": ["A"], "scopes": ["codeq:claim"]}, {}, 403, "codeq:subscribe"),
    ({"events": ["A"]}, {"deliveryMode": "group"}, 400, "groupId"),
    ({"events": ["A"], "worker_group": "g1"}, {"groupId": "g2"}, 400, "workerGroup"),
    ({"events": ["A"]}, {"callbackUrl": "ftp://x/y"}, 400, "callbackUrl"),
    ({"events": ["A"]}, {"ttlSeconds": 0}, 400, "ttlSeconds"),
])
def test_refused(api: Api, token: dict[str, Any], body: dict[str, Any], status: int,
                 message: str) -> None:
    worker = api.client("worker", sub="picky", **token)
    response = worker.post("/workers/subscriptions",
                           json={"callbackUrl": "http://127.0.0.1:9/x", **body})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_group_defaults_from_the_token(api: Api, command: str, receiver: Receiver) -> None:
    for name in ("crew-1", "crew-2"):  # no deliveryMode: the token's group makes it "group"
        grouped = api.client("worker", sub=name, events=[command], worker_group="crew")
        subscribe(grouped, receiver.url(f"/{name}"))
    plain = api.client("worker", sub="loner", events=[command])
    subscribe(plain, receiver.url("/loner"), deliveryMode="group", groupId="solo")
    api.create(command)
    paths = {r.path for r in receiver.wait_for(2)}
    time.sleep(0.3)  # room for a third notification (fanout would tell both crew members)
    assert len(receiver.received()) == 2, receiver.received()
    assert "/loner" in paths and len(paths & {"/crew-1", "/crew-2"}) == 1, paths
