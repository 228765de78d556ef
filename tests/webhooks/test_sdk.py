"""The SDK's webhook calls against a real server: subscriptions and artifacts."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime

import pytest

import codeq
from codeq.testing.receiver import Receiver
from tests.webhooks.conftest import Api


@pytest.fixture
def client(api: Api) -> Iterator[codeq.Client]:
    server = api.server
    with codeq.Client(server.base_url, producer_token=server.token("producer"),
                      worker_token=server.token("worker", sub="sdk-worker")) as sdk:
        yield sdk


def test_subscription_round_trip(client: codeq.Client, command: str) -> None:
    with Receiver.start() as receiver:
        made = client.subscribe(receiver.url(), event_types=[command], min_interval_seconds=0)
        renewed = client.renew_subscription(made["subscriptionId"], ttl_seconds=900)
        # Renewed for the asked 900 s, not the 300 s default it was made with.
        gained = (datetime.fromisoformat(renewed["expiresAt"])
                  - datetime.fromisoformat(made["expiresAt"])).total_seconds()
        assert 590 <= gained <= 610, (made, renewed)
        client.create_task(command, {"x": 1})
        [note] = receiver.wait_for(1)
        assert note.json()["eventType"] == command
        client.unsubscribe(made["subscriptionId"])
        with pytest.raises(codeq.NotFound):
            client.unsubscribe(made["subscriptionId"])


def test_artifact_upload_and_download(client: codeq.Client, command: str) -> None:
    task = client.create_task(command, {"x": 1})
    claimed = client.claim([command])
    assert claimed is not None and claimed["id"] == task["id"]
    data = b"\x89PNG\r\n\x1a\n" + bytes(1000)
    record = client.submit_result(task["id"], "COMPLETED", result={"ok": True}, artifacts=[
        {"name": "plot.png", "contentBase64": base64.b64encode(data).decode(),
         "contentType": "image/png"}])
    assert record["artifacts"][0]["contentType"] == "image/png"
    assert client.get_artifact(task["id"], "plot.png") == data
