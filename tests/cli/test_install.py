"""install.sh in a temporary HOME: installs a working codeq (venv or pipx), then removes it.

The installs run offline: a wheelhouse holds a wheel of this checkout and every
dependency, and pip is told to use nothing else, so no package index is asked about
``codeq`` (a project of that name on the public index must never be picked up).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from codeq.testing.server import ServerProcess
from tests.cli.conftest import cli_env

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION: str = PYPROJECT["project"]["version"]
#: Never part of a build: VCS data, caches, and earlier builds that could leak stale modules.
NOT_SOURCE = shutil.ignore_patterns(".git", "build", "dist", ".venv", "venv", "*.egg-info",
                                    "__pycache__", ".*_cache", ".hypothesis")
INSTALL_TIMEOUT = 300


def pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet"], capture_output=True,
                          text=True, timeout=INSTALL_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, its dependencies, pip and the build requirements.

    Built from a copy so nothing is written into the checkout; the dependencies come
    from the developer's usual package index (or pip's cache).
    """
    base = tmp_path_factory.mktemp("wheelhouse")
    source, wheels = base / "source", base / "wheels"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    pip("wheel", "--wheel-dir", str(wheels), str(source), "pip",
        *PYPROJECT["build-system"]["requires"])
    assert (wheels / f"codeq-{VERSION}-py3-none-any.whl").is_file()
    return wheels


class Installer:
    """Runs install.sh in a private HOME with pip restricted to the wheelhouse."""

    def __init__(self, home: Path, wheelhouse: Path, server: ServerProcess | None = None,
                 **extra: str) -> None:
        self.home = home
        home.mkdir()
        self.env = cli_env(home, server, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse),
                           CODEQ_PYTHON=sys.executable, **extra)
        # No codeq on PATH (the dev environment's would hide a broken install).
        self.env["PATH"] = os.pathsep.join(
            p for p in self.env["PATH"].split(os.pathsep) if not Path(p, "codeq").exists())

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(ROOT / "install.sh"), *args], capture_output=True,
                              text=True, env=self.env, timeout=INSTALL_TIMEOUT, check=False)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self(*args)
        assert done.returncode == 0, done.stderr + done.stdout
        return done

    def codeq(self, link: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(link), *args], capture_output=True, text=True, env=self.env,
                              timeout=60, check=False)

    def version_of(self, link: Path) -> str:
        return self.codeq(link, "--version").stdout.strip()


@pytest.mark.slow
def test_install_sh_in_a_venv_installs_a_version_then_the_checkout_then_uninstalls(
        tmp_path: Path, wheelhouse: Path, server: ServerProcess) -> None:
    install = Installer(tmp_path / "home", wheelhouse, server)
    link = install.home / ".local" / "bin" / "codeq"
    venv = install.home / ".local" / "share" / "codeq" / "venv"
    installed = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
        "site-packages" / f"codeq-{VERSION}.dist-info"

    release = install.ok("--method", "venv", "--version", VERSION)
    assert f"installing codeq {VERSION}" in release.stdout
    assert link.is_symlink() and Path(os.readlink(link)) == venv / "bin" / "codeq"
    assert "is not on your PATH" in release.stdout and 'export PATH="' in release.stdout
    assert install.version_of(link) == f"codeq {VERSION}"
    # From the index (here the wheelhouse), not from a checkout: pip records no direct URL.
    assert installed.is_dir() and not (installed / "direct_url.json").exists()

    missing = install("--method", "venv", "--version", "999.0.0")
    assert missing.returncode == 1
    assert ("codeq-install: error: codeq 999.0.0 could not be installed: the package index "
            "has no such version") in missing.stderr
    assert install.version_of(link) == f"codeq {VERSION}"  # what was installed still works

    checkout = install.ok("--method", "venv")
    assert f"from the checkout {ROOT}" in checkout.stdout
    assert (installed / "direct_url.json").is_file()  # replaced by the checkout's build
    created = install.codeq(link, "task", "create", "-e", "INSTALLED", "-o", "json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["command"] == "INSTALLED"

    install.ok("--method", "venv")  # idempotent: upgrades in place
    assert link.is_symlink() and Path(os.readlink(link)) == venv / "bin" / "codeq"
    assert install.version_of(link) == f"codeq {VERSION}"

    both = install("--from", str(ROOT), "--version", VERSION)
    assert both.returncode != 0 and "not both" in both.stderr

    bad = install("--from", str(tmp_path))
    assert bad.returncode == 1 and "not a codeq checkout" in bad.stderr

    removed = install.ok("--uninstall")
    assert "codeq uninstalled" in removed.stdout
    assert not link.exists() and not link.is_symlink() and not venv.exists()
    assert "was not installed" in install.ok("--uninstall").stdout


@pytest.mark.slow
def test_install_sh_uses_pipx_when_present(tmp_path: Path, wheelhouse: Path) -> None:
    pipx = Path(sys.executable).with_name("pipx")
    assert pipx.is_file(), "pipx is part of the test extra"
    tools = tmp_path / "tools"  # pipx alone, without the dev environment's codeq
    tools.mkdir()
    (tools / "pipx").symlink_to(pipx)
    pipx_home, pipx_bin = tmp_path / "pipx", tmp_path / "pipx-bin"
    install = Installer(tmp_path / "home", wheelhouse, PIPX_HOME=str(pipx_home),
                        PIPX_BIN_DIR=str(pipx_bin))
    install.env["PATH"] = os.pathsep.join([str(tools), install.env["PATH"]])
    link = pipx_bin / "codeq"

    first = install.ok()
    assert f"installed: {link}" in first.stdout
    assert f'export PATH="{pipx_bin}:$PATH"' in first.stdout
    assert Path(os.readlink(link)).is_relative_to(pipx_home / "venvs" / "codeq")
    assert not (install.home / ".local" / "share" / "codeq").exists()  # not the venv method
    assert install.version_of(link) == f"codeq {VERSION}"

    install.ok()  # idempotent
    assert install.version_of(link) == f"codeq {VERSION}"

    removed = install.ok("--uninstall")
    assert "codeq uninstalled" in removed.stdout
    assert not link.exists() and not link.is_symlink()
    assert not (pipx_home / "venvs" / "codeq").exists()
    assert "was not installed" in install.ok("--uninstall").stdout
