"""``codeq worker start``: a live status line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
from pathlib import Path

from tests.cli.conftest import CODEQ, Api, Cli, stop, until

CONTROL = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
STATUS = re.compile(r"claimed (\d+) · completed (\d+) · failed (\d+) · retried \d+ · "
                    r"abandoned \d+ · in flight (\d+) · ([\d.]+)/min")
STAMPED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d \S")


class Terminal:
    """A process on a pseudo-terminal of 200 columns; everything it writes is kept."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                                        env=env, cwd=cwd, start_new_session=True)
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the process and its children closed the terminal
                chunk = b""
            if not chunk:
                os.close(self._master)
                return
            self._chunks.append(chunk)

    def raw(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def statuses(self) -> list[tuple[int, ...]]:
        """Every status line drawn so far: (claimed, completed, failed, in flight)."""
        text = CONTROL.sub("", self.raw())
        return [tuple(int(n) for n in m.groups()[:4]) for m in STATUS.finditer(text)]

    def stop(self) -> int:
        """SIGTERM, as at a real stop; killed if it does not end within 20 s."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode


def test_terminal_shows_a_live_status_line(cli: Cli, api: Api) -> None:
    env = cli.env(TERM="xterm-256color")
    terminal = Terminal([CODEQ, "worker", "start", "-e", "LIVE", "--ack", "complete",
                         "--wait-seconds", "1"], env, cli.cwd)
    try:
        until(lambda: (0, 0, 0, 0) in terminal.statuses(), timeout=30)  # start-up
        first = [api.create("LIVE") for _ in range(2)]
        until(lambda: (2, 2, 0, 0) in terminal.statuses())
        last = api.create("LIVE")
        until(lambda: (3, 3, 0, 0) in terminal.statuses())
    finally:
        code = terminal.stop()
    assert code == 0, terminal.raw()
    seen = terminal.statuses()
    assert seen.index((0, 0, 0, 0)) < seen.index((2, 2, 0, 0)) < seen.index((3, 3, 0, 0))
    raw = terminal.raw()
    assert "\r\x1b[2K" in raw  # the status line is redrawn in place, not appended
    assert "3.0/min" in CONTROL.sub("", raw)
    rows = re.split(r"[\r\n]+", CONTROL.sub("", raw))  # what each redraw starts a row with
    for task_id in [*first, last]:
        assert any(re.fullmatch(rf"completed +LIVE {task_id}", row) for row in rows), raw
        assert api.task(task_id)["status"] == "COMPLETED"


def test_without_a_terminal_the_worker_logs_plain_lines(cli: Cli, api: Api) -> None:
    worker = cli.start("worker", "start", "-e", "LOGGED", "--ack", "complete",
                       "--wait-seconds", "1", env=cli.env(TERM="xterm-256color"))
    ids = [api.create("LOGGED") for _ in range(3)]
    until(lambda: all(api.task(i)["status"] == "COMPLETED" for i in ids))
    code, err = stop(worker)
    assert code == 0, err
    assert "\x1b" not in err and "\r" not in err
    lines = err.splitlines()
    for task_id in ids:
        assert any(STAMPED.match(line) and line.endswith(f"completed LOGGED {task_id}")
                   for line in lines), err
    assert lines[-1].startswith("worker stopped: claimed 3 · completed 3 · failed 0"), err
