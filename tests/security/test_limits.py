"""Limits: body size (413), batch size (413), per-key ingest rate (429 + Retry-After), oversize
content truncated with a marker rather than rejected, redaction applied server-side before storage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tests.security._support import bearer, create_key
from tests.support.llmlens_server import LLMLensServer


@dataclass
class Limited:
    srv: LLMLensServer
    key: str
    other_key: str

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.srv.url, headers=bearer(key or self.key), timeout=30)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    data = tmp_path_factory.mktemp("limits")
    env = {
        "LLMLENS_MAX_BATCH_EVENTS": "5",
        "LLMLENS_MAX_FIELD_CHARS": "100",
        "LLMLENS_INGEST_RATE_LIMIT": "10",
        "LLMLENS_MAX_BODY_BYTES": "20000",
        "LLMLENS_REDACTION": json.dumps(
            {"patterns": ["api_key", "bearer", "card", "email", "phone"], "custom": {"ticket": "TCK-[0-9]{4}"}}
        ),
    }
    with LLMLensServer(data, args=["--auth", "on"], env=env) as srv:
        yield Limited(srv, create_key(data, "default", "admin"), create_key(data, "default", "admin"))


def _llm(i: int, prompt: str = "hello") -> dict[str, object]:
    return {"type": "llm", "model": "gpt-4o", "prompt": prompt, "response": "ok", "span_id": f"{i:016x}"}


def test_body_over_the_limit_is_413(limited: Limited) -> None:
    with limited.client() as c:
        r = c.post("/api/v1/ingest", content=b"[" + b" " * 30000 + b"]", headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["error"]


def test_batch_over_the_limit_is_413(limited: Limited) -> None:
    with limited.client(limited.other_key) as c:
        r = c.post("/api/v1/ingest", json=[_llm(1000 + i) for i in range(6)])
        assert r.status_code == 413 and "5-event limit" in r.json()["error"]


def test_rate_limit_answers_429_with_retry_after(limited: Limited) -> None:
    with limited.client() as c:
        statuses = [c.post("/api/v1/ingest", json=[_llm(2000 + 5 * n + i) for i in range(5)]) for n in range(8)]
    codes = [r.status_code for r in statuses]
    assert codes[0] == 200 and 429 in codes, codes
    limited_answer = next(r for r in statuses if r.status_code == 429)
    assert int(limited_answer.headers["retry-after"]) >= 1
    # another key has its own bucket
    with limited.client(limited.other_key) as c:
        assert c.post("/api/v1/ingest", json=[_llm(3000)]).status_code == 200


def _stored(limited: Limited, span_id: str) -> dict[str, object]:
    with limited.client(limited.other_key) as c:
        r = c.post("/api/v1/sql", json={"query": f"SELECT * FROM llm_logs WHERE span_id = '{span_id}'"})
        doc = r.json()
        return dict(zip(doc["columns"], doc["rows"][0], strict=True))


def test_oversize_content_is_truncated_with_a_marker(limited: Limited) -> None:
    event = _llm(4000, "x" * 250)
    event["metadata"] = {"blob": "y" * 150, "tier": "pro"}
    with limited.client(limited.other_key) as c:
        r = c.post("/api/v1/ingest", json=[event])
        assert r.status_code == 200 and r.json()["accepted"] == 1
    row = _stored(limited, f"{4000:016x}")
    assert row["prompt"] == "x" * 100 + "…[truncated 150 chars]"
    metadata = row["metadata"] if isinstance(row["metadata"], dict) else json.loads(str(row["metadata"]))
    assert metadata["blob"] == "y" * 100 + "…[truncated 50 chars]" and metadata["tier"] == "pro"


def test_pii_and_secrets_are_masked_before_storage(limited: Limited) -> None:
    prompt = "mail ann@example.com, card 4111 1111 1111 1111, TCK-1234, sk-abcdefghijklmnopqrstu"
    with limited.client(limited.other_key) as c:
        assert c.post("/api/v1/ingest", json=[_llm(5000, prompt)]).status_code == 200
        dump = c.post("/api/v1/sql", json={"query": "SELECT * FROM spans"}).text
    row = _stored(limited, f"{5000:016x}")
    assert row["prompt"] == "mail [REDACTED_EMAIL], card [REDACTED_CARD], [REDACTED_TICKET], [REDACTED_API_KEY]"
    for secret in ("ann@example.com", "4111 1111 1111 1111", "TCK-1234", "sk-abcdefghijklmnopqrstu"):
        assert secret not in dump
        assert secret not in limited.srv.log()


def test_metadata_only_mode_stores_no_text(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"LLMLENS_REDACTION": json.dumps({"mode": "metadata_only"})}
    with LLMLensServer(tmp_path_factory.mktemp("meta-only"), env=env) as srv:
        event = _llm(1, "a private question")
        event.update(prompt_tokens=12, completion_tokens=3)
        srv.ingest([event, {"type": "tool", "tool_name": "search", "args": {"q": "private"}, "result": "secret"}])
        rows = srv.sql("SELECT prompt, response, input_messages, model, prompt_tokens FROM llm_logs")
        assert rows == [
            {"prompt": None, "response": None, "input_messages": None, "model": "gpt-4o", "prompt_tokens": 12}
        ]
        assert srv.sql("SELECT args, result, tool_name FROM tool_logs") == [
            {"args": None, "result": None, "tool_name": "search"}
        ]
