"""install.sh in a temporary HOME: installs a working codeq from this checkout, then removes it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from codeq.testing.server import ServerProcess
from tests.cli.conftest import cli_env

ROOT = Path(__file__).resolve().parents[2]


def pip_cache() -> str:
    """The developer's pip cache, so the temporary HOME does not download everything again."""
    return os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")


@pytest.mark.slow
def test_install_sh_installs_and_uninstalls(tmp_path: Path, server: ServerProcess) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(home, server, PIP_CACHE_DIR=pip_cache(), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not Path(p, "codeq").exists())

    def install(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(ROOT / "install.sh"), "--method", "venv", *args],
                              capture_output=True, text=True, env=env, timeout=300, check=False)

    first = install("--system-site-packages")
    assert first.returncode == 0, first.stderr + first.stdout
    link = home / ".local" / "bin" / "codeq"
    venv = home / ".local" / "share" / "codeq" / "venv"
    assert link.is_symlink() and Path(os.readlink(link)) == venv / "bin" / "codeq"
    assert f"from the checkout {ROOT}" in first.stdout
    assert "is not on your PATH" in first.stdout and 'export PATH="' in first.stdout

    version = subprocess.run([str(link), "--version"], capture_output=True, text=True, env=env,
                             timeout=60, check=False)
    assert version.stdout.strip() == "codeq 0.1.0"
    created = subprocess.run([str(link), "task", "create", "-e", "INSTALLED", "-o", "json"],
                             capture_output=True, text=True, env=env, timeout=60, check=False)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["command"] == "INSTALLED"

    again = install("--system-site-packages")  # idempotent: a second run upgrades in place
    assert again.returncode == 0, again.stderr + again.stdout
    assert link.is_symlink() and Path(os.readlink(link)) == venv / "bin" / "codeq"
    assert subprocess.run([str(link), "--version"], capture_output=True, text=True, env=env,
                          timeout=60, check=False).stdout.strip() == "codeq 0.1.0"

    both = install("--from", str(ROOT), "--version", "0.1.0")
    assert both.returncode != 0 and "not both" in both.stderr

    bad = install("--from", str(tmp_path))
    assert bad.returncode == 1 and "not a codeq checkout" in bad.stderr

    removed = install("--uninstall")
    assert removed.returncode == 0 and "codeq uninstalled" in removed.stdout
    assert not link.exists() and not link.is_symlink() and not venv.exists()
    assert "was not installed" in install("--uninstall").stdout
