"""Throughput of codeq against Celery, RQ, Dramatiq, arq, Huey and taskiq on one Redis.

One run measures, for every system, with a no-op handler and its ordinary
worker sized for 2 cores (see ``peers``), three rates in tasks per second:

* full cycle: workers idle and warmed up; a producer creates N tasks while
  they run; from the first create until the last task is done (for codeq:
  the server holds nothing ready or in progress, i.e. every result is stored);
* enqueue: N creates with no worker running;
* drain: workers started on those N queued tasks; counted from the moment 5 %
  are done (so process start-up does not count) until the last one.

codeq runs as a real ``codeq serve`` (SQLite or Redis; 1 or 2 processes) with
``codeq worker start --handler`` processes, producing over HTTP with the
single-task API (64 creates in flight) or the batch API (500 per call, 4 calls
in flight). Every peer uses the same private redis-server, flushed between
phases. The Redis claim script alone, without HTTP, is the store limit. Each
figure is the median of ``--runs`` runs (min-max in brackets), the runs of all
systems interleaved; ``*`` marks a phase cut at ``--cap`` seconds (its rate
is what was done by then). Rates drift with the machine's load; the CPU time
every process of a system spent per task in the full cycle (server, workers,
Redis, producer) drifts much less and says where the time goes. The table
goes to stdout and ``benchmarks/results/throughput.txt``; ``--profile`` adds
py-spy summaries of the codeq server and a worker (``profile.txt``).

    python benchmarks/throughput.py [--tasks 10000] [--runs 3] [--quick] [--only redis]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _store_limit
from _harness import (
    BENCH_DIR,
    Producer,
    Spread,
    Tally,
    bench_env,
    cpu_seconds,
    header,
    publish,
    running,
    spread,
    table,
)
from _profile import Recording, summary
from _systems import CodeqSystem, PeerSystem, System, flush
from peers import PEERS

from codeq.testing.redis_server import RedisServer

RESULTS = BENCH_DIR / "results"
PHASES = ("full", "enqueue", "drain")
CPU_ROLES = ("server", "workers", "redis", "producer")
WARM_UP_TASKS = 20
START_TIMEOUT = 60.0
#: Drain is timed from this share of the tasks done (after worker start-up).
DRAIN_FROM = 0.05


@dataclass
class Rates:
    """One run of one system: tasks per second by phase (None: not measured)."""

    values: dict[str, float | None] = field(default_factory=dict)
    capped: set[str] = field(default_factory=set)
    profiles: dict[str, Path] = field(default_factory=dict)
    #: CPU milliseconds per task in the full cycle, by role (server, workers, redis, producer).
    cpu: dict[str, float] = field(default_factory=dict)


def warm_up(system: System, tally: Tally, env: dict[str, str], logs: Path) -> None:
    """Run a few tasks so every worker is up, connected and idle before the clock starts."""
    base = tally.count()
    Producer(system.module, WARM_UP_TASKS, START_TIMEOUT, env, logs / "producer.log").result()
    if tally.wait(base + WARM_UP_TASKS, START_TIMEOUT)[-1][1] < base + WARM_UP_TASKS:
        raise RuntimeError(f"{system.name}: workers did not start; see {logs}")
    system.settle("full", START_TIMEOUT)


def full_cycle(system: System, tally: Tally, tasks: int, cap: float, logs: Path,
               rates: Rates, profile: bool) -> None:
    """Idle workers; produce (for at most ``cap`` s) and wait for the last task
    (with ``profile``, under py-spy: the server's processes and one worker)."""
    env = bench_env({**tally.env, **system.env("full")})
    with running(system.workers("full"), env, logs / "workers-full.log") as group:
        warm_up(system, tally, env, logs)
        profiled = {**system.server_pids(), "worker": group.processes[0].pid} if profile else {}
        recordings = {role: Recording(pid, logs / f"profile-{role}.raw")
                      for role, pid in profiled.items()}
        roles = {"server": list(system.server_pids().values()),
                 "workers": [p.pid for p in group.processes], "redis": [system.redis.pid]}
        cpu_before = {role: cpu_seconds(pids) for role, pids in roles.items()}
        base = tally.count()
        producer = Producer(system.module, tasks, cap, env, logs / "producer.log")
        samples = tally.wait(base + tasks, cap, group.check_alive)
        done = samples[-1][1] - base
        if done >= tasks:
            system.settle("full", cap)
        else:
            rates.capped.add("full")
        end = time.monotonic()
        cpu = {role: cpu_seconds(pids) - cpu_before[role] for role, pids in roles.items()}
        for role, recording in recordings.items():
            recording.stop()
            rates.profiles[role] = recording.out
        produced = producer.result()
    rates.values["full"] = done / (end - produced.start)
    rates.cpu = {role: 1000 * seconds / max(done, 1) for role, seconds in cpu.items()}
    rates.cpu["producer"] = 1000 * produced.cpu / max(produced.sent, 1)


def enqueue_then_drain(system: System, tally: Tally, tasks: int, cap: float, logs: Path,
                       rates: Rates) -> None:
    """Produce with no worker running, then start the workers on the queued tasks."""
    env = bench_env({**tally.env, **system.env("drain")})
    produced = Producer(system.module, tasks, cap, env, logs / "producer.log").result()
    rates.values["enqueue"] = produced.rate
    if produced.sent < tasks:
        rates.capped.add("enqueue")
    base = tally.count()
    with running(system.workers("drain"), env, logs / "workers-drain.log") as group:
        samples = tally.wait(base + 1, START_TIMEOUT, group.check_alive)
        samples += tally.wait(base + produced.sent, cap, group.check_alive)
        if samples[-1][1] - base >= produced.sent:
            system.settle("drain", cap)
        else:
            rates.capped.add("drain")
        end = time.monotonic()
    # From 5 % done; a system too slow to get there in time is timed from its first task.
    threshold = base + max(1, int(produced.sent * DRAIN_FROM))
    if samples[-1][1] < threshold:
        threshold = base + 1
    at = next((i for i, (_, c) in enumerate(samples) if c >= threshold), len(samples) - 1)
    if at > 0 and samples[at][1] == samples[-1][1]:
        at -= 1  # the rest was done in one step (one batch): time it from the sample before
    start, counted = samples[at]
    done = samples[-1][1] - counted
    rates.values["drain"] = done / (end - start) if done > 0 else None


def measure(system: System, tally: Tally, args: argparse.Namespace, run: int,
            logs: Path) -> Rates:
    rates = Rates()
    tasks, cap = args.tasks, args.cap
    with system.session(run):
        full_cycle(system, tally, tasks, cap, logs, rates, args.profile and system.kind == "codeq")
        system.reset()
        enqueue_then_drain(system, tally, tasks, cap, logs, rates)
        system.reset()
    return rates


@dataclass
class Row:
    system: str
    store: str
    servers: str
    sizing: str
    rates: dict[str, Spread] = field(default_factory=dict)
    note: str = ""
    kind: str = "peer"  # "codeq" | "peer" | "limit"
    #: py-spy raw profiles of the last run, by role ("server", "worker").
    profiles: dict[str, Path] = field(default_factory=dict)
    #: Median CPU ms per task in the full cycle, by role.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return not self.note and bool(self.rates) and bool(self.rates["full"].values)

    def cells(self) -> list[str]:
        if self.note:
            return [self.system, self.store, self.servers, self.note, "", "", "", ""]
        cpu = self.cpu or {}
        parts = "/".join(f"{cpu[role]:.2f}" for role in CPU_ROLES) if cpu else "-"
        total = f"{sum(cpu.values()):.2f}" if cpu else "-"
        return [self.system, self.store, self.servers,
                *(self.rates[p].cell() for p in PHASES), total, parts]


def label(system: System) -> str:
    return f"{system.name} {system.store} {system.servers}"


def run_all(chosen: Sequence[System], tally: Tally, args: argparse.Namespace,
            root: Path) -> list[Row]:
    """Run 1 of every system, then run 2 of every system...: drifting machine noise
    then hits every system alike, which keeps the ratios honest."""
    found: dict[str, list[Rates]] = {label(s): [] for s in chosen}
    failed: dict[str, str] = {}
    for run in range(args.runs):
        for system in chosen:
            name = label(system)
            if name in failed:
                continue
            started = time.monotonic()
            logs = root / name.replace(" ", "-") / str(run)
            try:
                rates = measure(system, tally, args, run, logs)
            except (RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
                print(f"  {name}: failed: {exc}", file=sys.stderr)
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                failed[name] = f"failed: {lines[-1] if lines else type(exc).__name__}"[:120]
                continue
            found[name].append(rates)
            print(f"  run {run + 1} {name}: " + ", ".join(
                f"{p} {rates.values.get(p) or 0:,.0f}/s" for p in PHASES)
                + f"  ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    rows = []
    for system in chosen:
        name, runs = label(system), found[label(system)]
        row = Row(system.name, system.store, system.servers, system.sizing,
                  note=failed.get(name, ""), kind=system.kind)
        row.rates = {p: spread([r.values.get(p) for r in runs],
                               any(p in r.capped for r in runs)) for p in PHASES}
        row.profiles = runs[-1].profiles if runs else {}
        if runs:
            row.cpu = {role: statistics.median(r.cpu[role] for r in runs) for role in CPU_ROLES}
        rows.append(row)
    return rows


def store_limit(redis: RedisServer, tasks: int, runs: int) -> list[Row]:
    found = []
    for _ in range(runs):
        flush(redis)
        found.append(asyncio.run(_store_limit.measure(redis.url, tasks)))
    flush(redis)
    rows = []
    for how in ("sequential", "pipelined"):
        row = Row(f"store limit: claim script, {how}", "redis", "-", "no HTTP", kind="limit")
        row.rates = {"full": spread([getattr(f, how) for f in found]), "enqueue": spread([]),
                     "drain": spread([])}
        rows.append(row)
    return rows


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and not math.isnan(a) and not math.isnan(b) else "-"


@dataclass(frozen=True)
class PeerStats:
    """Best and median peer of one phase (peers without a figure for it left out)."""

    best: str
    best_rate: float
    median_rate: float

    @classmethod
    def of(cls, rows: Sequence[Row], phase: str) -> PeerStats | None:
        found = [(r.rates[phase].median, r.system) for r in rows
                 if r.kind == "peer" and r.measured and r.rates[phase].values]
        if not found:
            return None
        rate, name = max(found)
        return cls(name, rate, statistics.median(rate for rate, _ in found))


def ratios(rows: Sequence[Row]) -> str:
    full, drain = PeerStats.of(rows, "full"), PeerStats.of(rows, "drain")
    if full is None or drain is None:
        return "No peer was measured: no ratios."
    limit = next((r for r in rows if r.kind == "limit" and r.system.endswith("pipelined")), None)
    limit_rate = limit.rates["full"].median if limit else float("nan")
    lines = [f"peers by {phase}: best {stats.best} {stats.best_rate:,.0f}/s, "
             f"median {stats.median_rate:,.0f}/s"
             for phase, stats in (("full cycle", full), ("drain", drain))]
    body = []
    for r in rows:
        if r.kind != "codeq" or not r.measured:
            continue
        rate = r.rates["full"].median
        body.append([f"{r.system} {r.store} {r.servers}", f"{rate:,.0f}",
                     ratio(rate, full.best_rate), ratio(rate, full.median_rate),
                     ratio(rate, drain.best_rate), ratio(rate, drain.median_rate),
                     ratio(rate, limit_rate)])
    header = ["codeq full cycle", "/s", "/ best peer full", "/ median peer full",
              "/ best peer drain", "/ median peer drain", "/ store limit"]
    return "\n".join(lines) + "\n\n" + table(header, body)


def targets(rows: Sequence[Row]) -> str:
    """The issue's throughput targets, each with the measured ratio."""
    full, drain = PeerStats.of(rows, "full"), PeerStats.of(rows, "drain")
    if full is None or drain is None:
        return ""

    def codeq(api: str, store: str) -> Row | None:
        found = [r for r in rows if r.system == f"codeq {api}" and r.store == store and r.measured]
        return max(found, key=lambda r: r.rates["full"].median, default=None)

    checks = [("batch API, redis, full cycle >= 1.5x best peer drain", codeq("batch", "redis"),
               1.5 * drain.best_rate),
              ("single-task API, redis, full cycle >= median peer full cycle",
               codeq("single", "redis"), full.median_rate),
              ("batch API, sqlite, full cycle >= median peer full cycle (redis)",
               codeq("batch", "sqlite"), full.median_rate)]
    lines = ["Targets (best codeq server setting of each):"]
    for text, row, goal in checks:
        if row is None:
            lines.append(f"  {text}: not measured")
            continue
        got = row.rates["full"].median
        verdict = "met" if got >= goal else f"MISSED, at {got / goal:.0%} of the goal"
        lines.append(f"  {text}: {got:,.0f}/s vs goal {goal:,.0f}/s ({row.servers}) -> {verdict}")
    return "\n".join(lines)


def systems(args: argparse.Namespace, redis: RedisServer, root: Path
            ) -> tuple[list[System], list[Row]]:
    chosen: list[System] = [CodeqSystem(store, api, procs, redis, root)
                            for store in ("sqlite", "redis") for api in ("single", "batch")
                            for procs in (1, 2)]
    missing = []
    for peer in PEERS:
        absent = peer.missing()
        if absent:
            missing.append(Row(peer.name, "redis", "-", peer.sizing,
                               note=f"not installed ({', '.join(absent)}): "
                                    "see benchmarks/peers.txt"))
        else:
            chosen.append(PeerSystem(peer, redis))
    if args.only:
        chosen = [s for s in chosen if any(word in f"{s.name} {s.store} {s.servers}"
                                           for word in args.only)]
        missing = [r for r in missing if any(word in r.system for word in args.only)]
    return chosen, missing


def profile_report(rows: Sequence[Row]) -> str:
    parts = [header("py-spy profiles of the codeq full cycle (last run)")]
    for r in rows:
        for role, path in r.profiles.items():
            parts.append(f"== {r.system} {r.store} {r.servers}: {role}\n{summary(path)}")
    return "\n\n".join(parts) + "\n"


def sizing_notes(rows: Sequence[Row]) -> str:
    seen: dict[str, str] = {}
    for r in rows:
        seen.setdefault(r.system, r.sizing)
    return "Workers:\n" + "\n".join(f"  {name}: {sizing}" for name, sizing in seen.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per phase")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cap", type=float, default=10.0,
                        help="longest a full-cycle or drain phase may run (seconds)")
    parser.add_argument("--limit-tasks", type=int, default=20_000,
                        help="tasks claimed by the store-limit loop")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 300 tasks, one run, 5 s cap")
    parser.add_argument("--only", nargs="*", default=[],
                        help="keep systems whose 'name store servers' contains one of these")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the codeq server and one worker during each full cycle; "
                             "summaries go to profile.txt next to --output")
    parser.add_argument("--output", type=Path, default=None,
                        help="default: benchmarks/results/throughput.txt (throughput-quick.txt "
                             "with --quick)")
    args = parser.parse_args(argv)
    args.output = args.output or RESULTS / f"throughput{'-quick' if args.quick else ''}.txt"
    if args.quick:
        args.tasks, args.runs, args.cap, args.limit_tasks = 300, 1, 5.0, 2000
    root = Path(tempfile.mkdtemp(prefix="codeq-throughput-"))
    print(f"logs and data: {root}", file=sys.stderr)
    rows: list[Row] = []
    with RedisServer.start(root / "redis") as redis:
        chosen, missing = systems(args, redis, root)
        tally = Tally(root / "tally")
        rows += run_all(chosen, tally, args, root)
        rows += missing
        if not args.only or any("limit" in word for word in args.only):
            rows += store_limit(redis, args.limit_tasks, args.runs)
    report = "\n\n".join([
        header("codeq throughput benchmark",
               f"tasks per phase: {args.tasks}, runs: {args.runs} (median, min-max), "
               f"cap: {args.cap:g} s",
               "rates in tasks/s; '*' = phase cut at the cap; CPU ms/task: CPU time of every "
               "process of the system per task in the full cycle (median)"),
        table(["system", "store", "server", "full cycle /s", "enqueue /s", "drain /s",
               "CPU ms/task", "server/workers/redis/producer"], [r.cells() for r in rows]),
        ratios(rows), targets(rows), sizing_notes(rows)]).rstrip() + "\n"
    publish(report, args.output)
    if args.profile:
        profiles = profile_report(rows)
        (args.output.parent / "profile.txt").write_text(profiles)
        print(profiles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
