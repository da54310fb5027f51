"""The gateway's upstream client against raw upstreams that misbehave: stale keep-alive, cut streams, silence."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest
from tests.proxy._support import free_port

from llmlens.proxy._transport import UpstreamAnswer, UpstreamClient, UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
ANSWER += b"6\r\ndata: \r\n5\r\nhello\r\n0\r\n\r\n"
HEADERS = [("authorization", "Bearer sk-1"), ("content-type", "application/json")]


async def _request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


async def _body(answer: UpstreamAnswer) -> bytes:
    data = b""
    async with answer:
        while chunk := await answer.read_chunk():
            data += chunk
    return data


async def _with_upstream(handler: Handler, test: Callable[[UpstreamClient, str], Awaitable[None]]) -> None:
    port = free_port()

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", port)
    client = UpstreamClient(timeout_s=0.5, connect_timeout_s=1.0, max_connections=10)
    try:
        await test(client, f"http://127.0.0.1:{port}/v1/chat/completions")
    finally:
        await client.aclose()
        server.close()


def test_request_goes_as_the_client_sent_it_and_a_stale_connection_is_retried() -> None:
    received: list[bytes] = []

    async def answers_once_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await _request(reader))
        writer.write(ANSWER)
        await writer.drain()
        await _request(reader)  # a keep-alive request on the same connection: dropped unanswered

    async def test(client: UpstreamClient, url: str) -> None:
        for _ in range(3):
            answer = await client.send("POST", url, HEADERS, b'{"n":1}')
            assert answer.status == 200
            assert (b"content-type", b"text/event-stream") in answer.raw_headers
            assert await _body(answer) == b"data: hello"

    asyncio.run(_with_upstream(answers_once_per_connection, test))
    assert len(received) == 3
    head, body = received[0].split(b"\r\n\r\n")
    names = sorted(line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")[1:])
    assert names == [b"authorization", b"content-length", b"content-type", b"host"]  # nothing of our own
    assert body == b'{"n":1}'


def test_an_answer_cut_mid_stream_raises_after_the_chunks_that_arrived() -> None:
    async def cuts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel")
        await writer.drain()
        await asyncio.sleep(0.05)

    async def test(client: UpstreamClient, url: str) -> None:
        answer = await client.send("POST", url, HEADERS, b"{}")
        got = b""
        with pytest.raises(UpstreamError) as error:
            async with answer:
                while chunk := await answer.read_chunk():
                    got += chunk
        assert got == b"hel" and not error.value.timeout

    asyncio.run(_with_upstream(cuts, test))


def test_silence_is_a_timeout_and_a_refused_connection_is_not() -> None:
    released = asyncio.Event()  # made in asyncio.run's loop (3.10+ binds it on first use)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        # Silent, connection open, until the client has given up (the deadline only bounds a broken client).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(released.wait(), timeout=30)

    async def test(client: UpstreamClient, url: str) -> None:
        with pytest.raises(UpstreamError) as error:
            await client.send("POST", url, HEADERS, b"{}")
        released.set()
        assert error.value.timeout
        with pytest.raises(UpstreamError) as error:
            await client.send("POST", f"http://127.0.0.1:{free_port()}/v1", HEADERS, b"{}")
        assert not error.value.timeout and "connect" in str(error.value).lower()

    asyncio.run(_with_upstream(silent, test))
