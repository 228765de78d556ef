"""Every command in docs/quickstart.md and docs/troubleshooting.md runs against a live server.

How the documents mark their commands (keep to it when editing them):

- A fenced block tagged ``console`` holds commands: the lines starting with ``$ ``
  (a line ending in ``\\`` continues on the next one). Its other lines are sample
  output and are not compared.
- ``k8s`` blocks need Kubernetes (kubectl, helm and a cluster) and are not run.
- ``install`` blocks install codeq; they need the package index and are not run
  here (tests/cli/test_install.py runs install.sh).
- Any other shell tag (``sh``, ``bash``, ``shell``) fails this test, so that no
  command escapes it. YAML, JSON and other non-shell blocks are fine.
- ``# expect: exit N`` after a command: it is shown failing and must exit with N.
- ``# in another terminal`` after a command: it keeps running; here it runs in
  the background until its part of the document ends. ``codeq serve`` marked so
  is the server this test starts itself.

quickstart.md is one story and runs in one shell, top to bottom.
troubleshooting.md runs one shell per ``##`` section (each stands on its own),
several at once, all against one server: a queue (command name) belongs to one
part only, or one part's cleanup or purge would take another's tasks. Every shell
gets the server's URL in ``CODEQ_BASE_URL`` (a dev-mode ``codeq serve`` on a free
port), its data directory in ``CODEQ_DATA_DIR`` (so the CLI mints dev tokens), and
its own empty HOME and working directory. The whole run has ``BUDGET_SECONDS``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from codeq.testing.server import ServerProcess, _clean_environment

DOCS = Path(__file__).resolve().parents[2] / "docs"
BUDGET_SECONDS = 60.0
PARALLEL = 6
RUN = "console"
NOT_RUN = {"k8s", "install"}
SHELL_TAGS = {"sh", "bash", "shell", "zsh"}
EXPECT_EXIT = re.compile(r"#\s*expect:\s*exit\s+(\d+)\s*$")
IN_ANOTHER_TERMINAL = re.compile(r"#\s*in another terminal\s*$")
SERVER_COMMAND = "codeq serve"
MARKER = "@@codeq-doc"
#: The queues a command names: ``--event(s) A[,B]``, ``--command A``, ``queue <verb> A``.
QUEUE_NAMES = re.compile(
    r"(?:--events?|--command)[ =]([A-Z][A-Z0-9_,]*)|\bqueue \w+ ([A-Z][A-Z0-9_]*)")


@dataclass(frozen=True)
class Command:
    where: str  # file:line
    text: str  # without its annotation comment
    expect_exit: int = 0
    background: bool = False


@dataclass(frozen=True)
class Part:
    """Commands that run in one shell, in order."""

    name: str
    commands: tuple[Command, ...]


def fences(path: Path) -> Iterator[tuple[str, int, list[str]]]:
    """(tag, line number of the first line, lines) of every fenced block, and the
    ``##`` headings in between as ("##", line, [heading])."""
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            tag = line[3:].strip()
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            yield tag, index + 2, lines[index + 1:end]
            index = end + 1
            continue
        if line.startswith("## "):
            yield "##", index + 1, [line[3:].strip()]
        index += 1


def commands_of(block: list[str], first_line: int, name: str) -> list[Command]:
    found: list[Command] = []
    pending: list[str] = []
    start = 0
    for offset, line in enumerate(block):
        if not pending and not line.startswith("$ "):
            continue  # sample output
        if not pending:
            start = first_line + offset
        pending.append(line[2:] if not pending else line)
        if line.endswith("\\"):
            continue
        text = "\n".join(pending)
        pending = []
        expected = EXPECT_EXIT.search(text)
        background = IN_ANOTHER_TERMINAL.search(text)
        annotation = expected or background
        found.append(Command(where=f"{name}:{start}",
                             text=text[:annotation.start()].rstrip() if annotation else text,
                             expect_exit=int(expected[1]) if expected else 0,
                             background=bool(background)))
    assert not pending, f"{name}: a command ends with a backslash and nothing follows"
    return found


def parts_of(path: Path, *, by_section: bool) -> list[Part]:
    sections: list[tuple[str, list[Command]]] = [(path.name, [])]
    for tag, line, body in fences(path):
        if tag == "##":
            if by_section:
                sections.append((f"{path.name} § {body[0]}", []))
            continue
        if tag in NOT_RUN:
            continue
        assert tag not in SHELL_TAGS, (
            f"{path.name}:{line - 1}: shell block tagged {tag!r}: tag it console (run by this "
            f"test), k8s or install")
        if tag == RUN:
            sections[-1][1].extend(commands_of(body, line, path.name))
    return [Part(name, tuple(commands)) for name, commands in sections if commands]


def all_parts() -> list[Part]:
    return [*parts_of(DOCS / "quickstart.md", by_section=False),
            *parts_of(DOCS / "troubleshooting.md", by_section=True)]


def script(part: Part) -> str:
    """The part as a bash script that reports each command's exit status after a marker."""
    lines = ["background=()",
             'finish() { for pid in "${background[@]}"; do kill "$pid" 2>/dev/null; done; wait; }',
             "trap finish EXIT"]
    for number, command in enumerate(part.commands):
        lines.append(f"printf '\\n{MARKER} {number} start\\n'")
        if command.background and command.text == SERVER_COMMAND:
            lines.append("true  # the test's own server")
        elif command.background:
            lines.append(f"{command.text} > background-{number}.log 2>&1 &")
            lines.append("background+=($!)")
        else:
            lines.append(command.text)
        lines.append(f"printf '\\n{MARKER} {number} exit %d\\n' $?")
    return "\n".join(lines) + "\n"


def exit_codes(output: str) -> dict[int, tuple[int, str]]:
    """Command number -> (exit status, what it printed), from the script's output."""
    found: dict[int, tuple[int, str]] = {}
    for chunk in output.split(f"\n{MARKER} ")[1:]:
        head, _, rest = chunk.partition("\n")
        number, event, *status = head.split()
        if event == "start":
            printed = rest
        elif event == "exit" and status:
            found[int(number)] = (int(status[0]), printed.strip())
    return found


def run_part(part: Part, server: ServerProcess, workdir: Path, deadline: float) -> list[str]:
    """Run one part; the problems found (empty when every command did as documented)."""
    workdir.mkdir(parents=True)
    (workdir / "part.sh").write_text(script(part))
    env = _clean_environment({
        "HOME": str(workdir), "CODEQ_BASE_URL": server.base_url,
        "CODEQ_DATA_DIR": str(server.data_dir), "PORT": str(server.port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "120"})
    env.pop("XDG_DATA_HOME", None)
    process = subprocess.Popen(["bash", "part.sh"], cwd=workdir, env=env, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=max(deadline - time.monotonic(), 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the session this test started
        output, _ = process.communicate()
        problems = [f"{part.name}: still running when the {BUDGET_SECONDS:.0f} s budget ran out"]
    else:
        problems = []
    (workdir / "output.log").write_text(output)
    codes = exit_codes(output)
    for number, command in enumerate(part.commands):
        if number not in codes:
            problems.append(f"{command.where}: did not finish\n  $ {command.text}")
            break
        status, printed = codes[number]
        if status != command.expect_exit:
            problems.append(f"{command.where}: exit {status}, documented {command.expect_exit}"
                            f"\n  $ {command.text}\n  {printed[-1500:]}")
    return problems


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess.start(tmp_path_factory.mktemp("docs-server")) as running:
        yield running


def test_documents_mark_their_commands() -> None:
    """The parser sees the commands the documents show, with their annotations."""
    parts = all_parts()
    commands = [c for part in parts for c in part.commands]
    quickstart = parts[0]
    assert quickstart.name == "quickstart.md" and len(quickstart.commands) >= 8
    assert any(c.background and c.text == SERVER_COMMAND for c in quickstart.commands)
    assert any(c.background and "worker start" in c.text for c in quickstart.commands)
    assert sum(c.expect_exit != 0 for c in commands) >= 5
    assert len(parts) >= 15, [p.name for p in parts]


def test_parts_use_their_own_queues() -> None:
    """Parts run at once on one server, so no two of them may touch the same queue."""
    owners: dict[str, str] = {}
    shared: list[str] = []
    for part in all_parts():
        names = {name for command in part.commands for match in QUEUE_NAMES.finditer(command.text)
                 for name in (match[1] or match[2]).split(",") if name}
        for name in sorted(names):
            if owners.setdefault(name, part.name) != part.name:
                shared.append(f"{name}: {owners[name]} and {part.name}")
    assert not shared, "queues used by more than one part:\n" + "\n".join(shared)


def test_every_documented_command_runs(docs_server: ServerProcess, tmp_path: Path) -> None:
    deadline = time.monotonic() + BUDGET_SECONDS
    parts = all_parts()
    with ThreadPoolExecutor(PARALLEL) as pool:
        found = pool.map(lambda job: run_part(job[1], docs_server, tmp_path / f"part-{job[0]}",
                                              deadline), enumerate(parts))
        problems = [problem for part_problems in found for problem in part_problems]
    assert not problems, "\n\n".join(problems)
