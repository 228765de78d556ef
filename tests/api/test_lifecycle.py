"""A task's life through the HTTP API of a real server: the happy path and each detour."""

from __future__ import annotations

import httpx

from tests.api.conftest import Client
from tests.api.flows import claim, create, events, get, wait_for


def test_create_claim_heartbeat_nack_claim_result(producer: httpx.Client, worker: httpx.Client,
                                                   command: str) -> None:
    created = create(producer, command, {"trackId": 42, "big": 2**70, "list": [1, "x", None]},
                     priority=3)
    assert created["status"] == "PENDING" and created["attempts"] == 0
    assert created["payload"] == {"trackId": 42, "big": 2**70, "list": [1, "x", None]}
    assert created["createdAt"].endswith("+00:00")

    first = claim(worker, command, leaseSeconds=60)
    assert first is not None and first["id"] == created["id"]
    assert first["status"] == "IN_PROGRESS" and first["attempts"] == 1
    assert first["workerId"] == "worker-1" and first["leaseId"]

    beat = worker.post(f"/tasks/{first['id']}/heartbeat",
                       json={"extendSeconds": 120, "leaseId": first["leaseId"]})
    assert beat.status_code == 200, beat.text
    assert beat.json()["ok"] is True and beat.json()["cancelRequested"] is False
    assert beat.json()["leaseUntil"] > first["leaseUntil"]

    nacked = worker.post(f"/tasks/{first['id']}/nack",
                         json={"delaySeconds": 0, "reason": "disk full",
                               "leaseId": first["leaseId"]})
    assert nacked.status_code == 200, nacked.text
    assert nacked.json() == {"status": "requeued", "delaySeconds": 0}
    assert get(producer, first["id"])["error"] == "disk full"

    second = claim(worker, command)
    assert second is not None and second["id"] == created["id"]
    assert second["attempts"] == 2 and second["leaseId"] != first["leaseId"]

    assert producer.get(f"/tasks/{created['id']}/result").status_code == 404
    done = worker.post(f"/tasks/{second['id']}/result",
                       json={"status": "COMPLETED", "result": {"url": "s3://x"},
                             "artifacts": [{"name": "log", "url": "https://example.com/l"}]})
    assert done.status_code == 200, done.text
    record = done.json()
    assert record["status"] == "COMPLETED" and record["result"] == {"url": "s3://x"}
    assert record["artifacts"] == [{"name": "log", "url": "https://example.com/l"}]

    again = worker.post(f"/tasks/{second['id']}/result",
                        json={"status": "COMPLETED", "result": {"url": "s3://x"},
                              "artifacts": [{"name": "log", "url": "https://example.com/l"}]})
    assert again.status_code == 200 and again.json() == record  # an idempotent re-send

    fetched = producer.get(f"/tasks/{created['id']}/result")
    assert fetched.status_code == 200
    assert fetched.json()["result"] == record and fetched.json()["task"]["status"] == "COMPLETED"

    task = get(producer, created["id"], history=True)
    assert events(task) == ["created", "claimed", "nacked", "claimed", "completed"]
    assert task["history"][2]["reason"] == "disk full"
    assert task["history"][1]["workerId"] == "worker-1"
    assert "history" not in get(producer, created["id"])


def test_failed_result_is_terminal(producer: httpx.Client, worker: httpx.Client,
                                   command: str) -> None:
    task = create(producer, command, "x")
    assert claim(worker, command) is not None
    failed = worker.post(f"/tasks/{task['id']}/result",
                         json={"status": "FAILED", "error": "bad input"})
    assert failed.status_code == 200 and failed.json()["error"] == "bad input"
    assert get(producer, task["id"])["status"] == "FAILED"
    assert claim(worker, command) is None


def test_dead_letter_after_max_attempts_and_redrive(producer: httpx.Client, worker: httpx.Client,
                                                     admin: httpx.Client, command: str) -> None:
    task = create(producer, command, {"n": 1}, maxAttempts=2)
    for expected in ({"status": "requeued", "delaySeconds": 0},
                     {"status": "dlq", "delaySeconds": 0}):
        claimed = claim(worker, command)
        assert claimed is not None
        answer = worker.post(f"/tasks/{task['id']}/nack", json={"delaySeconds": 0})
        assert answer.status_code == 200 and answer.json() == expected

    dead = get(producer, task["id"], history=True)
    assert dead["status"] == "FAILED" and dead["deadLettered"] is True
    assert dead["error"] == "MAX_ATTEMPTS" and events(dead)[-1] == "dead_lettered"
    result = producer.get(f"/tasks/{task['id']}/result").json()["result"]
    assert result["status"] == "FAILED" and result["error"] == "MAX_ATTEMPTS"

    dlq = admin.get(f"/admin/queues/{command}/dlq")
    assert dlq.status_code == 200 and [t["id"] for t in dlq.json()["tasks"]] == [task["id"]]
    assert admin.get(f"/admin/queues/{command}").json()["dlq"] == 1

    redriven = admin.post(f"/admin/queues/{command}/dlq/redrive", json={"ids": [task["id"]]})
    assert redriven.status_code == 200 and redriven.json() == {"redriven": 1}
    back = get(producer, task["id"])
    assert back["status"] == "PENDING" and back["attempts"] == 0 and not back["deadLettered"]
    stats = admin.get(f"/admin/queues/{command}").json()
    assert stats.pop("oldestReadyAt") is not None
    assert stats == {"command": command, "ready": 1, "delayed": 0, "inProgress": 0, "dlq": 0,
                     "paused": False}
    again = claim(worker, command)
    assert again is not None and again["attempts"] == 1


def test_nack_without_delay_uses_the_backoff_policy(producer: httpx.Client, worker: httpx.Client,
                                                     command: str) -> None:
    task = create(producer, command, 1)
    assert claim(worker, command) is not None
    answer = worker.post(f"/tasks/{task['id']}/nack", json={"reason": "later"})
    assert answer.json() == {"status": "requeued", "delaySeconds": 0.2}  # fixed, 0.2 s
    assert get(producer, task["id"])["visibleAt"] is not None
    assert claim(worker, command) is None  # delayed
    again = claim(worker, command, waitSeconds=2)
    assert again is not None and again["id"] == task["id"]
    answer = worker.post(f"/tasks/{task['id']}/nack", json={"delaySeconds": 10_000})
    assert answer.json() == {"status": "requeued", "delaySeconds": 30}  # backoffMaxSeconds


def test_idempotency_key(producer: httpx.Client, command: str) -> None:
    first = create(producer, command, {"a": 1}, idempotencyKey="order-7")
    second = create(producer, command, {"a": 1}, idempotencyKey="order-7")
    assert second["id"] == first["id"]
    other = producer.post("/tasks", json={"command": command, "payload": {"a": 2},
                                          "idempotencyKey": "order-7"})
    assert other.status_code == 409 and other.json()["taskId"] == first["id"]
    assert "idempotencyKey" in other.json()["error"]
    elsewhere = create(producer, command + "_b", {"a": 2}, idempotencyKey="order-7")
    assert elsewhere["id"] != first["id"]  # keys are per command


def test_priority_then_fifo(producer: httpx.Client, worker: httpx.Client, command: str) -> None:
    ids = {name: create(producer, command, name, priority=priority)["id"]
           for name, priority in [("low-1", 1), ("mid-1", 5), ("top", 9), ("mid-2", 5),
                                  ("low-2", 1), ("clamped", 42)]}
    order = []
    while (task := claim(worker, command)) is not None:
        order.append(task["payload"])
    assert order == ["top", "clamped", "mid-1", "mid-2", "low-1", "low-2"]
    assert get(producer, ids["clamped"])["priority"] == 9


def test_priority_across_commands(producer: httpx.Client, worker: httpx.Client,
                                  command: str) -> None:
    other = command + "_other"
    create(producer, command, "a-low", priority=1)
    create(producer, other, "b-high", priority=7)
    create(producer, command, "a-high", priority=7)
    got = [worker.post("/tasks/claim", json={"commands": [command, other]}).json()["payload"]
           for _ in range(3)]
    assert got == ["b-high", "a-high", "a-low"]


def test_pause_and_resume(producer: httpx.Client, worker: httpx.Client, admin: httpx.Client,
                          command: str) -> None:
    paused = admin.post(f"/admin/queues/{command}/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    task = create(producer, command, "waiting")
    assert claim(worker, command) is None
    stats = admin.get(f"/admin/queues/{command}").json()
    assert stats["paused"] is True and stats["ready"] == 1
    assert command in {q["command"] for q in admin.get("/admin/queues").json()["queues"]}
    resumed = admin.post(f"/admin/queues/{command}/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    claimed = claim(worker, command)
    assert claimed is not None and claimed["id"] == task["id"]


def test_cancel_pending(producer: httpx.Client, worker: httpx.Client, command: str) -> None:
    task = create(producer, command, 1)
    cancelled = producer.post(f"/tasks/{task['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert claim(worker, command) is None
    again = producer.post(f"/tasks/{task['id']}/cancel")
    assert again.status_code == 409 and "CANCELLED" in again.json()["error"]
    no_result = producer.get(f"/tasks/{task['id']}/result")
    assert no_result.status_code == 404 and "cancelled" in no_result.json()["error"]


def test_cancel_running_then_abandon(producer: httpx.Client, worker: httpx.Client,
                                     command: str) -> None:
    task = create(producer, command, 1)
    claimed = claim(worker, command)
    assert claimed is not None
    requested = producer.post(f"/tasks/{task['id']}/cancel")
    assert requested.status_code == 200
    assert requested.json()["status"] == "IN_PROGRESS" and requested.json()["cancelRequested"]
    beat = worker.post(f"/tasks/{task['id']}/heartbeat", json={})
    assert beat.status_code == 200 and beat.json()["cancelRequested"] is True
    gone = worker.post(f"/tasks/{task['id']}/abandon", json={"leaseId": claimed["leaseId"]})
    assert gone.status_code == 200 and gone.json() == {"status": "cancelled"}
    final = get(producer, task["id"], history=True)
    assert final["status"] == "CANCELLED"
    assert events(final)[-3:] == ["cancel_requested", "abandoned", "cancelled"]
    assert claim(worker, command) is None


def test_cancel_running_then_nack_or_result(producer: httpx.Client, worker: httpx.Client,
                                            command: str) -> None:
    nacked = create(producer, command, "nack me")
    assert claim(worker, command) is not None
    producer.post(f"/tasks/{nacked['id']}/cancel")
    answer = worker.post(f"/tasks/{nacked['id']}/nack", json={"reason": "stopped"})
    assert answer.json() == {"status": "cancelled", "delaySeconds": 0}
    assert get(producer, nacked["id"])["status"] == "CANCELLED"

    finished = create(producer, command, "finish me")
    assert claim(worker, command) is not None
    producer.post(f"/tasks/{finished['id']}/cancel")
    done = worker.post(f"/tasks/{finished['id']}/result", json={"status": "COMPLETED", "result": 1})
    assert done.status_code == 200
    assert get(producer, finished["id"])["status"] == "COMPLETED"


def test_abandon_requeues_with_attempts_unchanged(producer: httpx.Client, worker: httpx.Client,
                                                  command: str) -> None:
    task = create(producer, command, 1, priority=4)
    assert claim(worker, command) is not None
    answer = worker.post(f"/tasks/{task['id']}/abandon")
    assert answer.status_code == 200 and answer.json() == {"status": "requeued"}
    back = get(producer, task["id"])
    assert back["status"] == "PENDING" and back["attempts"] == 1 and back["priority"] == 4


def test_batch_create_claim_and_results(producer: httpx.Client, worker: httpx.Client,
                                        command: str) -> None:
    created = producer.post("/tasks/batch", json={"tasks": [
        {"command": command, "payload": 1},
        {"command": "bad name!", "payload": 2},
        {"command": command, "payload": 3, "priority": 9},
        {"command": command, "payload": 4, "surprise": True},
    ]})
    assert created.status_code == 200, created.text
    results = created.json()["results"]
    assert [("task" in r) for r in results] == [True, False, True, False]
    assert results[1]["code"] == 400 and "command" in results[1]["error"]
    assert "unknown field" in results[3]["error"]

    batch = worker.post("/tasks/claim/batch", json={"commands": [command], "count": 5})
    assert batch.status_code == 200
    tasks = batch.json()["tasks"]
    assert [t["payload"] for t in tasks] == [3, 1] and all(t["leaseId"] for t in tasks)
    empty = worker.post("/tasks/claim/batch", json={"commands": [command], "count": 5})
    assert empty.json() == {"tasks": []}

    unknown = "00000000-0000-4000-8000-000000000000"
    answered = worker.post("/tasks/batch/results", json={"results": [
        {"taskId": tasks[0]["id"], "status": "COMPLETED", "result": "three"},
        {"taskId": unknown, "status": "COMPLETED", "result": None},
        {"taskId": tasks[1]["id"], "status": "FAILED"},
        {"taskId": tasks[1]["id"], "status": "FAILED", "error": "one failed"},
    ]})
    assert answered.status_code == 200, answered.text
    items = answered.json()["results"]
    assert [i["taskId"] for i in items] == [tasks[0]["id"], unknown, tasks[1]["id"], tasks[1]["id"]]
    assert items[0]["result"]["result"] == "three"
    assert items[1]["code"] == 404
    assert items[2]["code"] == 400 and "error" in items[2]["error"]
    assert items[3]["result"]["status"] == "FAILED"


def test_list_tasks_with_filters_and_cursor(producer: httpx.Client, worker: httpx.Client,
                                            admin: httpx.Client, command: str) -> None:
    ids = [create(producer, command, i)["id"] for i in range(5)]
    assert claim(worker, command) is not None
    seen: list[str] = []
    cursor = None
    while True:
        page = producer.get("/tasks", params={"command": command, "limit": 2,
                                              **({"cursor": cursor} if cursor else {})}).json()
        seen += [t["id"] for t in page["tasks"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ids
    running = admin.get("/tasks", params={"command": command, "status": "IN_PROGRESS"}).json()
    assert [t["id"] for t in running["tasks"]] == ids[:1]


def test_delayed_task_is_promoted_without_claims(producer: httpx.Client, admin: httpx.Client,
                                                 command: str) -> None:
    task = create(producer, command, 1, delaySeconds=0.6)
    assert task["visibleAt"] is not None
    assert admin.get(f"/admin/queues/{command}").json()["delayed"] == 1
    promoted = wait_for(producer, task["id"], lambda t: "promoted" in events(t))
    assert promoted["status"] == "PENDING"
    assert admin.get(f"/admin/queues/{command}").json()["ready"] == 1


def test_run_at_in_the_past_means_now(producer: httpx.Client, worker: httpx.Client,
                                      command: str) -> None:
    task = create(producer, command, 1, runAt="2001-01-01T00:00:00+02:00", delaySeconds=3600)
    assert task["visibleAt"] is None and task["runAt"].startswith("2000-12-31T22:00:00")
    assert claim(worker, command) is not None


def test_expired_lease_is_redelivered_without_claims(producer: httpx.Client, worker: httpx.Client,
                                                      client: Client, command: str) -> None:
    task = create(producer, command, 1)
    first = claim(worker, command, leaseSeconds=0.3)
    assert first is not None
    back = wait_for(producer, task["id"], lambda t: t["status"] == "PENDING")
    assert back["error"] == "LEASE_EXPIRED" and events(back)[-1] == "lease_expired"
    assert back["workerId"] is None

    late = worker.post(f"/tasks/{task['id']}/result", json={"status": "COMPLETED", "result": 1,
                                                          "leaseId": first["leaseId"]})
    assert late.status_code == 409
    other = client("worker", sub="worker-2")
    second = claim(other, command, waitSeconds=2)
    assert second is not None and second["attempts"] == 2
    fenced = worker.post(f"/tasks/{task['id']}/heartbeat", json={"leaseId": first["leaseId"]})
    assert fenced.status_code == 403  # worker-1 no longer owns it at all
