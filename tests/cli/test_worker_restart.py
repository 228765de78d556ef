"""A result submission that meets a refused connection (server restarting) still lands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codeq.testing.server import ServerProcess
from tests.cli.conftest import Api, Cli, logged, stop, until


@pytest.fixture
def durable_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server on the default (SQLite) store, so tasks survive its restart."""
    with ServerProcess.start(tmp_path / "durable") as running:
        yield running


def test_result_lands_after_the_server_comes_back(tmp_path: Path,
                                                  durable_server: ServerProcess) -> None:
    server = durable_server
    cli = Cli(home=tmp_path, server=server, cwd=tmp_path)
    r = httpx.post(f"{server.api_url}/tasks", headers=server.headers("producer"),
                   json={"command": "RESTART", "payload": {"n": 1}})
    task_id = r.json()["id"]
    worker = cli.start("worker", "start", "-e", "RESTART", "--lease-seconds", "60",
                       "--wait-seconds", "1", "--exec", 'sleep 2; echo \'{"landed": true}\'')
    try:
        until(lambda: Api(server).task(task_id)["status"] == "IN_PROGRESS")
        server.stop()
        time.sleep(4)  # the handler finishes after 2 s; its result meets a refused connection
        restarted = ServerProcess.launch(server.data_dir, storage=server.storage,
                                         port=server.port)
        try:
            assert restarted.port == server.port
            task = until(lambda: (t := Api(restarted).task(task_id))["status"] == "COMPLETED"
                         and t, timeout=20)
            assert task["attempts"] == 1
            result = httpx.get(f"{restarted.api_url}/tasks/{task_id}/result",
                               headers=restarted.headers("producer")).json()["result"]
            assert result["result"] == {"landed": True}
        finally:
            code, err = stop(worker)
            restarted.stop()
    finally:
        stop(worker)
    assert code == 0, err
    assert "report failed" in err and logged(err, "completed", "RESTART", task_id), err
