"""The sqlite doorbell: stores sharing one file wake each other's waiting claims at once.

Two stores opened on one real file in this process stand for two server
processes (each has its own connection, thread and socket). The
``PRAGMA data_version`` poll is slowed down to a minute, so only the doorbell
can wake a waiter within the test.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from codeq_sqlite import SqliteStorage
from codeq_sqlite import store as queries
from codeq_sqlite.doorbell import MAX_DATAGRAM, commands_in, datagrams, wake_dir

from codeq.core.domain import Task

CMD = "bell.alpha"
#: Far below the poll interval of the production store (0.1 s), let alone this test's.
WAKE_WITHIN = 0.050

Open = Callable[..., Awaitable[SqliteStorage]]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "codeq.db"


@pytest.fixture
async def open_store(monkeypatch: pytest.MonkeyPatch, db: Path
                     ) -> AsyncIterator[Open]:
    """Open stores on ``db`` (or another path), polling for foreign commits once a minute."""
    monkeypatch.setattr(queries, "FOREIGN_COMMIT_CHECK_SECONDS", 60.0)
    stores: list[SqliteStorage] = []

    async def open_one(path: Path = db) -> SqliteStorage:
        store = SqliteStorage(path)
        await store.open()
        stores.append(store)
        return store

    yield open_one
    for store in stores:
        await store.close()


def new_task(store: SqliteStorage, command: str = CMD, *, now: float | None = None,
             delay: float = 0, max_attempts: int = 3) -> Task:
    now = time.time() if now is None else now
    task = Task(id=store.new_task_id(command), command=command, payload={}, priority=5,
                max_attempts=max_attempts, created_at=now, updated_at=now,
                visible_at=now + delay if delay else None)
    task.record(now, "created")
    return task


def sockets_in(db: Path) -> list[str]:
    return sorted(os.listdir(wake_dir(db)))


def dead_peer(db: Path, name: str = "1-dead.sock") -> Path:
    """A socket file whose process is gone: bound, then closed without removing the file."""
    path = wake_dir(db) / name
    path.parent.mkdir(mode=0o700, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    return path


async def woken_after_create_on(waiting: SqliteStorage, creating: SqliteStorage,
                                command: str = CMD) -> float:
    """Like a long-polling claim: ``waiting`` saw the queue empty and waits; seconds to wake."""
    with waiting.ready.listen([command]) as waiter:
        assert await waiting.claim([command], worker_id="w", lease_seconds=30, count=1,
                                   now=time.time()) == []
        started = time.perf_counter()
        await creating.create(new_task(creating, command), now=time.time())
        assert await waiter.wait(1.0), "the waiting store was never woken"
        elapsed = time.perf_counter() - started
    assert len(await waiting.claim([command], worker_id="w", lease_seconds=30, count=1,
                                   now=time.time())) == 1
    return elapsed


async def test_a_create_in_one_store_wakes_a_waiter_of_the_other_at_once(open_store: Open
                                                                          ) -> None:
    a = await open_store()
    await a.create(new_task(a, "bell.first"), now=time.time())  # A rang while alone
    await asyncio.sleep(0.02)  # a later tick of the directory's (maybe coarse) mtime
    b = await open_store()
    for _ in range(5):
        assert await woken_after_create_on(a, b) < WAKE_WITHIN
        # The other way round: A notices the peer that arrived after it last looked.
        assert await woken_after_create_on(b, a) < WAKE_WITHIN


async def test_a_waiter_for_another_command_stays_asleep(open_store: Open) -> None:
    a, b = await open_store(), await open_store()
    with a.ready.listen(["bell.other"]) as waiter:
        await b.create(new_task(b), now=time.time())
        assert not await waiter.wait(0.2)


async def test_requeue_promotion_redrive_and_unpause_ring_too(open_store: Open) -> None:
    a, b = await open_store(), await open_store()
    now = time.time()
    await b.create(new_task(b, now=now, max_attempts=1), now=now)
    await b.create(new_task(b, now=now, delay=5), now=now)
    [task] = await b.claim([CMD], worker_id="w", lease_seconds=30, count=1, now=now)

    async def woken_by(step: Awaitable[object]) -> bool:
        with a.ready.listen([CMD]) as waiter:
            await step
            return await waiter.wait(WAKE_WITHIN)

    assert await woken_by(b.abandon(task.id, worker_id="w", lease_id=task.lease_id, now=now))
    [task] = await b.claim([CMD], worker_id="w", lease_seconds=30, count=1, now=now)
    assert await woken_by(b.promote_due(now=now + 6, limit=10))
    await b.claim([CMD], worker_id="w", lease_seconds=30, count=1, now=now + 6)
    await b.nack(task.id, worker_id="w", lease_id=None, delay_seconds=0, reason="x", now=now + 7)
    assert await woken_by(b.redrive(CMD, ids=None, limit=10, now=now + 8))
    await b.set_paused(CMD, True)
    assert await woken_by(b.set_paused(CMD, False))


async def test_a_dead_peers_socket_is_removed_and_breaks_nothing(open_store: Open,
                                                                 db: Path) -> None:
    stale = dead_peer(db)
    a, b = await open_store(), await open_store()
    assert stale.exists()
    assert await woken_after_create_on(a, b) < WAKE_WITHIN
    assert not stale.exists()
    assert len(sockets_in(db)) == 2


async def test_a_peer_that_never_reads_is_skipped(open_store: Open, db: Path) -> None:
    # Its queue fills up (net.unix.max_dgram_qlen datagrams); the sends to it then fail
    # at once instead of blocking, and the other peers are still rung.
    wake_dir(db).mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as deaf:
        deaf.bind(str(wake_dir(db) / "1-deaf.sock"))
        a = await open_store()
        [a_name] = set(sockets_in(db)) - {"1-deaf.sock"}
        b = await open_store()
        # B rings its peers in directory order: put the deaf one before A (a renamed
        # socket file still reaches the same socket), so that skipping it is what lets
        # the ring reach A. Both are renamed: a name of A's that sorts first in the
        # directory's hash order would leave no name of the deaf one before it.
        deaf_name = "1-deaf.sock"
        for n in range(200):
            listed = os.listdir(wake_dir(db))
            if listed.index(deaf_name) < listed.index(a_name):
                break
            os.rename(wake_dir(db) / deaf_name, wake_dir(db) / f"1-deaf-{n}.sock")
            deaf_name = f"1-deaf-{n}.sock"
            renamed = f"{os.getpid()}-{n:012x}.sock"
            os.rename(wake_dir(db) / a_name, wake_dir(db) / renamed)
            a_name = renamed
        else:
            pytest.fail(f"the deaf peer never came before A in {os.listdir(wake_dir(db))}")
        queue_length = int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text())
        for _ in range(queue_length + 5):
            await b.create(new_task(b, "bell.filler"), now=time.time())
            await asyncio.sleep(0)  # each create rings on its own
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe, \
                pytest.raises(BlockingIOError):  # the deaf peer's queue is full by now
            probe.setblocking(False)
            probe.sendto(b"x", str(wake_dir(db) / deaf_name))
        assert await woken_after_create_on(a, b) < WAKE_WITHIN
        assert (wake_dir(db) / deaf_name).exists()  # alive, so it stays


async def test_closing_a_store_removes_its_own_socket(open_store: Open, db: Path) -> None:
    a = await open_store()
    [own] = sockets_in(db)
    assert own.startswith(f"{os.getpid()}-")
    b = await open_store()
    assert len(sockets_in(db)) == 2
    await b.close()
    assert sockets_in(db) == [own]
    await a.close()
    assert sockets_in(db) == []
    assert wake_dir(db).stat().st_mode & 0o777 == 0o700


async def test_too_long_a_socket_path_falls_back_to_the_poll(
        open_store: Open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(queries, "FOREIGN_COMMIT_CHECK_SECONDS", 0.05)
    deep = tmp_path / ("d" * 120) / "codeq.db"
    with caplog.at_level(logging.WARNING, logger="codeq.sqlite"):
        a, b = await open_store(deep), await open_store(deep)
    warnings = [r for r in caplog.records if "no instant wake-ups" in r.getMessage()]
    assert len(warnings) == 2  # once per store
    assert sockets_in(deep) == []
    await asyncio.sleep(0.1)  # A's poll has taken its first reading
    with a.ready.listen([CMD]) as waiter:
        await b.create(new_task(b), now=time.time())
        assert await waiter.wait(1.0), "the poll did not wake the waiter either"


def test_many_commands_are_split_into_datagrams_that_fit() -> None:
    names = {f"{n:03d}" + "c" * 124 for n in range(100)}
    packed = datagrams(names)
    assert len(packed) > 1
    assert all(len(datagram) <= MAX_DATAGRAM for datagram in packed)
    assert sorted(name for datagram in packed for name in commands_in(datagram)) == sorted(names)
    assert commands_in(b"ok\n\n-bad\nnot ok\n\xff\nfine.too") == ["ok", "fine.too"]
    # At the limit: sixteen 127-byte names take 2047 bytes; one more name, even of one
    # byte, needs its newline too and goes into a second datagram.
    edge = {f"{n:03d}" + "c" * 124 for n in range(16)}
    assert [len(d) for d in datagrams(edge)] == [MAX_DATAGRAM - 1]
    assert [len(d) for d in datagrams(edge | {"z"})] == [MAX_DATAGRAM - 1, 1]
