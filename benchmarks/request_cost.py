"""Where the CPU of one request goes: the HTTP stack, the Redis client, codeq's own work.

Four measurements in one run, in alternating rounds, one request at a time:

* HTTP floor: the do-nothing app (``peers/echo_app.py``) under uvicorn with the
  httptools parser and uvloop, as ``codeq serve`` runs: server CPU per request;
* Redis client floor: one ``EVALSHA`` of a one-line script as the store sends it (its
  own pipelined connection, ``codeq_redis.wire``): CPU of this process per call;
* codeq in process: the app ``create_app`` builds, on a private Redis, called
  directly as ASGI (no socket) for a create, a claim and a result: CPU of this
  process per request, the Redis client's included, access log written;
* codeq over HTTP: a real ``codeq serve`` on the same Redis, the same three
  requests from aiohttp: server CPU per request.

codeq in process less the Redis floor is what codeq itself does per request;
over HTTP less in process is what serving it costs. Prints a table (median of the
rounds, min-max) and writes ``benchmarks/results/request-cost.txt``.

    python benchmarks/request_cost.py [--requests 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

import aiohttp
import orjson
import uvloop
from _harness import BENCH_DIR, cpu_seconds, echo_server, header, publish, table
from codeq_redis.connection import Target
from fastapi import FastAPI
from starlette.types import Message

from codeq.core.config import load_settings
from codeq.devkeys import mint_token
from codeq.server.app import create_app
from codeq.server.logging import setup_logging
from codeq.testing.redis_server import RedisServer
from codeq.testing.server import ServerProcess

RESULTS = BENCH_DIR / "results"
COMMAND = "bench.cost"
CREATE = orjson.dumps({"command": COMMAND, "payload": {"n": 1}})
CLAIM = orjson.dumps({"commands": [COMMAND], "leaseSeconds": 300, "waitSeconds": 0})
RESULT = orjson.dumps({"status": "COMPLETED", "result": {"ok": True}})
ROUTES = ("create", "claim", "result")
#: codeq's clients name every request (the server makes up an id only when none came).
REQUEST_ID = "0b1c8b1e-8c1a-4c3e-9d7f-2b6a8e1c4d50"
#: Sends one request: (path, body, role) -> the answer's body.
Send = Callable[[str, bytes, str], Awaitable[bytes]]


class Flow:
    """Creates, claims and results of ``COMMAND`` through one way of sending: the claims
    take the tasks the creates made, the results finish the tasks the claims took."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.leased: list[str] = []

    async def create(self) -> None:
        await self.send("/v1/codeq/tasks", CREATE, "producer")

    async def claim(self) -> None:
        self.leased.append(orjson.loads(await self.send("/v1/codeq/tasks/claim", CLAIM,
                                                        "worker"))["id"])

    async def result(self) -> None:
        await self.send(f"/v1/codeq/tasks/{self.leased.pop()}/result", RESULT, "worker")

    async def cycle(self, n: int) -> None:
        for route in ROUTES:
            for _ in range(n):
                await getattr(self, route)()

    async def measure(self, n: int, cpu: Callable[[], float]) -> dict[str, float]:
        """CPU ms per request of each route, ``n`` requests each, one at a time."""
        found = {}
        for route in ROUTES:
            step = getattr(self, route)
            started = cpu()
            for _ in range(n):
                await step()
            found[route] = (cpu() - started) / n * 1000
        return found


def in_process(app: FastAPI, tokens: dict[str, bytes]) -> Send:
    """Requests straight into the app's ASGI callable, as uvicorn would hand them."""

    async def send(path: str, body: bytes, role: str) -> bytes:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "root_path": "", "query_string": b"", "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 2),
                 "headers": [(b"host", b"127.0.0.1"), (b"authorization", tokens[role]),
                             (b"x-request-id", REQUEST_ID.encode()),
                             (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        messages: list[Message] = []
        delivered = asyncio.Event()

        async def receive() -> Message:
            if delivered.is_set():
                await asyncio.Event().wait()  # a client that stays: never disconnects
            delivered.set()
            return {"type": "http.request", "body": body, "more_body": False}

        async def reply(message: Message) -> None:
            messages.append(message)

        await app(scope, receive, reply)
        status, answer = messages[0]["status"], messages[1]["body"]
        if status >= 300:
            raise RuntimeError(f"{path} answered {status}: {answer!r}")
        return bytes(answer)

    return send


def over_http(session: aiohttp.ClientSession, base_url: str, tokens: dict[str, bytes]) -> Send:
    async def send(path: str, body: bytes, role: str) -> bytes:
        headers = {"authorization": tokens[role].decode(), "content-type": "application/json",
                   "x-request-id": REQUEST_ID}
        async with session.post(base_url + path, data=body, headers=headers) as answer:
            content = await answer.read()
            if answer.status >= 300:
                raise RuntimeError(f"{path} answered {answer.status}: {content!r}")
            return content

    return send


def process_cpu() -> float:
    return time.process_time()


def server_cpu(pid: int) -> Callable[[], float]:
    return lambda: cpu_seconds([pid])


async def echo_floor(session: aiohttp.ClientSession, url: str, pid: int, n: int) -> float:
    async def once() -> None:
        async with session.post(url + "/v1/codeq/tasks", data=CREATE) as answer:
            await answer.read()

    started = cpu_seconds([pid])
    for _ in range(n):
        await once()
    return (cpu_seconds([pid]) - started) / n * 1000


async def redis_floor(url: str, n: int) -> float:
    """CPU of one script call as the store makes it (its own connection, ``Wire``)."""
    target = Target.parse(url)
    client = target.connect()
    wire = target.wire(client)
    assert wire is not None
    try:
        sha = await wire.script_load("return ARGV[1]")
        for _ in range(100):
            await wire.evalsha(sha, 0, "x")
        started = time.process_time()
        for _ in range(n):
            await wire.evalsha(sha, 0, "x")
        return (time.process_time() - started) / n * 1000
    finally:
        await wire.aclose()
        await client.aclose()


async def measure(root: Path, redis: RedisServer, served: ServerProcess, echo_url: str,
                  echo_pid: int, n: int, rounds: int, log_stream: IO[str]
                  ) -> dict[str, list[float]]:
    data_dir = root / "in-process"
    settings = load_settings(environ={}, overrides={"dataDir": str(data_dir),
                                                     "storage": redis.url})
    app = create_app(settings)

    def bearer(directory: Path) -> dict[str, bytes]:
        return {role: f"Bearer {mint_token(directory, role, sub='bench')}".encode()
                for role in ("producer", "worker")}

    found: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        found.setdefault(name, []).append(value)

    with contextlib.redirect_stderr(log_stream):
        setup_logging(settings)  # an access line per request, as the server writes
    async with app.router.lifespan_context(app), aiohttp.ClientSession() as session:
        local = Flow(in_process(app, bearer(data_dir)))
        remote = Flow(over_http(session, served.base_url, bearer(served.data_dir)))
        await local.cycle(100)  # warm-up: connections, scripts, caches
        await remote.cycle(100)
        await echo_floor(session, echo_url, echo_pid, 100)
        for _ in range(rounds):
            note("http", await echo_floor(session, echo_url, echo_pid, n))
            note("redis", await redis_floor(redis.url, n))
            for route, ms in (await local.measure(n, process_cpu)).items():
                note(f"local {route}", ms)
            for route, ms in (await remote.measure(n, server_cpu(served.pid))).items():
                note(f"remote {route}", ms)
    return found


def report(found: dict[str, list[float]], n: int, rounds: int) -> str:
    def cell(name: str) -> str:
        values = found[name]
        return f"{statistics.median(values):.3f}"

    def span(name: str) -> str:
        return f"{min(found[name]):.3f}-{max(found[name]):.3f}"

    rows = [["HTTP floor: do-nothing app under uvicorn (server CPU)", cell("http"), span("http")],
            ["Redis client floor: one EVALSHA (client CPU)", cell("redis"), span("redis")]]
    for route in ROUTES:
        rows.append([f"codeq {route}, in process (app + Redis client CPU)",
                     cell(f"local {route}"), span(f"local {route}")])
    for route in ROUTES:
        rows.append([f"codeq {route}, over HTTP (server CPU)",
                     cell(f"remote {route}"), span(f"remote {route}")])
    http, redis = (statistics.median(found[k]) for k in ("http", "redis"))
    local = sum(statistics.median(found[f"local {r}"]) for r in ROUTES) / len(ROUTES)
    remote = sum(statistics.median(found[f"remote {r}"]) for r in ROUTES) / len(ROUTES)
    parts = {"HTTP floor": http, "Redis client floor": redis,
             "codeq's own work (in process less the Redis floor)": local - redis,
             "the rest (serving codeq less the floor: connections, event loop)":
                 remote - local - http}
    shares = [f"mean of the three routes over HTTP: {remote:.3f} ms, of which",
              *(f"  {name}: {ms:.3f} ({ms / remote:.0%})" for name, ms in parts.items())]
    return "\n\n".join([
        header("codeq request cost benchmark",
               f"requests per route and round: {n}, one at a time; rounds: {rounds} "
               "(median, min-max); Redis store"),
        table(["what", "CPU ms/request", "min-max"], rows),
        "\n".join(shares)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "request-cost.txt")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="codeq-request-cost-") as tmp:
        root = Path(tmp)
        with RedisServer.start(root / "redis") as redis, \
                ServerProcess.start(root / "served", storage=redis.url) as served, \
                echo_server() as (echo_url, echo_pid), open(os.devnull, "w") as devnull:
            found = uvloop.run(measure(root, redis, served, echo_url, echo_pid,
                                       args.requests, args.rounds, devnull))
    publish(report(found, args.requests, args.rounds), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
