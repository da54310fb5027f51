"""A gateway under test: a real llmlens server whose upstreams are fake providers on fixed ports.

The gateway's fake provider is started fresh (same port, same seed) by each test that compares bytes,
beside a second fake with the same seed that the client calls directly: the same calls in the same
order then get the same ids, so a direct answer and a proxied one can be compared byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.proxy._support import Gateway, free_port
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import write_price_file


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port, dead = free_port(), free_port()  # nothing listens on `dead`: connection refused
    args = [
        "--upstream",
        f"openai=http://127.0.0.1:{port}/v1",
        "--upstream",
        f"anthropic=http://127.0.0.1:{port}",
        "--upstream",
        f"dead=http://127.0.0.1:{dead}/v1",
    ]
    data: Path = tmp_path_factory.mktemp("gateway-data")
    # Claude calls are priced from the test's own file, OpenAI calls by genai-prices: the gateway tests
    # check the stored cost of both exactly.
    args += ["--price-file", str(write_price_file(data, ("claude-3-5-sonnet", "claude-3-5-haiku")))]
    with LLMLensServer(data, args=args) as srv:
        yield Gateway(srv, port, dead)


@pytest.fixture
def upstream(gateway: Gateway) -> Iterator[FakeProvider]:
    """The fake provider behind the gateway, fresh for each test (seed 0)."""
    with FakeProvider(port=gateway.upstream_port) as fp:
        yield fp


@pytest.fixture
def direct() -> Iterator[FakeProvider]:
    """A twin of `upstream` (seed 0) that the client calls without the gateway."""
    with FakeProvider() as fp:
        yield fp
