"""The SDK against a real server: every route it can reach, sync and async."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codeq import AsyncClient, BadRequest, Client, Conflict, Forbidden, NotFound, Unauthorized
from codeq.testing.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess.start(tmp_path_factory.mktemp("sdk"), storage="memory://") as running:
        yield running


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.base_url, producer_token=server.token("admin"),
                worker_token=server.token("worker", sub="sdk-worker")) as c:
        yield c


def test_producer_routes(client: Client) -> None:
    task = client.create_task("SDK_P", {"n": 1}, priority=4, idempotency_key="one")
    assert (task["command"], task["payload"], task["priority"]) == ("SDK_P", {"n": 1}, 4)
    assert client.create_task("SDK_P", {"n": 1}, idempotency_key="one")["id"] == task["id"]
    with pytest.raises(Conflict, match="different payload"):
        client.create_task("SDK_P", {"n": 2}, idempotency_key="one")
    batch = client.create_tasks([{"command": "SDK_P", "payload": 2}, {"command": "bad name"}])
    assert "task" in batch[0] and "error" in batch[1]
    assert client.get_task(task["id"], history=True)["history"][0]["event"] == "created"
    listed = client.list_tasks(command="SDK_P", status="PENDING", limit=10)
    assert {t["id"] for t in listed["tasks"]} >= {task["id"]}
    with pytest.raises(NotFound, match="no result yet"):
        client.get_result(task["id"])
    assert client.cancel_task(task["id"])["status"] == "CANCELLED"
    with pytest.raises(BadRequest):
        client.get_task("not-a-uuid")
    assert client.healthz() == {"status": "ok"}
    client.readyz()


def test_worker_routes(client: Client) -> None:
    first = client.create_task("SDK_W", {"i": 1})
    second = client.create_task("SDK_W", {"i": 2})
    leased = client.claim(["SDK_W"], lease_seconds=30)
    assert leased is not None and leased["id"] == first["id"] and leased["leaseId"]
    beat = client.heartbeat(first["id"], extend_seconds=60, lease_id=leased["leaseId"])
    assert beat["ok"] is True and beat["cancelRequested"] is False
    with pytest.raises(Conflict):
        client.heartbeat(first["id"], lease_id="not-the-lease")
    assert client.abandon(first["id"], lease_id=leased["leaseId"])["status"] == "requeued"
    both = client.claim_batch(5, ["SDK_W"], wait_seconds=0)
    assert {t["id"] for t in both} == {first["id"], second["id"]}
    lease = {t["id"]: t["leaseId"] for t in both}
    nacked = client.nack(second["id"], delay_seconds=0, reason="later", lease_id=lease[second["id"]])
    assert nacked["status"] == "requeued"
    record = client.submit_result(first["id"], "COMPLETED", result={"ok": 1},
                                  lease_id=lease[first["id"]])
    assert record["status"] == "COMPLETED"
    again = client.submit_result(first["id"], "COMPLETED", result={"ok": 1},
                                 lease_id=lease[first["id"]])
    assert again == record  # idempotent re-submission
    assert client.get_result(first["id"])["result"]["result"] == {"ok": 1}
    third = client.claim(["SDK_W"], wait_seconds=1)
    assert third is not None and third["id"] == second["id"]
    results = client.submit_results([{"taskId": second["id"], "status": "FAILED",
                                      "error": "no"}])
    assert results[0]["result"]["status"] == "FAILED"
    assert client.claim(["SDK_W"], wait_seconds=0) is None


def test_admin_routes(client: Client) -> None:
    doomed = client.create_task("SDK_A", None, max_attempts=1)
    leased = client.claim(["SDK_A"])
    assert leased is not None
    assert client.nack(doomed["id"], reason="bad")["status"] == "dlq"
    assert any(q["command"] == "SDK_A" and q["dlq"] == 1 for q in client.list_queues())
    assert client.get_queue("SDK_A")["dlq"] == 1
    assert [t["id"] for t in client.list_dlq("SDK_A", limit=5)["tasks"]] == [doomed["id"]]
    assert client.pause_queue("SDK_A")["paused"] is True
    assert client.redrive("SDK_A", ids=[doomed["id"]]) == {"redriven": 1}
    assert client.resume_queue("SDK_A")["paused"] is False
    assert client.cleanup(limit=5, command="SDK_A")["deleted"] == 0


def test_errors_carry_status_and_message(server: ServerProcess) -> None:
    with Client(server.base_url, "not-a-token") as anonymous, \
            pytest.raises(Unauthorized) as info:
        anonymous.list_tasks()
    assert info.value.status == 401 and info.value.message
    with Client(server.base_url, server.token("producer")) as producer:
        with pytest.raises(Forbidden, match="admin"):
            producer.list_queues()
        with Client(server.base_url, server.token("producer"), admin=True) as dev_admin:
            assert isinstance(dev_admin.list_queues(), list)  # X-Role: ADMIN in dev mode


async def test_async_client_has_the_same_routes(server: ServerProcess) -> None:
    async with AsyncClient(server.base_url, producer_token=server.token("producer"),
                           worker_token=server.token("worker", sub="async-w")) as client:
        task = await client.create_task("SDK_ASYNC", [1, 2])
        leased = await client.claim(["SDK_ASYNC"], wait_seconds=1)
        assert leased is not None and leased["id"] == task["id"]
        await client.submit_result(task["id"], "COMPLETED", result=3, lease_id=leased["leaseId"])
        assert (await client.get_result(task["id"]))["result"]["result"] == 3
        with pytest.raises(NotFound):
            await client.get_task("00000000-0000-4000-8000-000000000000")
    sync_methods = {n for n in vars(Client) if not n.startswith("_")} - {"close", "send"}
    async_methods = {n for n in vars(AsyncClient) if not n.startswith("_")} - {
        "aclose", "send", "from_config"}
    assert sync_methods == async_methods


