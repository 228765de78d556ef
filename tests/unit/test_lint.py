"""The code passes its linters: ruff (its default rules, at the version the lint extra pins)
and mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv", [["ruff", "check", "."], ["mypy", "codeq", "plugins"]],
                         ids=["ruff", "mypy"])
def test_the_code_passes(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
