"""The benchmark scripts still run end to end, in miniature: a refactor of the server,
the worker or the client must not leave ``benchmarks/`` broken until the next long run.
The figures are not checked (timings belong to the benchmarks), only that every
measured setting produced them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
NUMBER = r"[\d,]+(?:\.\d+)?"


def run(script: str, *args: str) -> None:
    subprocess.run([sys.executable, str(BENCHMARKS / script), *args], check=True,
                   timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_throughput_measures_each_chosen_setting(tmp_path: Path) -> None:
    out = tmp_path / "throughput.txt"
    run("throughput.py", "--only", "codeq single sqlite 1", "codeq batch redis 2", "limit",
        "--tasks", "100", "--runs", "1", "--cap", "30", "--limit-tasks", "200",
        "--output", str(out))
    report = out.read_text()
    for system in (r"codeq single\s+sqlite\s+1 proc", r"codeq batch\s+redis\s+2 proc"):
        # full cycle, enqueue and drain rates (none cut at the cap), CPU ms per task by role
        assert re.search(rf"{system}(\s+{NUMBER}){{4}}\s+{NUMBER}/{NUMBER}/{NUMBER}/{NUMBER}$",
                         report, re.MULTILINE), report
    assert re.search(rf"store limit: claim script, pipelined\s+redis\s+-\s+{NUMBER}", report)
    assert "failed" not in report


def test_latency_measures_wake_ups_and_claims_at_depth(tmp_path: Path) -> None:
    out = tmp_path / "latency.txt"
    run("latency.py", "--tasks", "20", "--claims", "50", "--small", "100", "--big", "1000",
        "--output", str(out))
    report = out.read_text()
    wake_ups = re.findall(rf"^(sqlite|redis)\s+[12] proc\s+20\s+{NUMBER}\s+{NUMBER}", report,
                          re.MULTILINE)
    assert sorted(wake_ups) == ["redis", "redis", "sqlite", "sqlite"], report
    assert re.search(rf"^1,000\s+50\s+{NUMBER}\s+{NUMBER}\s+.*of depth 100", report,
                     re.MULTILINE), report


def test_client_cost_measures_each_client(tmp_path: Path) -> None:
    out = tmp_path / "client-cost.txt"
    run("client_cost.py", "--requests", "200", "--rounds", "1", "--output", str(out))
    report = out.read_text()
    for client in ("aiohttp alone", r"codeq\.AsyncClient \(default\)",
                   r"codeq\.AsyncClient through"):
        assert re.search(rf"^{client}.*\s{NUMBER}\s+{NUMBER}-{NUMBER}\s+{NUMBER}x$", report,
                         re.MULTILINE), report


def test_claim_contention_claims_every_task_at_each_level(tmp_path: Path) -> None:
    out = tmp_path / "claim-contention.txt"
    run("claim_contention.py", "--claims", "200", "--output", str(out))
    levels = re.findall(rf"^(\d+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+(\d+)$", out.read_text(),
                        re.MULTILINE)
    assert levels == [("1", "0"), ("8", "0"), ("32", "0")], out.read_text()


def test_request_cost_measures_every_layer(tmp_path: Path) -> None:
    out = tmp_path / "request-cost.txt"
    run("request_cost.py", "--requests", "30", "--rounds", "1", "--output", str(out))
    report = out.read_text()
    rows = re.findall(rf"^(HTTP floor|Redis client floor|codeq \w+, (?:in process|over HTTP))"
                      rf".*\s{NUMBER}\s+{NUMBER}-{NUMBER}$", report, re.MULTILINE)
    assert len(rows) == 8 and "codeq's own work" in report, report
