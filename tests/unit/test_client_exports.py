"""The package root exports the SDK (httpx's tests/test_exported_members.py, in spirit)."""

from __future__ import annotations

import subprocess
import sys

import codeq


def test_all_names_are_exported_and_importable() -> None:
    assert {"Client", "AsyncClient", "Worker", "Job", "Retry", "Fail", "Abandon",
            "verify_signature", "ApiError", "NotFound", "Conflict", "ConnectionFailed",
            "hookimpl", "__version__"} <= set(codeq.__all__)
    for name in codeq.__all__:
        assert getattr(codeq, name) is not None, name
    assert set(codeq.__all__) <= set(dir(codeq))
    lazy = {name for names in codeq._LAZY.values() for name in names}
    assert set(codeq.__all__) == lazy | {"__version__", "hookimpl"}


def test_errors_share_one_base() -> None:
    for name in ("BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict",
                 "PayloadTooLarge", "ServiceUnavailable", "ServerError", "ConnectionFailed"):
        assert issubclass(getattr(codeq, name), codeq.ApiError)


def test_plugins_importing_hookimpl_do_not_load_the_sdk() -> None:
    code = "import sys, codeq; from codeq import hookimpl; print('httpx' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_the_command_line_and_the_sync_client_do_not_load_aiohttp() -> None:
    code = ("import sys, codeq.cli.main; from codeq import Client; Client('http://127.0.0.1:1')"
            "; print('aiohttp' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
