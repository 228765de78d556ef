"""SIGTERM mid-handler: with grace the task completes; without, it is given back at once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Api, Cli, logged, stop, until


def test_sigterm_with_grace_finishes_the_task(cli: Cli, api: Api, tmp_path: Path) -> None:
    task_id = api.create("GRACEFUL")
    started = tmp_path / "handler-started"
    worker = cli.start("worker", "start", "-e", "GRACEFUL", "--wait-seconds", "1",
                       "--grace-seconds", "20", "--exec",
                       f'touch {started}; sleep 2; echo \'{{"done": true}}\'')
    # The handler runs: the worker holds the task (IN_PROGRESS in the store is not enough,
    # the claim's answer may still be on its way, and a task that arrives after a stop is
    # handed back).
    until(started.exists)
    code, err = stop(worker, signal.SIGTERM)
    assert code == 0, err
    assert "SIGTERM: finishing in-flight tasks" in err
    task = api.task(task_id)
    assert task["status"] == "COMPLETED", err
    result = httpx.get(f"{api.server.api_url}/tasks/{task_id}/result",
                       headers=api.server.headers("producer")).json()["result"]
    assert result["result"] == {"done": True}


@pytest.mark.parametrize("how", [("--abandon-on-stop",), ("--grace-seconds", "0.5")],
                         ids=["abandon-on-stop", "grace-expires"])
def test_sigterm_without_grace_abandons_and_the_task_is_claimable(
        cli: Cli, api: Api, how: tuple[str, ...]) -> None:
    event = "IMPATIENT" + how[0].replace("-", "_").upper()
    task_id = api.create(event)
    worker = cli.start("worker", "start", "-e", event, "--wait-seconds", "1", *how,
                       "--exec", "sleep 60")
    until(lambda: api.task(task_id)["status"] == "IN_PROGRESS")
    started = time.monotonic()
    code, err = stop(worker, signal.SIGTERM)
    assert code == 0, err
    assert time.monotonic() - started < 8
    task = api.task(task_id)
    assert (task["status"], task["attempts"]) == ("PENDING", 1), err
    assert task["history"][-1]["event"] == "abandoned"
    claimed = api.claim(event)
    assert claimed is not None and claimed["id"] == task_id
    assert logged(err, "abandoned", event, task_id), err
