"""task / queue / admin commands: output, exit codes, JSON purity, errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Api, Cli, logged, stop, until


def test_task_create_options_and_payload_sources(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "payload.json").write_text('{"from": "file"}')
    from_file = cli.json("task", "create", "-e", "OPTS", "--payload", "@payload.json",
                         "--priority", "12", "--max-attempts", "3", "--idempotency-key", "k-1",
                         "--delay-seconds", "3600", "--webhook", "http://127.0.0.1:9/hook")
    assert from_file["payload"] == {"from": "file"}
    assert (from_file["priority"], from_file["maxAttempts"]) == (9, 3)
    assert from_file["visibleAt"] and from_file["webhook"] == "http://127.0.0.1:9/hook"
    again = cli.json("task", "create", "-e", "OPTS", "--payload", "-", "--idempotency-key",
                     "k-1", input='{"from": "file"}')
    assert again["id"] == from_file["id"]
    at = cli.json("task", "create", "-e", "OPTS", "--run-at", "2999-01-01T00:00:00+00:00")
    assert at["runAt"].startswith("2999-01-01")
    bad = cli.run("task", "create", "-e", "OPTS", "--payload", "{nope")
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr and bad.stdout == ""
    conflict = cli.run("task", "create", "-e", "OPTS", "--idempotency-key", "k-1",
                       "--payload", "2", "-o", "json")
    assert conflict.returncode == 1 and conflict.stdout == ""
    assert "different payload" in conflict.stderr and "HTTP 409" in conflict.stderr
    invalid = cli.run("task", "create", "-e", "bad name!")
    assert invalid.returncode == 1 and "HTTP 400" in invalid.stderr


def test_get_list_cancel_and_wait_on_cancelled(cli: Cli) -> None:
    task = cli.json("task", "create", "-e", "LISTED", "--payload", '{"a": 1}')
    shown = cli.ok("task", "get", task["id"], "--history")
    assert task["id"] in shown.stdout and "created" in shown.stdout
    assert cli.json("task", "get", task["id"])["payload"] == {"a": 1}
    page = cli.json("task", "list", "--event", "LISTED", "--status", "pending")
    assert [t["id"] for t in page["tasks"]] == [task["id"]]
    table = cli.ok("task", "list", "--event", "LISTED")
    assert task["id"] in table.stdout and "PENDING" in table.stdout
    missing = cli.run("task", "result", task["id"])
    assert missing.returncode == 1 and "no result yet" in missing.stderr
    assert cli.json("task", "cancel", task["id"])["status"] == "CANCELLED"
    waited = cli.run("task", "wait", task["id"], "--timeout", "5")
    assert waited.returncode == 1 and "cancelled" in waited.stderr
    again = cli.run("task", "cancel", task["id"])
    assert again.returncode == 1 and "HTTP 409" in again.stderr
    unknown = cli.run("task", "get", "00000000-0000-4000-8000-000000000000", "-o", "json")
    assert unknown.returncode == 1 and unknown.stdout == "" and "HTTP 404" in unknown.stderr
    timed_out = cli.run("task", "wait", cli.json("task", "create", "-e", "LISTED")["id"],
                        "--timeout", "0.5")
    assert timed_out.returncode == 1 and "timed out" in timed_out.stderr


def test_queue_admin_commands_and_ack_modes(cli: Cli, api: Api) -> None:
    doomed = cli.json("task", "create", "-e", "OPS", "--max-attempts", "1")
    worker = cli.start("worker", "start", "-e", "OPS", "--ack", "nack", "--nack-delay", "0",
                       "--wait-seconds", "1")
    try:
        until(lambda: api.task(doomed["id"])["status"] == "FAILED")
    finally:
        code, err = stop(worker)
    assert code == 0 and logged(err, "retried", "OPS", doomed["id"]), err
    queues = cli.json("queue", "list")["queues"]
    assert {"command": "OPS", "ready": 0, "delayed": 0, "inProgress": 0, "dlq": 1,
            "paused": False, "oldestReadyAt": None} in queues
    assert cli.json("queue", "inspect", "OPS")["dlq"] == 1
    dlq = cli.json("queue", "inspect", "OPS", "--dlq")
    assert [t["id"] for t in dlq["tasks"]] == [doomed["id"]]
    assert doomed["id"] in cli.ok("queue", "inspect", "OPS", "--dlq").stdout
    assert cli.json("queue", "pause", "OPS")["paused"] is True
    assert cli.json("queue", "redrive", "OPS", "--id", doomed["id"]) == {"redriven": 1}
    assert api.claim("OPS") is None  # paused: nothing is handed out
    assert cli.json("queue", "resume", "OPS")["paused"] is False
    worker = cli.start("worker", "start", "-e", "OPS", "--ack", "complete", "--wait-seconds", "1")
    try:
        done = cli.json("task", "wait", doomed["id"], "--timeout", "20")
    finally:
        stop(worker)
    assert done["result"] == {"acknowledged": True}
    cleaned = cli.json("admin", "cleanup", "--command", "OPS", "--limit", "10")
    assert cleaned["deleted"] == 0 and cleaned["limit"] == 10
    later = cli.json("admin", "cleanup", "--command", "OPS", "--before",
                     "2999-01-01T00:00:00+00:00")
    assert later["deleted"] == 1
    gone = cli.run("task", "get", doomed["id"])
    assert gone.returncode == 1


def test_admin_routes_need_an_admin_token(cli: Cli) -> None:
    assert cli.server is not None
    producer = cli.server.token("producer")
    refused = cli.run("--producer-token", producer, "queue", "list")
    assert refused.returncode == 1 and "HTTP 403" in refused.stderr
    allowed = cli.run("--producer-token", producer, "--admin", "queue", "list", "-o", "json")
    assert allowed.returncode == 0, allowed.stderr
    assert isinstance(json.loads(allowed.stdout)["queues"], list)
