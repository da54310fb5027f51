"""Every SQL query printed in the article runs verbatim against a real server and gives the answer
computed independently here from the events we sent (in the article's own log formats)."""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support.llmlens_server import LLMLensServer

DAY = 86_400.0
NOW = time.time()
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20250219"]
FEATURES = ["code generation", "text summarization", "chat"]
TOOLS = ["search_web", "fetch_user_data", "calculator"]


def _age_days(rng: random.Random) -> float:
    # Keep clear of the 1/7/30-day boundaries so the test cannot flake on timing.
    while True:
        age = rng.uniform(0.01, 40)
        if all(abs(age - b) > 0.05 for b in (1, 7, 30)):
            return age


def build_events() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(1234)
    llm: list[dict[str, Any]] = []
    for i in range(120):
        model = rng.choice(MODELS)
        feature = rng.choice(FEATURES)
        prompt_tokens = (
            rng.choice([rng.randint(50, 3000), rng.randint(10_001, 30_000)]) if i % 9 == 0 else rng.randint(50, 3000)
        )
        completion_tokens = rng.randint(10, 800)
        cost = round(rng.uniform(0.0001, 0.5), 6) if i % 13 else round(rng.uniform(1.01, 6.0), 6)
        session = "abc123" if i % 17 == 0 else f"s{rng.randint(1, 20)}"
        template_id = "code_review" if i % 3 == 0 else "other_template"
        metadata: dict[str, Any] = {
            "user_id": f"user{rng.randint(1, 12)}",
            "feature": feature,
            "session_id": session,
            "template_id": template_id,
            "template_version": rng.choice(["2026-03-01", "2026-03-15"]),
            "variables": {"language": "python", "file": "main.py"},
            "message_id": f"m{i}",
        }
        # Exactly what the article's log_llm_call writes.
        llm.append(
            {
                "timestamp": NOW - _age_days(rng) * DAY,
                "model": model,
                "prompt": f"prompt {i}",
                "response": f"response {i}",
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "latency_ms": round(rng.uniform(100, 6000), 3),
                "cost_usd": cost,
                "metadata": metadata,
            }
        )
    tools: list[dict[str, Any]] = []
    for i in range(60):
        ok = rng.random() < 0.7
        tools.append(
            {
                "timestamp": NOW - _age_days(rng) * DAY,
                "tool_name": rng.choice(TOOLS),
                "args": {"q": i},
                "result": {"n": i} if ok else None,
                "latency_ms": round(rng.uniform(1, 3000), 3),
                "success": ok,
                "error": None if ok else "boom",
                "session_id": "abc123" if i % 7 == 0 else "other",
            }
        )
    retrievals = [
        {
            "type": "retrieval",
            "timestamp": NOW - i * 60,
            "query": f"q{i}",
            "session_id": "abc123" if i < 3 else "x",
            "documents": [{"id": f"d{i}", "content": "chunk", "score": 0.9}],
        }
        for i in range(5)
    ]
    feedback: list[dict[str, Any]] = []
    kinds = ["thumbs_up", "thumbs_down", "retry", "edit", "abandon", "thumbs_up"]
    for _ in range(150):
        message = rng.randint(0, 129)  # some rate messages that do not exist: feature is NULL
        feedback.append(
            {
                "user_id": "u",
                "session_id": "s",
                "message_id": f"m{message}",
                "feedback_type": rng.choice(kinds),
                "feedback_text": None,
                "timestamp": NOW - rng.uniform(0, 30) * DAY,
            }
        )
    return llm, tools, retrievals, feedback


LLM, TOOL_EVENTS, RETRIEVALS, FEEDBACK = build_events()


@pytest.fixture(scope="module")
def clickhouse_article_server(clickhouse_url: str) -> Iterator[LLMLensServer]:
    store = clickhouse_url.rsplit("/", 1)[0] + "/article_sql"
    with LLMLensServer(args=["--store", store]) as srv:
        yield srv


@pytest.fixture(scope="module", params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def srv(request: pytest.FixtureRequest) -> Iterator[LLMLensServer]:
    server: LLMLensServer = request.getfixturevalue(
        "server" if request.param == "duckdb" else "clickhouse_article_server"
    )
    # The article's logger writes one JSON object per line: send them as NDJSON.
    body = "\n".join(json.dumps(e) for e in LLM + TOOL_EVENTS + RETRIEVALS + FEEDBACK)
    with server.client() as c:
        r = c.post("/api/v1/ingest", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert r.json()["rejected"] == []
    yield server


def _recent(events: list[dict[str, Any]], days: float) -> list[dict[str, Any]]:
    return [e for e in events if e["timestamp"] > time.time() - days * DAY]


def _percentile_cont(values: list[float], q: float) -> float:
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _satisfaction_by_message() -> dict[str, float]:
    scores: dict[str, list[float]] = defaultdict(list)
    for f in FEEDBACK:
        scores[f["message_id"]].append(1.0 if f["feedback_type"] == "thumbs_up" else 0.0)
    return {m: sum(v) / len(v) for m, v in scores.items()}


def test_cost_per_user(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT user_id, SUM(cost_usd) as total_cost
FROM llm_logs
WHERE timestamp > NOW() - INTERVAL 30 DAY
GROUP BY user_id
ORDER BY total_cost DESC
LIMIT 100""")
    expected: dict[str, float] = defaultdict(float)
    for e in _recent(LLM, 30):
        expected[e["metadata"]["user_id"]] += e["cost_usd"]
    assert [r["user_id"] for r in rows] == sorted(expected, key=lambda u: -expected[u])
    for r in rows:
        assert r["total_cost"] == pytest.approx(expected[r["user_id"]])


def test_cost_per_feature(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT feature, SUM(cost_usd) as total_cost, COUNT(*) as calls
FROM llm_logs
WHERE timestamp > NOW() - INTERVAL 7 DAY
GROUP BY feature
ORDER BY total_cost DESC""")
    cost: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for e in _recent(LLM, 7):
        cost[e["metadata"]["feature"]] += e["cost_usd"]
        calls[e["metadata"]["feature"]] += 1
    assert [r["feature"] for r in rows] == sorted(cost, key=lambda f: -cost[f])
    for r in rows:
        assert r["total_cost"] == pytest.approx(cost[r["feature"]])
        assert r["calls"] == calls[r["feature"]]


def test_latency_percentiles_by_model(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT
    model,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) as p50_latency,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) as p95_latency,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) as p99_latency
FROM llm_logs
WHERE timestamp > NOW() - INTERVAL 1 DAY
GROUP BY model""")
    by_model: dict[str, list[float]] = defaultdict(list)
    for e in _recent(LLM, 1):
        by_model[e["model"]].append(e["latency_ms"])
    assert {r["model"] for r in rows} == set(by_model)
    for r in rows:
        values = by_model[r["model"]]
        assert r["p50_latency"] == pytest.approx(_percentile_cont(values, 0.5))
        assert r["p95_latency"] == pytest.approx(_percentile_cont(values, 0.95))
        assert r["p99_latency"] == pytest.approx(_percentile_cont(values, 0.99))


def test_template_version_satisfaction(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT template_version, AVG(user_satisfaction) as avg_satisfaction
FROM llm_logs
WHERE template_id = 'code_review'
GROUP BY template_version""")
    sat = _satisfaction_by_message()
    per_version: dict[str, list[float]] = defaultdict(list)
    versions = set()
    for e in LLM:
        if e["metadata"]["template_id"] == "code_review":
            versions.add(e["metadata"]["template_version"])
            if e["metadata"]["message_id"] in sat:
                per_version[e["metadata"]["template_version"]].append(sat[e["metadata"]["message_id"]])
    assert {r["template_version"] for r in rows} == versions
    for r in rows:
        values = per_version[r["template_version"]]
        if values:
            assert r["avg_satisfaction"] == pytest.approx(sum(values) / len(values))
        else:
            assert r["avg_satisfaction"] is None


def test_prompt_length_by_day(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT DATE(timestamp) as date, AVG(prompt_tokens) as avg_tokens
FROM llm_logs
GROUP BY date
ORDER BY date""")
    per_day: dict[str, list[int]] = defaultdict(list)
    for e in LLM:
        day = datetime.fromtimestamp(e["timestamp"], tz=UTC).date().isoformat()
        per_day[day].append(e["prompt_tokens"])
    assert [r["date"] for r in rows] == sorted(per_day)
    for r in rows:
        assert r["avg_tokens"] == pytest.approx(sum(per_day[r["date"]]) / len(per_day[r["date"]]))


def test_outliers(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT prompt, prompt_tokens, cost_usd
FROM llm_logs
WHERE prompt_tokens > 10000 OR cost_usd > 1.00
ORDER BY cost_usd DESC
LIMIT 50""")
    expected = sorted(
        (e for e in LLM if e["prompt_tokens"] > 10000 or e["cost_usd"] > 1.0), key=lambda e: -e["cost_usd"]
    )[:50]
    assert expected, "the data set must contain outliers"
    assert [(r["prompt"], r["prompt_tokens"], r["cost_usd"]) for r in rows] == [
        (e["prompt"], e["prompt_tokens"], e["cost_usd"]) for e in expected
    ]


def test_tool_success_rate(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT tool_name, COUNT(*) as calls, AVG(CAST(success AS INT)) as success_rate
FROM tool_logs
GROUP BY tool_name
ORDER BY success_rate ASC""")
    calls: dict[str, int] = defaultdict(int)
    ok: dict[str, int] = defaultdict(int)
    for e in TOOL_EVENTS:
        calls[e["tool_name"]] += 1
        ok[e["tool_name"]] += int(e["success"])
    rates = {t: ok[t] / calls[t] for t in calls}
    assert [r["tool_name"] for r in rows] == sorted(rates, key=lambda t: rates[t])
    for r in rows:
        assert r["calls"] == calls[r["tool_name"]]
        assert r["success_rate"] == pytest.approx(rates[r["tool_name"]])


def test_tool_latency(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT tool_name, AVG(latency_ms) as avg_latency
FROM tool_logs
GROUP BY tool_name
ORDER BY avg_latency DESC""")
    lat: dict[str, list[float]] = defaultdict(list)
    for e in TOOL_EVENTS:
        lat[e["tool_name"]].append(e["latency_ms"])
    avg = {t: sum(v) / len(v) for t, v in lat.items()}
    assert [r["tool_name"] for r in rows] == sorted(avg, key=lambda t: -avg[t])
    for r in rows:
        assert r["avg_latency"] == pytest.approx(avg[r["tool_name"]])


def test_satisfaction_by_feature(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT feature, AVG(CASE WHEN feedback_type = 'thumbs_up' THEN 1.0 ELSE 0.0 END) as satisfaction
FROM feedback_events
GROUP BY feature
ORDER BY satisfaction ASC""")
    feature_of = {e["metadata"]["message_id"]: e["metadata"]["feature"] for e in LLM}
    scores: dict[str | None, list[float]] = defaultdict(list)
    for f in FEEDBACK:
        scores[feature_of.get(f["message_id"])].append(1.0 if f["feedback_type"] == "thumbs_up" else 0.0)
    expected = {k: sum(v) / len(v) for k, v in scores.items()}
    assert None in expected, "some feedback rates unknown messages"
    assert {r["feature"] for r in rows} == set(expected)
    for r in rows:
        assert r["satisfaction"] == pytest.approx(expected[r["feature"]])
    assert [r["satisfaction"] for r in rows] == sorted(r["satisfaction"] for r in rows)


def test_feedback_against_latency(srv: LLMLensServer) -> None:
    rows = srv.sql("""SELECT
    CASE WHEN latency_ms < 1000 THEN 'fast' WHEN latency_ms < 3000 THEN 'medium' ELSE 'slow' END as speed,
    AVG(CASE WHEN feedback_type = 'thumbs_up' THEN 1.0 ELSE 0.0 END) as satisfaction
FROM llm_logs JOIN feedback_events ON llm_logs.message_id = feedback_events.message_id
GROUP BY speed""")
    latency_of = {e["metadata"]["message_id"]: e["latency_ms"] for e in LLM}
    scores: dict[str, list[float]] = defaultdict(list)
    for f in FEEDBACK:
        if f["message_id"] in latency_of:
            lat = latency_of[f["message_id"]]
            speed = "fast" if lat < 1000 else "medium" if lat < 3000 else "slow"
            scores[speed].append(1.0 if f["feedback_type"] == "thumbs_up" else 0.0)
    assert {r["speed"] for r in rows} == set(scores)
    for r in rows:
        assert r["satisfaction"] == pytest.approx(sum(scores[r["speed"]]) / len(scores[r["speed"]]))


def test_find_the_exact_call(srv: LLMLensServer) -> None:
    rows = srv.sql("SELECT * FROM llm_logs WHERE session_id = 'abc123' ORDER BY timestamp")
    expected = sorted((e for e in LLM if e["metadata"]["session_id"] == "abc123"), key=lambda e: e["timestamp"])
    assert [r["prompt"] for r in rows] == [e["prompt"] for e in expected]
    first = rows[0]
    for column in ("prompt", "response", "model", "metadata", "trace_id", "span_id", "message_id"):
        assert column in first
    assert json.loads(first["metadata"]) == expected[0]["metadata"]
    assert first["model"] == expected[0]["model"]


def test_retrieved_context(srv: LLMLensServer) -> None:
    rows = srv.sql("SELECT * FROM retrieval_logs WHERE session_id = 'abc123'")
    assert sorted(r["query"] for r in rows) == ["q0", "q1", "q2"]
    assert all(json.loads(r["documents"])[0]["score"] == 0.9 for r in rows)


def test_tool_calls_of_a_session(srv: LLMLensServer) -> None:
    rows = srv.sql("SELECT * FROM tool_logs WHERE session_id = 'abc123' ORDER BY timestamp")
    expected = sorted((e for e in TOOL_EVENTS if e["session_id"] == "abc123"), key=lambda e: e["timestamp"])
    assert [json.loads(r["args"]) for r in rows] == [e["args"] for e in expected]
    assert [r["success"] for r in rows] == [e["success"] for e in expected]
    assert [r["error"] for r in rows] == [e["error"] for e in expected]
