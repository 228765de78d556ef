"""Outbound URL policy: no private networks outside dev mode, checked at registration and send."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codeq.core.errors import InvalidInput
from codeq.core.outbound import OutboundPolicy, forbidden_kind
from codeq.testing.receiver import Receiver
from codeq.testing.server import ServerProcess
from tests.webhooks.conftest import CONFIG, Api, down_port

PRODUCER_TOKEN = "prod-producer-token-for-tests"
PROD = {"env": "prod", "producerTokens": [PRODUCER_TOKEN],
        "workerJwksUrl": "http://127.0.0.1:9/jwks.json", "workerIssuer": "https://issuer.test",
        "webhookHmacSecret": "s3cret"}


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"),
    ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("0.0.0.0", "unspecified"), ("::ffff:127.0.0.1", "loopback"),
    ("fd00::1", "private"), ("224.0.0.1", "multicast"), ("93.184.216.34", None),
    ("2606:4700::1111", None),
])
def test_address_kinds(address: str, kind: str | None) -> None:
    assert forbidden_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://localhost/x",
                                 "https://10.0.0.5/hook", "http://[::1]/x",
                                 "http://169.254.169.254/latest/meta-data"])
async def test_private_targets_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="private networks"):
        await OutboundPolicy(allow_private=False).check(url, field="webhook")
    await OutboundPolicy(allow_private=True).check(url)


async def test_public_literal_allowed_and_bad_schemes_refused() -> None:
    policy = OutboundPolicy(allow_private=False)
    await policy.check("https://93.184.216.34/hook")
    with pytest.raises(InvalidInput, match="http"):
        await policy.check("file:///etc/passwd")


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with ServerProcess.start(tmp_path_factory.mktemp("prod"), config=PROD) as server, \
            httpx.Client(base_url=server.api_url, timeout=10,
                         headers={"Authorization": f"Bearer {PRODUCER_TOKEN}"}) as client:
        yield client


@pytest.mark.parametrize("webhook", ["http://127.0.0.1:9/x", "http://10.0.0.1/x",
                                     "http://localhost:8080/done"])
def test_prod_server_refuses_private_webhooks(prod: httpx.Client, webhook: str) -> None:
    response = prod.post("/tasks", json={"command": "C", "payload": {}, "webhook": webhook})
    assert response.status_code == 400
    assert "webhookAllowPrivateNetworks" in response.json()["error"]
    batch = prod.post("/tasks/batch", json={"tasks": [
        {"command": "C", "payload": {}, "webhook": webhook}, {"command": "C", "payload": {}}]})
    first, second = batch.json()["results"]
    assert "private networks" in first["error"] and "id" in second["task"]


def test_prod_server_accepts_public_webhooks(prod: httpx.Client) -> None:
    response = prod.post("/tasks", json={"command": "C", "payload": {},
                                         "webhook": "https://93.184.216.34/hook"})
    assert response.status_code == 202, response.text


def test_allowed_when_configured(tmp_path: Path) -> None:
    config = {**PROD, "webhookAllowPrivateNetworks": True}
    with ServerProcess.start(tmp_path, config=config) as server:
        response = httpx.post(f"{server.api_url}/tasks", timeout=10,
                              headers={"Authorization": f"Bearer {PRODUCER_TOKEN}"},
                              json={"command": "C", "payload": {},
                                    "webhook": "http://127.0.0.1:9/x"})
    assert response.status_code == 202, response.text


def test_a_callback_to_a_private_target_is_refused_again_at_send(tmp_path: Path) -> None:
    """A webhook accepted while private targets were allowed (here: a dev server) is checked
    again when its callback goes out: a prod server on the same store never sends it."""
    config = {**CONFIG, "resultWebhookMaxAttempts": 100}
    with down_port() as port, ServerProcess.start(tmp_path, config=config) as dev, \
            Api(dev) as api:
        task = api.create("OUTBOUND", webhook=f"http://127.0.0.1:{port}/late")
        assert api.finish(task["id"], "OUTBOUND").status_code == 200
        # Nobody listens yet: the first attempt fails; the callback stays in the outbox.
        deadline = time.monotonic() + 10
        while "result callback failed" not in dev.logs():
            assert time.monotonic() < deadline, dev.logs()
            time.sleep(0.05)
    with Receiver.start(port=port) as receiver, \
            ServerProcess.start(tmp_path, config={**PROD, **config}) as prod:
        deadline = time.monotonic() + 10
        while "private networks" not in prod.logs():  # the prod server tried, and refused
            assert receiver.received() == [], "a callback reached a private address"
            assert time.monotonic() < deadline, prod.logs()
            time.sleep(0.05)
        time.sleep(0.5)
        assert receiver.received() == []
        assert task["id"] in prod.logs()
