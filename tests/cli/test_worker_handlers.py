"""``worker start --handler module:function`` with sync and async functions, Retry and Fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.cli.conftest import Api, Cli, logged, stop, until

HANDLERS = textwrap.dedent("""\
    import asyncio
    import codeq


    def act(job):
        op = job.payload["op"]
        if op == "retry" and job.attempts == 1:
            raise codeq.Retry("not yet", delay_seconds=0)
        if op == "fail":
            raise codeq.Fail(error="bad input: " + job.payload.get("why", "?"))
        if op == "crash":
            raise ValueError("boom")
        return {"op": op, "attempt": job.attempts, "kind": KIND}


    def sync_handler(job):
        return act(job)


    async def async_handler(job):
        await asyncio.sleep(0)
        return act(job)
    """)


@pytest.mark.parametrize("handler", ["sync_handler", "async_handler"])
def test_handler_results_retry_and_fail(cli: Cli, api: Api, handler: str) -> None:
    (cli.cwd / "myhandlers.py").write_text(HANDLERS.replace("KIND", repr(handler)))
    event = event_name = f"PY_{handler.upper()}"
    ids = {op: api.create(event, {"op": op, "why": "odd"}, maxAttempts=2,
                          backoff={"policy": "fixed", "baseSeconds": 0})
           for op in ("ok", "retry", "fail", "crash")}
    worker = cli.start("worker", "start", "-e", event, "--handler", f"myhandlers:{handler}",
                       "--concurrency", "2", "--wait-seconds", "1")
    try:
        assert cli.json("task", "wait", ids["ok"], "--timeout", "20")["result"] == {
            "op": "ok", "attempt": 1, "kind": handler}
        assert cli.json("task", "wait", ids["retry"], "--timeout", "20")["result"] == {
            "op": "retry", "attempt": 2, "kind": handler}
        failed = cli.run("task", "wait", ids["fail"], "--timeout", "20", "-o", "json")
        assert failed.returncode == 1
        assert "bad input: odd" in failed.stderr
        fail_task = api.task(ids["fail"])
        assert (fail_task["status"], fail_task["attempts"]) == ("FAILED", 1)
        crash = until(lambda: (t := api.task(ids["crash"]))["status"] == "FAILED" and t)
        assert crash["attempts"] == 2 and crash["deadLettered"]
        assert [h["reason"] for h in crash["history"] if h["event"] == "nacked"] == [
            "ValueError: boom"] * 2
    finally:
        code, err = stop(worker)
    assert code == 0, err
    for event, op in (("completed", "ok"), ("retried", "retry"), ("completed", "retry"),
                      ("failed", "fail"), ("retried", "crash")):
        assert logged(err, event, event_name, ids[op]), (event, op, err)


def test_handler_that_cannot_be_imported_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    done = cli.run("worker", "start", "-e", "X", "--handler", "no_such_module:fn")
    assert done.returncode == 2
    assert "no_such_module" in done.stderr
    done = cli.run("worker", "start", "-e", "X")
    assert done.returncode == 2
    assert "exactly one of --exec, --handler or --ack" in done.stderr


def test_quiet_logs_only_what_needs_attention(cli: Cli, api: Api) -> None:
    good = api.create("QUIET", {"x": "good"})
    bad = api.create("QUIET", {"x": "bad"}, maxAttempts=1)
    worker = cli.start("worker", "start", "-e", "QUIET", "--quiet", "--wait-seconds", "1",
                       "--exec", 'grep -q bad && { echo "upstream is down" >&2; exit 1; }; '
                                 'echo "{}"')
    try:
        until(lambda: {api.task(good)["status"], api.task(bad)["status"]} ==
              {"COMPLETED", "FAILED"})
    finally:
        code, err = stop(worker)
    assert code == 0, err
    events = [line.split()[1] for line in err.splitlines() if line[:4].isdigit()]
    assert events == ["retried", "stopping"], err  # not the claims, nor the completion
    assert f"QUIET {bad}" in err and "upstream is down" in err
    assert "worker stopped" in err and "completed 1" in err  # still counted
