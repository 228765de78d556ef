"""The shell pipeline of the README: create -> worker --exec -> wait."""

from __future__ import annotations

import json
import subprocess
import textwrap

from tests.cli.conftest import CODEQ, Api, Cli, stop, until

SQUARE = ("python3 -c 'import json, sys; n = json.load(sys.stdin)[\"n\"]; "
          "print(json.dumps({\"square\": n * n}))'")


def test_shell_pipeline_create_work_wait(cli: Cli) -> None:
    script = textwrap.dedent("""\
        set -eu
        id=$(codeq task create --event SQUARE --payload '{"n": 2}' -o json \\
             | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
        codeq worker start --events SQUARE --wait-seconds 1 --exec "$SQUARE" &
        worker=$!
        codeq task wait "$id" --timeout 30 -o json
        kill -TERM $worker
        wait $worker
        """)
    env = cli.env(SQUARE=SQUARE, PATH=f"{CODEQ.rsplit('/', 1)[0]}:{cli.env()['PATH']}")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "COMPLETED"
    assert record["result"] == {"square": 4}


def test_exec_environment_plain_stdout_and_failures(cli: Cli, api: Api) -> None:
    echo_env = api.create("ENV", {"x": 1}, priority=7)
    plain = api.create("PLAIN", [])
    broken = api.create("BROKEN", {}, maxAttempts=1)
    slow = api.create("SLOW", {}, maxAttempts=1)
    script = (
        'case "$CODEQ_COMMAND" in '
        'ENV) printf \'{"id": "%s", "attempt": %s, "priority": %s, "stdin": %s}\' '
        '"$CODEQ_TASK_ID" "$CODEQ_ATTEMPT" "$CODEQ_PRIORITY" "$(cat)";; '
        'PLAIN) echo "not json";; '
        'BROKEN) echo first >&2; echo "disk on fire" >&2; exit 3;; '
        'SLOW) sleep 30;; esac')
    worker = cli.start("worker", "start", "-e", "ENV,PLAIN", "-e", "BROKEN,SLOW", "--exec",
                       script, "--timeout", "1", "--concurrency", "4", "--wait-seconds", "1")
    try:
        assert cli.json("task", "wait", echo_env, "--timeout", "20")["result"] == {
            "id": echo_env, "attempt": 1, "priority": 7, "stdin": {"x": 1}}
        assert cli.json("task", "wait", plain, "--timeout", "20")["result"] == {
            "stdout": "not json\n"}
        for task, reason in ((broken, "exit status 3: first\ndisk on fire"),
                             (slow, "timed out after 1s")):
            done = cli.run("task", "wait", task, "--timeout", "20", "-o", "json")
            assert done.returncode == 1
            assert json.loads(done.stdout)["status"] == "FAILED"
            nacks = [h for h in api.task(task)["history"] if h["reason"]]
            assert any(reason in h["reason"] for h in nacks), nacks
    finally:
        code, err = stop(worker)
    assert code == 0, err
    assert until(lambda: api.task(slow)["status"] == "FAILED")
