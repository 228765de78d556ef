"""``GET /metrics`` of a real server: exact counters, store depths and ages, route templates,
the switch that turns it off, and counters summed over ``codeq serve --workers 2``."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from codeq.testing.server import ServerProcess
from tests.api.flows import claim, create, wait_for

#: (sample name, sorted label pairs) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

TASK_COUNTERS = ("created", "claimed", "completed", "failed", "nacked", "dead_lettered",
                 "lease_expired", "redriven", "cancelled")
DEPTHS = ("ready", "delayed", "in_progress", "dlq")
AGE = "codeq_oldest_ready_age_seconds"
#: Seconds the first task of the age test waits before anything else happens.
AGE_WAIT = 0.3


def scrape(base_url: str) -> Samples:
    """One scrape on a fresh connection (so that any server process may answer it)."""
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def task_counters(samples: Samples, command: str) -> dict[str, float]:
    """Every task counter of ``command`` (0 for one never incremented)."""
    return {event: value(samples, f"codeq_tasks_{event}_total", command=command) or 0.0
            for event in TASK_COUNTERS}


def depths(samples: Samples, command: str) -> dict[str, float | None]:
    return {depth: value(samples, f"codeq_queue_{depth}_tasks", command=command)
            for depth in DEPTHS}


def requests_of(samples: Samples, method: str, route: str, status: int) -> float:
    return value(samples, "codeq_http_request_duration_seconds_count", method=method,
                 route=route, status=str(status)) or 0.0


def test_counters_and_depths_follow_every_transition(server: ServerProcess,
                                                      producer: httpx.Client,
                                                      worker: httpx.Client, admin: httpx.Client,
                                                      command: str) -> None:
    before = scrape(server.base_url)
    # 8 created; an idempotent replay creates nothing. g goes first (priority 9).
    a = create(producer, command, "a", idempotencyKey="k-a")
    assert create(producer, command, "a", idempotencyKey="k-a")["id"] == a["id"]
    for payload in ("b", "c", "d"):
        create(producer, command, payload)
    batch = producer.post("/tasks/batch", json={"tasks": [
        {"command": command, "payload": "e"}, {"command": command, "payload": "f"}]})
    assert batch.status_code == 200, batch.text
    f = batch.json()["results"][1]["task"]
    g = create(producer, command, "g", priority=9, maxAttempts=1)
    create(producer, command, "h")

    assert producer.post(f"/tasks/{f['id']}/cancel").json()["status"] == "CANCELLED"

    # g: NACKed on its only attempt (DLQ), redriven, claimed again, its lease runs out (DLQ).
    first = claim(worker, command)
    assert first is not None and first["id"] == g["id"]
    assert worker.post(f"/tasks/{g['id']}/nack", json={}).json()["status"] == "dlq"
    assert admin.post(f"/admin/queues/{command}/dlq/redrive", json={}).json() == {"redriven": 1}
    again = claim(worker, command, leaseSeconds=0.2)
    assert again is not None and again["id"] == g["id"]
    wait_for(producer, g["id"], lambda t: t["status"] == "FAILED")

    # a completes (a repeat of the same result counts once), b fails, c is NACKed for later.
    claimed = worker.post("/tasks/claim/batch", json={"commands": [command], "count": 3})
    a_, b_, c_ = claimed.json()["tasks"]
    assert [t["payload"] for t in (a_, b_, c_)] == ["a", "b", "c"]
    for _ in range(2):
        done = worker.post(f"/tasks/{a_['id']}/result",
                           json={"status": "COMPLETED", "result": 1})
        assert done.status_code == 200, done.text
    assert worker.post(f"/tasks/{b_['id']}/result",
                       json={"status": "FAILED", "error": "boom"}).status_code == 200
    assert worker.post(f"/tasks/{c_['id']}/nack",
                       json={"delaySeconds": 60}).json()["status"] == "requeued"

    # d: cancelled while running, then handed back (CANCELLED); e stays in progress.
    d = claim(worker, command)
    assert d is not None and d["payload"] == "d"
    assert producer.post(f"/tasks/{d['id']}/cancel").json()["cancelRequested"] is True
    assert worker.post(f"/tasks/{d['id']}/abandon", json={}).status_code == 200
    e = claim(worker, command)
    assert e is not None and e["payload"] == "e"
    assert producer.get(f"/tasks/{'0' * 8}-0000-4000-8000-{'0' * 12}").status_code == 404
    assert producer.get("/no/such/route/1234").status_code == 404

    after = scrape(server.base_url)
    assert task_counters(after, command) == {
        "created": 8, "claimed": 7, "completed": 1, "failed": 1, "nacked": 1,
        "dead_lettered": 2, "lease_expired": 1, "redriven": 1, "cancelled": 2}
    assert depths(after, command) == {"ready": 1, "delayed": 1, "in_progress": 1, "dlq": 1}
    assert value(after, "codeq_queue_paused", command=command) == 0
    assert value(after, "codeq_store_up") == 1
    assert value(after, "codeq_webhook_outbox_size") == 0
    assert value(after, "codeq_webhook_deliveries_total", command=command) is None

    # Latency by route template, never by raw path; the requests of this test, exactly.
    def grew(method: str, route: str, status: int) -> float:
        return (requests_of(after, method, route, status)
                - requests_of(before, method, route, status))

    assert grew("POST", "/v1/codeq/tasks", 202) == 7
    assert grew("POST", "/v1/codeq/tasks/{task_id}/nack", 200) == 2
    assert grew("POST", "/v1/codeq/tasks/{task_id}/result", 200) == 3
    assert grew("GET", "/v1/codeq/tasks/{task_id}", 404) == 1
    assert grew("GET", "unmatched", 404) == 1
    assert grew("POST", "/v1/codeq/admin/queues/{command}/dlq/redrive", 200) == 1
    routes = {dict(labels).get("route") for (name, labels) in after
              if name == "codeq_http_request_duration_seconds_count"}
    assert all(r == "unmatched" or (r.startswith("/") and "0000" not in r and command not in r)
               for r in routes if r is not None), routes
    buckets = [v for (name, labels), v in after.items()
               if name == "codeq_http_request_duration_seconds_bucket"
               and ("route", "/v1/codeq/tasks") in labels and ("status", "202") in labels]
    assert buckets and max(buckets) == requests_of(after, "POST", "/v1/codeq/tasks", 202)


def test_the_oldest_ready_age_counts_until_the_oldest_task_is_claimed(
        server: ServerProcess, producer: httpx.Client, worker: httpx.Client,
        admin: httpx.Client, command: str) -> None:
    assert value(scrape(server.base_url), AGE, command=command) is None  # a command never used
    started = time.time()
    oldest = create(producer, command, "oldest")
    time.sleep(AGE_WAIT)
    create(producer, command, "urgent", priority=9)
    ready_at = datetime.fromisoformat(
        admin.get(f"/admin/queues/{command}").json()["oldestReadyAt"]).timestamp()
    assert started <= ready_at <= started + AGE_WAIT
    age = value(scrape(server.base_url), AGE, command=command)
    assert age is not None and AGE_WAIT <= age <= time.time() - started

    first = claim(worker, command)  # the priority 9 task: the oldest one still waits
    assert first is not None and first["payload"] == "urgent"
    age = value(scrape(server.base_url), AGE, command=command)
    assert age is not None and AGE_WAIT <= age <= time.time() - started
    second = claim(worker, command)
    assert second is not None and second["id"] == oldest["id"]
    assert value(scrape(server.base_url), AGE, command=command) == 0
    assert admin.get(f"/admin/queues/{command}").json()["oldestReadyAt"] is None


def test_metrics_enabled_false_is_404(tmp_path: Path) -> None:
    with ServerProcess.start(tmp_path, storage="memory://",
                             config={"metricsEnabled": False}) as server:
        assert httpx.get(f"{server.base_url}/metrics").status_code == 404
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200


def _created_in_parallel(server: ServerProcess, command: str, count: int) -> None:
    """``count`` creates, each on its own connection, several at a time: the processes
    sharing the port take turns accepting them."""
    headers = server.headers("producer")

    def one(i: int) -> None:
        response = httpx.post(f"{server.api_url}/tasks", headers=headers, timeout=10,
                              json={"command": command, "payload": i})
        assert response.status_code == 202, response.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def _pids_with_counters(metrics_dir: Path) -> set[str]:
    return {path.stem.split("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}


def test_counters_are_summed_over_server_processes(tmp_path: Path) -> None:
    runtime = tmp_path / "tmp"
    runtime.mkdir()
    command = "MULTI_METRICS"
    with ServerProcess.start(tmp_path / "data", args=("--workers", "2"),
                             env={"TMPDIR": str(runtime)}) as server:
        (metrics_dir,) = runtime.glob("codeq-metrics-*")
        created = 0
        while len(_pids_with_counters(metrics_dir)) < 2:  # both processes created some
            assert created < 240, "one process took every connection"
            _created_in_parallel(server, command, 24)
            created += 24
        for _ in range(6):  # whichever process answers, it reports the sum
            samples = scrape(server.base_url)
            assert value(samples, "codeq_tasks_created_total", command=command) == created
            assert value(samples, "codeq_queue_ready_tasks", command=command) == created
    assert not metrics_dir.exists()  # a fresh directory per run, removed at the end
