"""The receiver shown in docs/webhooks.md works as documented against a real server."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from codeq.core.signing import sign
from codeq.testing.server import free_port
from tests.webhooks.conftest import SECRET, Api

DOC = Path(__file__).parents[2] / "docs" / "webhooks.md"


def receiver_code() -> str:
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    [code] = [b for b in blocks if "verify_signature" in b and "HTTPServer" in b]
    return code


def wait_listening(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"the receiver did not listen on {port}")


def test_documented_receiver(api: Api, command: str, tmp_path: Path) -> None:
    script = tmp_path / "receiver.py"
    script.write_text(receiver_code())
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True,
                               env={"WEBHOOK_HMAC_SECRET": SECRET, "PORT": str(port),
                                    "PATH": "/usr/bin:/bin"})
    try:
        wait_listening(port)
        url = f"http://127.0.0.1:{port}/done"
        task = api.create(command, webhook=url)
        api.finish(task["id"], command)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"task {task['id']} ended COMPLETED"

        body = b'{"taskId": "x", "status": "COMPLETED"}'
        stale = str(int(time.time()) - 301)
        fresh = str(int(time.time()))
        for timestamp, signature, sent in [
            (stale, sign(SECRET, stale, body), body),
            (fresh, sign(SECRET, fresh, body), body + b" "),
            (fresh, sign("other secret", fresh, body), body),
        ]:
            answer = httpx.post(url, content=sent, headers={"X-CodeQ-Timestamp": timestamp,
                                                            "X-CodeQ-Signature": signature})
            assert answer.status_code == 401
        ok = httpx.post(url, content=body, headers={"X-CodeQ-Timestamp": fresh,
                                                    "X-CodeQ-Signature": sign(SECRET, fresh, body)})
        assert ok.status_code == 204
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
