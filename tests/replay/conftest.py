"""A real llmlens server whose OpenAI and Anthropic upstreams are one fake provider, with keys set."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

USER_SCORER = "tests.replay.example_scorers:mentions_paris"
KEYS = {"OPENAI_API_KEY": "sk-test-openai", "ANTHROPIC_API_KEY": "sk-ant-test"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ReplayEnv:
    server: LLMLensServer
    fp: FakeProvider
    dead_port: int

    def post(self, path: str, doc: dict[str, Any], **kwargs: Any) -> httpx.Response:
        with self.server.client() as c:
            return c.post(path, json=doc, **kwargs)

    def ok(self, path: str, doc: dict[str, Any]) -> dict[str, Any]:
        r = self.post(path, doc)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def span(self, span_id: str) -> dict[str, Any]:
        rows = self.server.sql(f"SELECT * FROM spans WHERE span_id = '{span_id}'")
        assert rows, f"span {span_id} not stored"
        return rows[0]

    def wait_sql(self, query: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.server.sql(query)
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(api_key=None) as fp:
        yield fp


@pytest.fixture(scope="module")
def env(fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayEnv]:
    dead = free_port()
    args = [
        "--upstream",
        f"openai={fake.openai_base_url}",
        "--upstream",
        f"anthropic={fake.anthropic_base_url}",
        "--upstream",
        f"vllm=http://127.0.0.1:{dead}/v1",
    ]
    replay_config = json.dumps({"scorers": [USER_SCORER]})
    with LLMLensServer(
        tmp_path_factory.mktemp("replay-data"), args=args, env={**KEYS, "LLMLENS_REPLAY": replay_config}
    ) as srv:
        yield ReplayEnv(srv, fake, dead)


@pytest.fixture
def fp(env: ReplayEnv) -> Iterator[FakeProvider]:
    env.fp.reset()
    yield env.fp
    env.fp.reset()
