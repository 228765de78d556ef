"""Two ``codeq serve`` processes on one store share the outbox and the group turns."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from codeq.testing.receiver import Receiver
from codeq.testing.redis_server import RedisServer
from codeq.testing.server import ServerProcess
from tests.webhooks.conftest import CONFIG, Api

TASKS = 120


@pytest.fixture(params=["sqlite", "redis"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Api, Api]]:
    with ExitStack() as stack:
        if request.param == "redis":
            storage = stack.enter_context(RedisServer.start(tmp_path / "redis")).url
        else:
            storage = f"sqlite:///{tmp_path / 'shared.db'}"
        apis = [stack.enter_context(Api(stack.enter_context(
            ServerProcess.start(tmp_path / "servers", storage=storage, config=CONFIG))))
            for _ in range(2)]
        yield apis[0], apis[1]


def test_each_callback_delivered_once(pair: tuple[Api, Api], command: str) -> None:
    with Receiver.start() as receiver:
        ids = []
        for index in range(TASKS):
            api = pair[index % 2]
            ids.append(api.create(command, webhook=receiver.url())["id"])
        for index in range(TASKS):
            api = pair[index % 2]
            claimed = api.worker.post("/tasks/claim", json={"commands": [command]}).json()
            done = api.worker.post(f"/tasks/{claimed['id']}/result",
                                   json={"status": "COMPLETED", "result": index})
            assert done.status_code == 200
        receiver.wait_for(TASKS, timeout=30)
        time.sleep(1.0)  # room for a duplicate to show up
        delivered = Counter(r.json()["taskId"] for r in receiver.received())
    assert set(delivered) == set(ids)
    assert max(delivered.values()) == 1, "a callback was delivered twice"


def test_group_turns_are_shared(pair: tuple[Api, Api], command: str) -> None:
    first = pair[0]
    with Receiver.start() as receiver:
        for name in ("r1", "r2", "r3"):
            worker = first.client("worker", sub=name, events=[command], worker_group="shared")
            response = worker.post("/workers/subscriptions", json={
                "callbackUrl": receiver.url(f"/{name}"), "minIntervalSeconds": 0})
            assert response.status_code == 200
        for round_ in range(6):
            api = pair[round_ % 2]
            task = api.create(command)
            receiver.wait_for(round_ + 1)
            claimed = api.worker.post("/tasks/claim", json={"commands": [command]}).json()
            assert claimed["id"] == task["id"]
            api.worker.post(f"/tasks/{task['id']}/result", json={"status": "COMPLETED",
                                                                  "result": None})
        time.sleep(0.3)
    paths = [r.path for r in receiver.received()]
    assert Counter(paths) == {"/r1": 2, "/r2": 2, "/r3": 2}
    # One turn for both servers: the group is walked in one order, whichever server
    # announces (turns kept per process would repeat each member: r1, r1, r2, r2, ...).
    assert len(set(paths[:3])) == 3 and paths[3:] == paths[:3], paths
