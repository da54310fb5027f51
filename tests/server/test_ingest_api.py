"""POST /api/v1/ingest through a real server: formats, validation, partial acceptance, errors, dedupe."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

LLM_CALL = {
    "timestamp": 1767225600.25,
    "model": "gpt-4o",
    "prompt": "Hello",
    "response": "Hi there",
    "prompt_tokens": 1000,
    "completion_tokens": 100,
    "total_tokens": 1100,
    "latency_ms": 420.5,
    "cost_usd": 0.0042,
    "metadata": {
        "user_id": "u1",
        "feature": "chat",
        "session_id": "s1",
        "template_id": "greet",
        "template_version": "v2",
        "variables": {"name": "Ada"},
    },
}
TOOL_CALL = {
    "timestamp": 1767225601,
    "tool_name": "search_web",
    "args": {"q": "x"},
    "result": None,
    "latency_ms": 12.0,
    "success": False,
    "error": "HTTP 503",
}


def post(
    srv: LLMLensServer, body: bytes | str, content_type: str = "application/json", **headers: str
) -> httpx.Response:
    with srv.client() as c:
        return c.post("/api/v1/ingest", content=body, headers={"Content-Type": content_type, **headers})


def test_article_log_shapes_are_recognised_and_stored(server: LLMLensServer) -> None:
    r = post(server, json.dumps([LLM_CALL, TOOL_CALL]))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["accepted"] == 2 and doc["rejected"] == []
    message_id = doc["message_ids"][0]
    assert message_id and doc["message_ids"][1] is None
    feedback = {
        "user_id": "u1",
        "session_id": "s1",
        "message_id": message_id,
        "feedback_type": "thumbs_up",
        "feedback_text": None,
        "timestamp": 1767225700,
    }
    assert post(server, json.dumps(feedback)).json()["accepted"] == 1

    row = server.sql(f"SELECT * FROM llm_logs WHERE message_id = '{message_id}'")[0]
    assert row["timestamp"] == "2026-01-01T00:00:00.250000Z"
    assert (row["model"], row["prompt"], row["response"]) == ("gpt-4o", "Hello", "Hi there")
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (1000, 100, 1100)
    assert row["cost_usd"] == pytest.approx(0.0042) and row["cost_source"] == "caller"
    # genai-prices: gpt-4o at $2.50 / $10 per million tokens, stored beside the caller's cost.
    assert row["computed_cost_usd"] == pytest.approx(1000 * 2.5e-6 + 100 * 10e-6)
    assert (row["user_id"], row["feature"], row["session_id"]) == ("u1", "chat", "s1")
    assert (row["template_id"], row["template_version"]) == ("greet", "v2")
    assert json.loads(row["variables"]) == {"name": "Ada"}
    assert row["user_satisfaction"] == 1.0
    assert row["provider"] == "openai" and row["status"] == "ok"

    tool = server.sql("SELECT * FROM tool_logs WHERE tool_name = 'search_web'")[0]
    assert tool["success"] is False and tool["error"] == "HTTP 503" and json.loads(tool["args"]) == {"q": "x"}


def test_invalid_events_are_rejected_by_field_and_the_rest_kept(server: LLMLensServer) -> None:
    good = {**LLM_CALL, "metadata": {"message_id": "keep-me"}}
    bad_tokens = {**LLM_CALL, "prompt_tokens": -5}
    bad_time = {**LLM_CALL, "timestamp": "yesterday-ish"}
    no_model = {"type": "llm", "prompt": "x"}
    unknown = {"hello": "world"}
    r = post(server, json.dumps([good, bad_tokens, bad_time, no_model, unknown, "not an object"]))
    assert r.status_code == 200
    doc = r.json()
    assert doc["accepted"] == 1
    errors = {e["index"]: e["error"] for e in doc["rejected"]}
    assert set(errors) == {1, 2, 3, 4, 5}
    assert "prompt_tokens" in errors[1]
    assert "timestamp" in errors[2]
    assert "model" in errors[3]
    assert "type" in errors[4]
    assert server.sql("SELECT count(*) AS n FROM llm_logs WHERE message_id = 'keep-me'")[0]["n"] == 1


def test_ndjson_gzip_iso_timestamps_and_a_bad_line(server: LLMLensServer) -> None:
    lines = [
        json.dumps({**LLM_CALL, "timestamp": "2026-02-03T04:05:06.789Z", "metadata": {"message_id": "nd-1"}}),
        "{this is not json",
        json.dumps({**LLM_CALL, "timestamp": "2026-02-03T04:05:07", "metadata": {"message_id": "nd-2"}}),
    ]
    body = gzip.compress("\n".join(lines).encode())
    r = post(server, body, "application/x-ndjson", **{"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["accepted"] == 2 and [e["index"] for e in doc["rejected"]] == [1]
    rows = server.sql("SELECT message_id, timestamp FROM llm_logs WHERE message_id LIKE 'nd-%' ORDER BY 1")
    assert [r["timestamp"] for r in rows] == ["2026-02-03T04:05:06.789000Z", "2026-02-03T04:05:07Z"]


def test_events_object_and_single_event_forms(server: LLMLensServer) -> None:
    r = post(server, json.dumps({"events": [{**LLM_CALL, "metadata": {"message_id": "obj-1"}}]}))
    assert r.json()["accepted"] == 1
    r = post(
        server,
        json.dumps(
            {
                "type": "retrieval",
                "query": "refund policy",
                "session_id": "s9",
                "documents": [{"id": "d1", "content": "Refunds within 30 days", "score": 0.82}],
            }
        ),
    )
    assert r.json()["accepted"] == 1
    row = server.sql("SELECT * FROM retrieval_logs WHERE session_id = 's9'")[0]
    assert row["query"] == "refund policy" and row["num_documents"] == 1


def test_same_batch_twice_is_stored_once(server: LLMLensServer) -> None:
    batch = [{**LLM_CALL, "metadata": {"message_id": f"dup-{i}"}} for i in range(5)]
    batch.append(
        {
            "type": "span",
            "kind": "chain",
            "name": "answer",
            "trace_id": "ab" * 16,
            "span_id": "cd" * 8,
            "timestamp": 1767225600,
        }
    )
    for _ in range(2):
        assert post(server, json.dumps(batch)).json()["accepted"] == 6
    assert server.sql("SELECT count(*) AS n FROM llm_logs WHERE message_id LIKE 'dup-%'")[0]["n"] == 5
    assert server.sql("SELECT count(*) AS n FROM spans WHERE span_id = 'cdcdcdcdcdcdcdcd'")[0]["n"] == 1


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "status", "fragment"),
    [
        (b"{nope", "application/json", {}, 400, "not valid JSON"),
        (b"", "application/json", {}, 400, "empty"),
        (b"\x1f\x8b\x08\x00garbage", "application/json", {"Content-Encoding": "gzip"}, 400, "gzip"),
        (b"[]", "application/json", {"Content-Encoding": "br"}, 400, "Content-Encoding"),
        (b"42", "application/json", {}, 400, "JSON array"),
        (b"<xml/>", "application/xml", {}, 415, "Content-Type"),
    ],
)
def test_undecodable_bodies_get_a_clear_4xx(
    server: LLMLensServer, body: bytes, content_type: str, headers: dict[str, str], status: int, fragment: str
) -> None:
    r = post(server, body, content_type, **headers)
    assert r.status_code == status
    assert fragment in r.json()["error"]


def test_oversized_body_gets_413_and_the_server_lives_on(tmp_path: Path) -> None:
    with LLMLensServer(tmp_path / "d", env={"LLMLENS_MAX_BODY_BYTES": "2000"}) as srv:
        r = post(srv, json.dumps([LLM_CALL] * 20))
        assert r.status_code == 413 and "limit" in r.json()["error"]
        assert post(srv, json.dumps(LLM_CALL)).status_code == 200
        with srv.client() as c:
            assert c.get("/healthz").json()["status"] == "ok"
