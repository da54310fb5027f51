"""The gateway never forwards outside an upstream's base URL: a `..` segment in a proxied path, plain,
percent-encoded once or twice, or with backslashes, is answered 400 and nothing reaches the upstream.

The requests are written on a raw socket, so that no client tidies the dots away first."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.security._support import create_key
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMLensServer, FakeProvider, str]]:
    data: Path = tmp_path_factory.mktemp("gateway-paths")
    with FakeProvider() as fake:
        args = ["--auth", "on", "--upstream", f"fake={fake.openai_base_url}"]
        with LLMLensServer(data, args=args) as srv:
            yield srv, fake, create_key(data, "default", "ingest")


def _raw_request(srv: LLMLensServer, method: str, target: str, key: str) -> int:
    """The status of `method target`, sent byte for byte as written."""
    assert srv.port is not None
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nX-LLMLens-Api-Key: {key}\r\n"
    head += "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "path",
    [
        "../../api/v1/overview",
        "v1/chat/completions/../../../../api/v1/overview",
        "%2e%2e/%2e%2e/api/v1/overview",
        "%2E%2e/.%2e/api/v1/overview",
        "%252e%252e/%252e%252e/api/v1/overview",  # decoded once by the server, once more by the URL library
        "..%2f..%2fapi/v1/overview",
        "..;/..;/api/v1/overview",
        "v1/..\\..\\api/v1/overview",
        "v1/%5c..%5c..%5capi/v1/overview",
    ],
)
def test_a_path_climbing_out_of_the_upstream_is_refused(
    gateway: tuple[LLMLensServer, FakeProvider, str], path: str
) -> None:
    srv, fake, key = gateway
    fake.clear()
    assert _raw_request(srv, "POST", f"/proxy/fake/{path}", key) == 400
    assert [r.path for r in fake.requests] == []  # nothing reached the upstream


def test_ordinary_paths_still_go_through(gateway: tuple[LLMLensServer, FakeProvider, str]) -> None:
    srv, fake, key = gateway
    fake.clear()
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{srv.url}/proxy/fake/v1/chat/completions", json=body, headers={"X-LLMLens-Api-Key": key})
    assert r.status_code == 200, r.text
    assert _raw_request(srv, "GET", "/proxy/fake/v1/models", key) == 200
    assert [r.path for r in fake.requests] == ["/v1/chat/completions", "/v1/models"]
    refused = httpx.post(
        f"{srv.url}/proxy/fake/v1/%2e%2e/x", content=b"{}", headers={"X-LLMLens-Api-Key": key}
    )  # a client that keeps the encoding gets the provider's error format, naming the problem
    assert refused.status_code == 400 and "'..'" in refused.json()["error"]["message"]
