"""AsyncClient's aiohttp transport against real sockets: its failures keep the retry rules
true (a claim is repeated only when it surely never reached the server)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from codeq import AsyncClient, ConnectionFailed

Behaviour = Callable[[asyncio.StreamWriter], Awaitable[None]]
ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 14\r\n\r\n"
          b'{"tasks": [1]}')


@asynccontextmanager
async def server(behaviour: Behaviour) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TCP server on 127.0.0.1 that reads each request of a connection and then acts;
    yields its URL and the requests it received (head and body)."""
    seen: list[bytes] = []

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                seen.append(head + await reader.readexactly(int(length[1]) if length else 0))
                await behaviour(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        listening.close()


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()


async def stay_silent(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(5)


async def answer(writer: asyncio.StreamWriter) -> None:
    writer.write(ANSWER)
    await writer.drain()


async def cause_of(attempt: Awaitable[object]) -> BaseException | None:
    with pytest.raises(ConnectionFailed) as info:
        await attempt
    return info.value.__cause__


async def test_a_refused_connection_is_a_connect_error_and_is_retried() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        async with AsyncClient(f"http://127.0.0.1:{s.getsockname()[1]}", "T", retries=2,
                               retry_backoff=0.01) as client:
            assert isinstance(await cause_of(client.claim(["A"])), httpx.ConnectError)


async def test_a_claim_whose_answer_is_lost_is_not_repeated() -> None:
    async with server(hang_up) as (url, seen), AsyncClient(url, "T", retries=3) as client:
        cause = await cause_of(client.claim(["A"]))
    assert isinstance(cause, httpx.RemoteProtocolError | httpx.ReadError)
    assert len(seen) == 1


async def test_a_create_that_times_out_waiting_for_its_answer_is_not_repeated() -> None:
    async with server(stay_silent) as (url, seen), \
            AsyncClient(url, "T", retries=3, timeout=0.2) as client:
        assert isinstance(await cause_of(client.create_task("A")), httpx.ReadTimeout)
    assert len(seen) == 1


async def test_a_result_whose_answer_is_lost_is_repeated() -> None:
    async with server(hang_up) as (url, seen), \
            AsyncClient(url, "T", retries=2, retry_backoff=0.01) as client:
        await cause_of(client.submit_result("t", "COMPLETED", result=1))
    assert len(seen) == 3


async def test_answers_come_back_over_one_kept_alive_connection() -> None:
    connections = []

    async def count(writer: asyncio.StreamWriter) -> None:
        if writer not in connections:
            connections.append(writer)
        await answer(writer)

    async with server(count) as (url, seen), AsyncClient(url, "T") as client:
        for _ in range(3):
            assert await client.claim_batch(5, ["A"]) == [1]
    assert len(seen) == 3 and len(connections) == 1


async def test_the_default_sender_sends_what_httpx_sends() -> None:
    """The same calls through aiohttp (the default) and through httpx (``transport=``)
    reach the server as the same request line, body and headers."""
    def compared(raw: bytes) -> tuple[bytes, set[bytes], bytes]:
        head, _, body = raw.partition(b"\r\n\r\n")
        line, *fields = head.split(b"\r\n")
        kept = {f.lower() for f in fields if f.lower().split(b":")[0] in
                {b"authorization", b"content-type", b"content-length", b"user-agent", b"x-role"}}
        return line, kept, body

    async def exchange(client: AsyncClient) -> None:
        await client.create_task("MAIL", {"to": "zoë@example.org", "n": 1.5, "big": 2**70},
                                 priority=3, delay_seconds=2)
        await client.list_tasks(command="MAIL", status="PENDING", limit=5, cursor="a b/c")
        await client.get_task("0b1c8b1e-8c1a-4c3e-9d7f-2b6a8e1c4d50", history=True)
        await client.claim_batch(4, ["MAIL", "SMS"], lease_seconds=30, wait_seconds=0)
        await client.submit_result("0b1c8b1e-8c1a-4c3e-9d7f-2b6a8e1c4d50", "COMPLETED",
                                   result={"ok": True})
        await client.pause_queue("MAIL")  # an admin route: X-Role

    async with server(answer) as (url, received):
        async with AsyncClient(url, "T", admin=True) as client:
            await exchange(client)
        direct = [compared(raw) for raw in received]
        received.clear()
        async with AsyncClient(url, "T", admin=True,
                               transport=httpx.AsyncHTTPTransport()) as client:
            await exchange(client)
        through_httpx = [compared(raw) for raw in received]
    assert len(direct) == 6 and any(b"x-role: admin" in kept for _, kept, _ in direct)
    assert direct == through_httpx
