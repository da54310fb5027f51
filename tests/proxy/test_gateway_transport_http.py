"""The gateway's own HTTP/1.1 client against raw upstreams: answers ended by the connection, interim 100
answers, HEAD, keep-alive reuse, the request line as sent, and reading paused for a slow reader."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import openai
import pytest
from tests.proxy._support import free_port
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

from llmlens.proxy._transport import UpstreamAnswer, UpstreamClient, UpstreamTarget

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEADERS = [(b"authorization", b"Bearer sk-1"), (b"content-type", b"application/json")]


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


def _with_upstream(handler: Handler, test: Callable[[UpstreamClient, int], Awaitable[None]]) -> None:
    async def go() -> None:
        port = free_port()

        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(guarded, "127.0.0.1", port)
        client = UpstreamClient(timeout_s=2.0, connect_timeout_s=1.0, max_connections=10)
        try:
            await test(client, port)
        finally:
            await client.aclose()
            server.close()

    asyncio.run(go())


def test_an_answer_without_a_length_ends_with_the_connection() -> None:
    async def closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nfirst ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"and last")
        await writer.drain()

    async def test(client: UpstreamClient, port: int) -> None:
        answer = await client.send("POST", f"http://127.0.0.1:{port}/v1/x", HEADERS, b"{}")
        assert answer.status == 200
        assert await _body(answer) == b"first and last"

    _with_upstream(closes, test)


def test_an_interim_100_answer_is_skipped_and_the_connection_reused() -> None:
    seen: list[bytes] = []
    connections: list[int] = []

    async def continues(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            seen.append(await _request(reader))
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Kept-Case: Yes\r\n\r\nok")
            await writer.drain()

    async def test(client: UpstreamClient, port: int) -> None:
        for _ in range(3):
            answer = await client.send("POST", f"http://127.0.0.1:{port}/v1/a%20b/c d?q=1%202", HEADERS, b"{}")
            assert answer.status == 201
            assert (b"X-Kept-Case", b"Yes") in answer.raw_headers  # header names as the upstream wrote them
            assert await _body(answer) == b"ok"

    _with_upstream(continues, test)
    assert (len(connections), len(seen)) == (1, 3)  # three requests over one kept-alive connection
    assert seen[0].startswith(b"POST /v1/a%20b/c%20d?q=1%202 HTTP/1.1\r\nHost: 127.0.0.1:")


def test_head_has_no_body_whatever_its_length_says() -> None:
    async def heads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    async def test(client: UpstreamClient, port: int) -> None:
        answer = await client.send("HEAD", f"http://127.0.0.1:{port}/v1/models", HEADERS, b"")
        assert answer.status == 200
        assert await _body(answer) == b""

    _with_upstream(heads, test)


def test_reading_pauses_while_the_relay_does_not_read() -> None:
    size = 4 * 1024 * 1024

    async def floods(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()

    async def test(client: UpstreamClient, port: int) -> None:
        answer = await client.send("POST", f"http://127.0.0.1:{port}/v1/big", HEADERS, b"{}")
        connection = answer._connection
        # A slow client: the relay does not read. Reading from the upstream pauses past the high-water mark.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not connection._paused and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert connection._paused
        assert connection.buffered < size // 4, "the whole answer was read into memory"
        assert len(await _body(answer)) == size

    _with_upstream(floods, test)


def test_targets_keep_the_port_only_when_it_is_not_the_default() -> None:
    assert UpstreamTarget("https://api.openai.com/v1").host_header == b"api.openai.com"
    assert UpstreamTarget("http://127.0.0.1:8000/v1").host_header == b"127.0.0.1:8000"
    assert UpstreamTarget("http://[::1]:80/v1").host_header == b"[::1]"
    assert UpstreamTarget("https://api.anthropic.com").path == b"/"


def test_the_gateway_reaches_an_https_upstream(tmp_path: Path) -> None:
    """Providers are HTTPS: the gateway's own client verifies the upstream's certificate (here one the
    test made, trusted through SSL_CERT_FILE) and streams and records the call as over plain HTTP."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    with FakeProvider(host="127.0.0.1", tls_cert=(str(cert), str(key))) as upstream:
        assert upstream.url.startswith("https://")
        args = ["--upstream", f"secure={upstream.url}/v1"]
        with LLMLensServer(tmp_path / "data", args=args, env={"SSL_CERT_FILE": str(cert)}) as srv:
            client = openai.OpenAI(base_url=f"{srv.url}/proxy/secure/v1", api_key="sk-test", max_retries=0)
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
            chunks = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            deadline = time.monotonic() + 10
            while len(srv.sql("SELECT span_id FROM llm_logs WHERE provider = 'secure'")) < 2:
                assert time.monotonic() < deadline, "the calls were not recorded"
                time.sleep(0.05)
        assert len(upstream.requests) == 2
        # A certificate nobody trusts is refused, not ignored.
        with LLMLensServer(tmp_path / "data2", args=args) as srv:
            client = openai.OpenAI(base_url=f"{srv.url}/proxy/secure/v1", api_key="sk-test", max_retries=0)
            with pytest.raises(openai.APIStatusError) as refused:
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            assert refused.value.status_code == 502
        assert len(upstream.requests) == 2
