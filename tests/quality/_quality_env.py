"""A real llmlens server whose OpenAI and Anthropic upstreams are one stand-in provider that also plays the
judge (`JUDGE_MODEL` answers JSON verdicts derived from the prompt), for the online evaluator, RAG,
dataset, experiment and annotation tests."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import httpx
import openai
import pytest
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

# A real, priced model name that the stand-in answers as a judge: judge calls cost money, as in production.
JUDGE_MODEL = "gpt-4.1-nano"
KEYS = {"OPENAI_API_KEY": "sk-test-openai", "ANTHROPIC_API_KEY": "sk-ant-test"}
T = TypeVar("T")
# Module fixtures run on the embedded store and on ClickHouse (where the shared state lives in ClickHouse too).
BACKENDS = ["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)]


def store_args(request: pytest.FixtureRequest, database: str) -> list[str]:
    """`--store` for the fixture's backend: a database of its own on the session's ClickHouse."""
    if request.param != "clickhouse":
        return []
    url: str = request.getfixturevalue("clickhouse_url")
    return ["--store", url.rsplit("/", 1)[0] + "/" + database]


@dataclass
class QualityEnv:
    server: LLMLensServer
    fp: FakeProvider
    project: str = "default"
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-LLMLens-Project": self.project, **self.extra_headers}

    def in_project(self, project: str) -> QualityEnv:
        return QualityEnv(self.server, self.fp, project, self.extra_headers)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=60, headers=self.headers)

    def get(self, path: str, **params: Any) -> Any:
        with self.client() as c:
            r = c.get(path, params=params)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:500]}"
        return r.json()

    def post(self, path: str, doc: Any, expect: int | tuple[int, ...] = (200, 201, 202)) -> Any:
        with self.client() as c:
            r = c.post(path, json=doc)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert r.status_code in wanted, f"POST {path}: {r.status_code} {r.text[:500]}"
        return r.json()

    def sql(self, query: str) -> list[dict[str, Any]]:
        return self.server.sql(query, headers=self.headers)

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.server.url + "/proxy/openai/v1", api_key="sk-app", default_headers=self.headers
        )

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.server.url + "/proxy/anthropic", api_key="sk-ant-app", default_headers=self.headers
        )

    def ask(self, question: str, *, feature: str, model: str = "gpt-4o", **headers: str) -> str:
        """One app call through the gateway with the real `openai` client (`claude-*`: the `anthropic` one);
        returns its message id (the provider's response id)."""
        extra = {"X-LLMLens-Feature": feature, **headers}
        if model.startswith("claude"):
            message = self.anthropic().messages.create(
                model=model, max_tokens=256, messages=[{"role": "user", "content": question}], extra_headers=extra
            )
            return message.id
        reply = self.openai().chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], extra_headers=extra
        )
        return reply.id

    def ingest(self, events: list[dict[str, Any]]) -> None:
        doc = self.server.ingest(events, headers=self.headers)
        assert doc["rejected"] == [], doc

    def wait_rows(self, query: str, count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """The query's rows once there are at least `count` of them (fails with what it saw at the deadline)."""
        return wait_for(lambda: self.sql(query), lambda rows: len(rows) >= count, timeout_s, query)


def wait_for(
    read: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 30.0, what: str = "the condition"
) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last seen: {value!r:.2000}")
        time.sleep(0.1)


@contextmanager
def quality_server(
    data_dir: Path,
    fp: FakeProvider,
    *,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    evaluators: list[dict[str, Any]] | None = None,
) -> Iterator[QualityEnv]:
    upstreams = ["--upstream", f"openai={fp.openai_base_url}", "--upstream", f"anthropic={fp.anthropic_base_url}"]
    environment = {
        **KEYS,
        "LLMLENS_QUALITY": json.dumps({"inferred": False, "evaluator_interval_s": 0.3}),
        "LLMLENS_JUDGE": json.dumps({"model": JUDGE_MODEL, "concurrency": 2}),
        "LLMLENS_REPLAY": json.dumps({"scorers": ["tests.quality._evaluator_functions:mentions_paris"]}),
        **({"LLMLENS_EVALUATORS": json.dumps(evaluators)} if evaluators else {}),
        **(env or {}),
    }
    with LLMLensServer(data_dir, args=[*upstreams, *(args or [])], env=environment) as srv:
        yield QualityEnv(srv, fp)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
