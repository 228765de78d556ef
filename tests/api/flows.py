"""Small steps the API tests repeat: each one asserts the status it expects."""

from __future__ import annotations

import time
from typing import Any

import httpx


def create(producer: httpx.Client, command: str, payload: Any = None, **fields: Any
           ) -> dict[str, Any]:
    response = producer.post("/tasks", json={"command": command, "payload": payload, **fields})
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


def claim(worker: httpx.Client, command: str, **fields: Any) -> dict[str, Any] | None:
    """The claimed task, or None on 204."""
    response = worker.post("/tasks/claim", json={"commands": [command], **fields})
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


def get(client: httpx.Client, task_id: str, *, history: bool = False) -> dict[str, Any]:
    response = client.get(f"/tasks/{task_id}", params={"history": "true"} if history else None)
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


def events(task: dict[str, Any]) -> list[str]:
    return [entry["event"] for entry in task["history"]]


def wait_for(client: httpx.Client, task_id: str, predicate: Any, *, timeout: float = 5.0
             ) -> dict[str, Any]:
    """GET the task until ``predicate(task)`` holds (with history), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        task = get(client, task_id, history=True)
        if predicate(task):
            return task
        assert time.monotonic() < deadline, f"gave up waiting; last state: {task}"
        time.sleep(0.05)
