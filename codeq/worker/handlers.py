"""Ready-made handlers for ``codeq worker start``: ``--handler``, ``--exec`` and ``--ack``."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from codeq.worker.job import Job
from codeq.worker.outcomes import Abandon, Leave, Retry

#: Lines of stderr kept as the NACK reason of a failed ``--exec`` command.
STDERR_LINES = 20


def load_handler(spec: str) -> Callable[[Job], Any]:
    """``pkg.module:function`` -> the callable (the current directory is importable)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--handler wants module:function (e.g. myapp.tasks:resize), not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"{module_name} has no attribute {attr!r}")
    if not callable(target):
        raise TypeError(f"{spec} is not callable")
    return target  # type: ignore[no-any-return]


def result_from_stdout(stdout: str) -> Any:
    """A JSON value when stdout parses as JSON, else ``{"stdout": text}``."""
    try:
        return json.loads(stdout)
    except ValueError:
        return {"stdout": stdout}


def exec_handler(command: str, *, timeout: float | None = None) -> Callable[[Job], Any]:
    """Run ``command`` in a shell per task: payload JSON on stdin, task facts in the environment.

    Exit 0 completes the task with stdout as the result; any other exit NACKs
    with the last lines of stderr; ``timeout`` kills the command and NACKs.
    The command runs in its own process group, so Ctrl-C on the worker does
    not reach it (graceful stop lets it finish) and a kill reaches its children.
    """
    async def run(job: Job) -> Any:
        env = {**os.environ, "CODEQ_TASK_ID": job.id, "CODEQ_COMMAND": job.command,
               "CODEQ_ATTEMPT": str(job.attempts), "CODEQ_PRIORITY": str(job.priority)}
        proc = await asyncio.create_subprocess_shell(
            command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(json.dumps(job.payload).encode()), timeout)
        except TimeoutError:
            _kill(proc)
            await proc.wait()
            raise Retry(f"--exec command timed out after {timeout:g}s") from None
        except asyncio.CancelledError:
            _kill(proc)
            await proc.wait()
            raise
        if proc.returncode != 0:
            tail = "\n".join(err.decode(errors="replace").rstrip().splitlines()[-STDERR_LINES:])
            raise Retry(f"exit status {proc.returncode}" + (f": {tail}" if tail else ""))
        return result_from_stdout(out.decode(errors="replace"))
    return run


def _kill(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def ack_handler(mode: str, *, nack_delay: float | None = None) -> Callable[[Job], Any]:
    """Demo handlers that only acknowledge: complete, abandon, nack, or none (let it expire)."""
    async def ack(job: Job) -> Any:
        if mode == "complete":
            return {"acknowledged": True}
        if mode == "abandon":
            raise Abandon("--ack abandon")
        if mode == "nack":
            raise Retry("--ack nack", delay_seconds=nack_delay)
        raise Leave()
    return ack
