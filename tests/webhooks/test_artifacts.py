"""Uploaded result artifacts: validated names, byte-identical serving, removal by cleanup."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tests.webhooks.conftest import Api

CONTENT = bytes(range(256)) * 40 + b"\x00end"


def upload(api: Api, command: str, *artifacts: dict[str, object]) -> tuple[str, object]:
    task = api.create(command)
    response = api.finish(task["id"], command, status="COMPLETED", result={"ok": True},
                          artifacts=list(artifacts))
    return task["id"], response


@pytest.mark.parametrize("name", ["../x", "a/b", "", "n" * 300, "a\\b", "..", "tab\there"])
def test_bad_names_are_refused(api: Api, command: str, name: str) -> None:
    task = api.create(command)
    claimed = api.worker.post("/tasks/claim", json={"commands": [command]})
    assert claimed.json()["id"] == task["id"]
    response = api.worker.post(f"/tasks/{task['id']}/result", json={
        "status": "COMPLETED", "result": 1,
        "artifacts": [{"name": name, "contentBase64": "aGk="}]})
    assert response.status_code == 400, response.text
    assert "artifacts" in response.json()["error"]


def test_stored_served_and_cleaned_up(api: Api, command: str) -> None:
    encoded = base64.b64encode(CONTENT).decode()
    task_id, response = upload(
        api, command,
        {"name": "report ü.bin", "contentBase64": encoded, "contentType": "application/x-test"},
        {"name": "elsewhere", "url": "https://example.com/a.png"})
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    served_url = f"/tasks/{task_id}/artifacts/report%20%C3%BC.bin"
    artifacts = response.json()["artifacts"]  # type: ignore[attr-defined]
    assert artifacts[0] == {"name": "report ü.bin", "contentType": "application/x-test",
                            "url": "/v1/codeq" + served_url}
    assert artifacts[1]["url"] == "https://example.com/a.png"

    reader = api.client("producer")
    served = reader.get(served_url)
    assert served.status_code == 200
    assert served.content == CONTENT
    assert served.headers["content-type"] == "application/x-test"
    assert reader.get(f"/tasks/{task_id}/artifacts/elsewhere").status_code == 404
    assert reader.get(f"/tasks/{task_id}/artifacts/missing").status_code == 404
    assert api.client("worker", sub="anyone").get(served_url).status_code == 200
    assert api.producer.get(served_url, headers={"Authorization": ""}).status_code == 401

    folder = Path(api.server.data_dir) / "artifacts" / task_id
    assert (folder / "report ü.bin").read_bytes() == CONTENT
    admin = api.client("admin")
    cleaned = admin.post("/admin/tasks/cleanup", json={"command": command, "before":
                                                       "9999-01-01T00:00:00Z"})
    assert cleaned.status_code == 200 and cleaned.json()["deleted"] == 1, cleaned.text
    assert reader.get(served_url).status_code == 404
    assert not folder.exists()


def test_upload_limits(api: Api, command: str) -> None:
    task = api.create(command)
    api.worker.post("/tasks/claim", json={"commands": [command]})
    for artifact, message in [
        ({"name": "x", "contentBase64": "not base64!"}, "base64"),
        ({"name": "x"}, "either a url or contentBase64"),
        ({"name": "x", "url": "https://a/b", "contentBase64": "aGk="}, "either"),
    ]:
        response = api.worker.post(f"/tasks/{task['id']}/result", json={
            "status": "COMPLETED", "result": 1, "artifacts": [artifact]})
        assert response.status_code == 400 and message in response.json()["error"], response.text
    twice = [{"name": "x", "url": "https://a/b"}, {"name": "x", "url": "https://a/c"}]
    response = api.worker.post(f"/tasks/{task['id']}/result", json={
        "status": "COMPLETED", "result": 1, "artifacts": twice})
    assert response.status_code == 400 and "twice" in response.json()["error"]


def test_only_the_lease_holder_uploads(api: Api, command: str) -> None:
    task = api.create(command)
    api.worker.post("/tasks/claim", json={"commands": [command]})
    stranger = api.client("worker", sub="stranger")
    response = stranger.post(f"/tasks/{task['id']}/result", json={
        "status": "COMPLETED", "result": 1,
        "artifacts": [{"name": "evil", "contentBase64": base64.b64encode(os.urandom(8)).decode()}]})
    assert response.status_code == 403
    assert not (Path(api.server.data_dir) / "artifacts" / task["id"]).exists()
