"""AsyncClient's own HTTP sender against real sockets: its failures keep the retry rules
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
from codeq.client import InvalidRequest

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


async def test_connections_are_capped_and_shared_by_requests_in_turn() -> None:
    connections: set[asyncio.StreamWriter] = set()

    async def slow_answer(writer: asyncio.StreamWriter) -> None:
        connections.add(writer)
        await asyncio.sleep(0.01)
        await answer(writer)

    async with server(slow_answer) as (url, seen), \
            AsyncClient(url, "T", max_connections=3) as client:
        replies = await asyncio.gather(*(client.claim_batch(2, ["A"]) for _ in range(20)))
    assert replies == [[1]] * 20 and len(seen) == 20
    assert len(connections) == 3


async def test_no_free_connection_in_time_is_a_pool_timeout() -> None:
    async with server(stay_silent) as (url, seen), \
            AsyncClient(url, "T", max_connections=1, timeout=0.3, retries=0) as client:
        first = asyncio.ensure_future(client.claim(["A"], wait_seconds=5))  # holds the one
        await asyncio.sleep(0.05)
        assert isinstance(await cause_of(client.create_task("A")), httpx.PoolTimeout)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    assert len(seen) == 1  # the create never left


async def test_chunked_answers_and_closing_answers_are_read() -> None:
    connections: list[asyncio.StreamWriter] = []

    async def chunked_then_close(writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                     b"5\r\n{\"tas\r\n9\r\nks\": [1]}\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with server(chunked_then_close) as (url, seen), AsyncClient(url, "T") as client:
        assert await client.claim_batch(5, ["A"]) == [1]
        assert await client.claim_batch(5, ["A"]) == [1]  # on a new connection
    assert len(connections) == 2 and len(seen) == 2


async def test_a_base_url_path_prefixes_every_request() -> None:
    async with server(answer) as (url, seen), AsyncClient(url + "/queue/", "T") as client:
        await client.claim_batch(5, ["A"])
    assert seen[0].startswith(b"POST /queue/v1/codeq/tasks/claim/batch HTTP/1.1\r\n")


async def test_a_header_that_would_break_the_request_head_is_refused() -> None:
    async with server(answer) as (url, seen), \
            AsyncClient(url, "T", headers={"X-Tag": "a\r\nX-Injected: 1"}) as client:
        with pytest.raises(InvalidRequest, match="line break"):
            await client.claim(["A"])
    assert seen == []


async def test_a_malformed_answer_is_a_protocol_error() -> None:
    async def garbage(writer: asyncio.StreamWriter) -> None:
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    async with server(garbage) as (url, seen), AsyncClient(url, "T", retries=0) as client:
        assert isinstance(await cause_of(client.claim(["A"])), httpx.RemoteProtocolError)
    assert len(seen) == 1


async def test_a_connection_answering_while_the_client_closes_is_closed_after() -> None:
    connections: list[asyncio.StreamWriter] = []

    async def late_answer(writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await asyncio.sleep(0.1)
        await answer(writer)

    async with server(late_answer) as (url, seen):
        client = AsyncClient(url, "T")
        claim = asyncio.ensure_future(client.claim_batch(5, ["A"]))
        await asyncio.sleep(0.02)
        await client.aclose()
        assert await claim == [1]
        for _ in range(100):  # the server sees the end of the connection
            if connections[0].is_closing():
                break
            await asyncio.sleep(0.01)
        assert connections[0].is_closing() and len(seen) == 1
