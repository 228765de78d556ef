"""The store's own connection for script calls: replies reach their callers in order,
through errors, timeouts, lost connections, passwords and databases."""

from __future__ import annotations

import asyncio
import pathlib
import time

import pytest
from codeq_redis.connection import Target
from codeq_redis.wire import Wire
from redis.exceptions import AuthenticationError, ConnectionError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from codeq.core.errors import StoreUnavailable
from codeq.testing.redis_server import RedisServer, command
from tests.redis.conftest import OpenStore, new_task


def wire_for(url: str) -> Wire:
    target = Target.parse(url)
    wire = target.wire(target.connect())
    assert wire is not None
    return wire


async def test_concurrent_calls_each_get_their_own_reply(redis_server: RedisServer) -> None:
    wire = wire_for(redis_server.url)
    try:
        replies = await asyncio.gather(*(wire.call("ECHO", f"call-{i}") for i in range(300)))
        assert replies == [f"call-{i}" for i in range(300)]
        batches = await asyncio.gather(*(wire.pipeline([("INCR", f"n{i}"), ("INCR", f"n{i}")])
                                         for i in range(50)))
        assert batches == [[1, 2]] * 50
    finally:
        await wire.aclose()


async def test_error_replies_are_redis_py_exceptions(redis_server: RedisServer) -> None:
    wire = wire_for(redis_server.url)
    try:
        with pytest.raises(NoScriptError):
            await wire.evalsha("0" * 40, 0)
        with pytest.raises(ResponseError, match="unknown command"):
            await wire.call("NO-SUCH-COMMAND")
        replies = await wire.pipeline([("SET", "k", "v"), ("INCR", "k"), ("GET", "k")])
        assert replies[0] == "OK" and replies[2] == "v"
        assert isinstance(replies[1], ResponseError)
        sha = await wire.script_load("return {ARGV[1], tonumber(ARGV[2]) + 1}")
        assert await wire.evalsha(sha, 0, "héllo", "41") == ["héllo", 42]
    finally:
        await wire.aclose()


async def test_a_late_reply_after_a_timeout_goes_to_nobody(tmp_path: pathlib.Path) -> None:
    with RedisServer.start(tmp_path / "r") as server:
        wire = wire_for(server.url + "?socket_timeout=0.3")
        try:
            assert await wire.call("SET", "k", "before") == "OK"
            server.freeze()
            started = time.monotonic()
            try:
                with pytest.raises(RedisTimeout):
                    await wire.call("GET", "k")
            finally:
                server.thaw()
            assert time.monotonic() - started < 2
            # The GET's reply arrives now; the next call must get its own reply, not that one.
            assert await wire.call("ECHO", "after") == "after"
            assert await wire.call("GET", "k") == "before"
        finally:
            await wire.aclose()


async def test_a_lost_connection_fails_its_calls_and_the_next_call_reconnects(
        tmp_path: pathlib.Path) -> None:
    with RedisServer.start(tmp_path / "r") as server:
        wire = wire_for(server.url)
        try:
            assert await wire.call("PING") == "PONG"
            server.freeze()
            waiting = asyncio.ensure_future(wire.call("PING"))
            await asyncio.sleep(0.05)
            server.restart()  # killed while frozen: the PING is never answered
            with pytest.raises(ConnectionError):
                await waiting
            assert await wire.call("PING") == "PONG"
        finally:
            await wire.aclose()


async def test_password_and_database_come_from_the_url(tmp_path: pathlib.Path) -> None:
    with RedisServer.start(tmp_path / "r") as server:
        assert command(server.port, "CONFIG", "SET", "requirepass", "s3cret") == "OK"
        wire = wire_for(f"redis://:s3cret@127.0.0.1:{server.port}/3")
        bad = wire_for(f"redis://:wrong@127.0.0.1:{server.port}/0")
        try:
            assert await wire.call("SET", "where", "db3") == "OK"
            assert await wire.pipeline([("SELECT", 0), ("EXISTS", "where"), ("SELECT", 3)]) \
                == ["OK", 0, "OK"]
            with pytest.raises(AuthenticationError):
                await bad.call("PING")
            with pytest.raises(AuthenticationError):  # and no call goes out unauthenticated
                await bad.call("PING")
        finally:
            await wire.aclose()
            await bad.aclose()


async def test_the_store_runs_its_scripts_on_the_wire_and_says_when_redis_is_gone(
        tmp_path: pathlib.Path, open_store: OpenStore) -> None:
    with RedisServer.start(tmp_path / "r") as server:
        store = await open_store(server.url + "?socket_timeout=0.3")
        assert store._wire is not None
        now = time.time()
        task, created = await store.create(new_task(store, "wire.a", now), now=now)
        assert created
        command(server.port, "SCRIPT", "FLUSH")  # as after a restart: loaded again on NOSCRIPT
        claimed = await store.claim(["wire.a"], worker_id="w", lease_seconds=30, count=1,
                                    now=now)
        assert [t.id for t in claimed] == [task.id]
        server.freeze()
        try:
            with pytest.raises(StoreUnavailable):
                await store.create(new_task(store, "wire.a", now), now=now)
        finally:
            server.thaw()
