"""The worker runtime in-process against a real server: concurrency, batches, cancel, stop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from codeq import AsyncClient, Client, Job, Worker
from codeq.client.errors import NotFound
from codeq.testing.server import ServerProcess
from codeq.worker.outcomes import Fail
from codeq.worker.results import MAX_ITEMS, ResultBatcher


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess.start(tmp_path_factory.mktemp("worker"), storage="memory://") as running:
        yield running


@pytest.fixture
def producer(server: ServerProcess) -> Iterator[Client]:
    with Client(server.base_url, server.token("producer")) as client:
        yield client


def worker_client(server: ServerProcess, sub: str) -> AsyncClient:
    return AsyncClient(server.base_url, worker_token=server.token("worker", sub=sub))


async def wait_for(check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return value


class BatchClaimCountingClient(AsyncClient):
    """Records how many tasks each batch claim brought back."""

    claimed: list[int]

    async def claim_batch(self, *args: Any, **kwargs: Any) -> Any:
        tasks = await super().claim_batch(*args, **kwargs)
        self.claimed.append(len(tasks))
        return tasks


async def test_bounded_concurrency_and_batch_claims(server: ServerProcess, producer: Client
                                                    ) -> None:
    ids = [producer.create_task("W_CONC", {"i": i})["id"] for i in range(6)]
    running, peak = 0, 0
    release = asyncio.Event()
    client = BatchClaimCountingClient(server.base_url, worker_token=server.token("worker",
                                                                              sub="conc"))
    client.claimed = []

    async with client:
        worker = Worker(client, ["W_CONC"], concurrency=3, batch=True, wait_seconds=1)

        @worker.handler("W_CONC")
        async def handle(job: Job) -> dict[str, int]:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1
            return {"i": job.payload["i"]}

        runner = asyncio.create_task(worker.run_async(handle_signals=False))
        await wait_for(lambda: peak == 3)
        await asyncio.sleep(0.3)
        assert peak == 3 and worker.stats.in_flight == 3
        release.set()
        await wait_for(lambda: worker.stats.completed == 6)
        worker.stop()
        await asyncio.wait_for(runner, 10)
    assert peak == 3
    # The six tasks were there before the worker started: its first claim takes three at once.
    assert client.claimed and client.claimed[0] == 3, client.claimed
    assert [producer.get_result(i)["result"]["result"] for i in ids] == [
        {"i": i} for i in range(6)]


async def test_a_batch_worker_with_more_slots_than_a_batch_claims_in_batches(
        server: ServerProcess, producer: Client) -> None:
    for start in (0, 600):
        producer.create_tasks([{"command": "W_WIDE", "payload": {"i": i}}
                               for i in range(start, start + 600)])
    client = BatchClaimCountingClient(server.base_url, worker_token=server.token("worker",
                                                                              sub="wide"))
    client.claimed = []
    async with client:
        worker = Worker(client, ["W_WIDE"], concurrency=1500, batch=True, wait_seconds=1)
        worker.handler("W_WIDE")(lambda job: {})
        runner = asyncio.create_task(worker.run_async(handle_signals=False))
        await wait_for(lambda: worker.stats.completed == 1200 or runner.done())
        worker.stop()
        await asyncio.wait_for(runner, 10)
    assert worker.stats.completed == 1200
    assert max(client.claimed) <= MAX_ITEMS
    assert client.claimed[0] == MAX_ITEMS  # the server's limit, not the 1500 free slots


class CountingClient(AsyncClient):
    """Counts the result requests the worker sends."""

    single = 0
    batches: list[int]

    async def submit_result(self, *args: Any, **kwargs: Any) -> Any:
        self.single += 1
        return await super().submit_result(*args, **kwargs)

    async def submit_results(self, results: Any) -> Any:
        self.batches.append(len(results))
        return await super().submit_results(results)


async def test_batch_workers_send_results_together(server: ServerProcess, producer: Client
                                                   ) -> None:
    ids = [t["task"]["id"] for t in producer.create_tasks(
        [{"command": "W_RESULTS", "payload": {"i": i}} for i in range(40)])]
    client = CountingClient(server.base_url, worker_token=server.token("worker", sub="res"))
    client.batches = []
    async with client:
        worker = Worker(client, ["W_RESULTS"], concurrency=10, batch=True, wait_seconds=1)

        @worker.handler("W_RESULTS")
        async def handle(job: Job) -> dict[str, int]:
            await asyncio.sleep(0.01)
            if job.payload["i"] == 7:
                raise Fail("seven is refused")
            return {"i": job.payload["i"]}

        runner = asyncio.create_task(worker.run_async(handle_signals=False))
        await wait_for(lambda: worker.stats.completed + worker.stats.failed == 40)
        worker.stop()
        await asyncio.wait_for(runner, 10)
    assert client.single == 0 and sum(client.batches) == 40
    assert len(client.batches) < 40 and max(client.batches) > 1
    records = [producer.get_result(i)["result"] for i in ids]
    assert [r["status"] for r in records].count("FAILED") == 1
    assert records[7]["error"] == "seven is refused"
    assert [r["result"] for r in records if r["status"] == "COMPLETED"] == [
        {"i": i} for i in range(40) if i != 7]


async def test_a_batched_result_refused_alone_raises_for_its_sender(
        server: ServerProcess, producer: Client) -> None:
    task = producer.create_task("W_REFUSED", {"n": 1})
    async with worker_client(server, "refused") as client:
        [claimed] = await client.claim_batch(1, ["W_REFUSED"], wait_seconds=1)
        batcher = ResultBatcher(client)
        unknown = "00000000-0000-4000-8000-000000000000"
        stored, refused = await asyncio.gather(
            batcher.submit({"taskId": task["id"], "status": "COMPLETED", "result": [1],
                            "leaseId": claimed["leaseId"]}),
            batcher.submit({"taskId": unknown, "status": "COMPLETED", "result": [2]}),
            return_exceptions=True)
    assert stored["status"] == "COMPLETED" and stored["result"] == [1]
    assert isinstance(refused, NotFound) and unknown in str(refused)


async def test_cancel_requested_stops_the_handler_and_the_task_ends_cancelled(
        server: ServerProcess, producer: Client) -> None:
    task = producer.create_task("W_CANCEL", None)
    started, stopped = asyncio.Event(), asyncio.Event()
    async with worker_client(server, "cancel") as client:
        worker = Worker(client, ["W_CANCEL"], lease_seconds=1.5, wait_seconds=1)

        @worker.handler()
        async def handle(job: Job) -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            finally:
                stopped.set()

        runner = asyncio.create_task(worker.run_async(handle_signals=False))
        await asyncio.wait_for(started.wait(), 10)
        assert producer.cancel_task(task["id"])["cancelRequested"] is True
        await asyncio.wait_for(stopped.wait(), 5)  # the next heartbeat (every 0.5 s) says so
        await wait_for(lambda: producer.get_task(task["id"])["status"] == "CANCELLED")
        worker.stop()
        await asyncio.wait_for(runner, 10)
    assert worker.stats.abandoned == 1 and worker.stats.completed == 0


def test_sync_worker_from_a_sync_client_stops_from_another_thread(
        server: ServerProcess, producer: Client) -> None:
    task = producer.create_task("W_SYNC", {"n": 3})
    seen: list[str] = []
    with Client(server.base_url, worker_token=server.token("worker", sub="sync")) as client:
        worker = Worker(client, wait_seconds=1, listener=lambda e, j, d: seen.append(e))

        @worker.handler("W_SYNC")
        def triple(job: Job) -> int:
            assert threading.current_thread() is not threading.main_thread()
            return int(job.payload["n"]) * 3

        def stop_when_done() -> None:
            deadline = time.monotonic() + 15
            while worker.stats.completed < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            worker.stop()

        stopper = threading.Thread(target=stop_when_done)
        stopper.start()
        worker.run()
        stopper.join()
    assert producer.get_result(task["id"])["result"]["result"] == 9
    assert seen[:2] == ["claimed", "completed"]


async def test_a_non_json_result_is_nacked(server: ServerProcess, producer: Client) -> None:
    odd = producer.create_task("W_ODD", None, max_attempts=1)
    async with worker_client(server, "odd") as client:
        worker = Worker(client, ["W_ODD"], wait_seconds=1)

        @worker.handler("W_ODD")
        async def handle(job: Job) -> object:
            return object()

        runner = asyncio.create_task(worker.run_async(handle_signals=False))
        await wait_for(lambda: worker.stats.retried == 1)
        worker.stop()
        await asyncio.wait_for(runner, 10)
    failed = producer.get_task(odd["id"], history=True)
    assert failed["status"] == "FAILED"
    assert any("not JSON" in (h["reason"] or "") for h in failed["history"])


def test_a_worker_needs_a_handler_for_each_event(server: ServerProcess) -> None:
    with Client(server.base_url) as client:
        worker = Worker(client, ["A", "B"])
        with pytest.raises(ValueError, match="register a handler"):
            worker.run()
        worker.handler("A")(lambda job: None)
        with pytest.raises(ValueError, match="no handler for B"):
            worker.run()


async def test_heartbeats_keep_a_long_handler_leased(server: ServerProcess, producer: Client
                                                     ) -> None:
    task = producer.create_task("W_LONG", None)
    async with worker_client(server, "long") as client:
        worker = Worker(client, ["W_LONG"], lease_seconds=1, wait_seconds=1)

        @worker.handler("W_LONG")
        async def handle(job: Job) -> str:
            first = job.lease_until
            await asyncio.sleep(2.5)  # 2.5 leases: only heartbeats keep the task ours
            assert job.lease_until > first
            return "done"

        runner = asyncio.create_task(worker.run_async(handle_signals=False))
        await wait_for(lambda: worker.stats.completed == 1)
        worker.stop()
        await asyncio.wait_for(runner, 10)
    done = producer.get_task(task["id"], history=True)
    assert (done["status"], done["attempts"]) == ("COMPLETED", 1)
    assert [h["event"] for h in done["history"]].count("claimed") == 1
