"""Every command's --help has a summary and an example; completions/ matches the CLI."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from codeq.cli.main import app
from codeq.plugins import manager
from tests.cli.conftest import CODEQ, cli_env

ROOT = Path(__file__).resolve().parents[2]
SHELLS = ("bash", "zsh", "fish")


def command_paths() -> list[tuple[str, ...]]:
    manager().hook.register_commands(app=app)
    paths: list[tuple[str, ...]] = [()]

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():  # typer bundles its Click
            paths.append((*prefix, name))
            walk(sub, (*prefix, name))

    walk(typer.main.get_command(app), ())
    return paths


def summary_and_example(path: tuple[str, ...], text: str) -> list[str]:
    lines = [line.strip(" │") for line in text.splitlines() if line.strip(" │")]
    usage = next((i for i, line in enumerate(lines) if line.startswith("Usage:")), None)
    summary = lines[usage + 1] if usage is not None and usage + 1 < len(lines) else ""
    problems = []
    if not summary or summary.startswith(("╭", "Options")):
        problems.append(f"codeq {' '.join(path)}: no one-line summary")
    # The example itself, up to the option panels: the usage line also names the command,
    # so looking at the whole text would accept an "Example:" heading over anything.
    start = text.find("Example")
    example = re.split(r"╭|^\s*Options", text[start:], maxsplit=1, flags=re.MULTILINE)[0]
    named = rf"\bcodeq\b.*{re.escape(' '.join(path))}"  # global options may stand between
    if start < 0 or not re.search(named, example):
        problems.append(f"codeq {' '.join(path)}: no example")
    return problems


def test_every_command_help_has_a_summary_and_an_example() -> None:
    """All commands (plugins' too) through Click's runner: the executable costs a second each."""
    paths = command_paths()
    assert {("task", "wait"), ("worker", "start"), ("auth", "login"), ("init",)} <= set(paths)
    runner = CliRunner()
    problems = []
    for path in paths:
        done = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert done.exit_code == 0, done.output
        problems += summary_and_example(path, done.output)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", [(), ("worker", "start")], ids=["root", "worker-start"])
def test_help_of_the_executable(tmp_path: Path, path: tuple[str, ...]) -> None:
    done = subprocess.run([CODEQ, *path, "--help"], capture_output=True, text=True,
                          env=cli_env(tmp_path, None), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert not summary_and_example(path, done.stdout)


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_scripts_match_the_cli(tmp_path: Path, shell: str) -> None:
    env = cli_env(tmp_path, None, _CODEQ_COMPLETE=f"source_{shell}")
    generated = subprocess.run([CODEQ], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert generated.returncode == 0, generated.stderr
    shipped = (ROOT / "completions" / f"codeq.{shell}").read_text()
    assert shipped == generated.stdout, (
        f"completions/codeq.{shell} is stale: regenerate with "
        f"_CODEQ_COMPLETE=source_{shell} codeq > completions/codeq.{shell}")


def test_bash_completion_answers_from_the_cli(tmp_path: Path) -> None:
    env = cli_env(tmp_path, None, _CODEQ_COMPLETE="complete_bash", COMP_WORDS="codeq task w",
                  COMP_CWORD="2")
    done = subprocess.run([CODEQ], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.stdout.split() == ["wait"]


def test_plugins_are_loaded_unless_a_builtin_group_runs() -> None:
    from codeq.cli.main import command_of

    assert command_of(["--profile", "task", "queue", "list"]) == "queue"
    assert command_of(["-o", "json", "--admin", "task", "get", "x"]) == "task"
    assert command_of(["--base-url=http://x", "worker", "start"]) == "worker"
    assert command_of(["--help"]) is None and command_of([]) is None
