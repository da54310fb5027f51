"""GET /metrics scraped with prometheus-client's parser: values match what was ingested, labels stay bounded."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support.llmlens_server import LLMLensServer

from llmlens.metrics import MAX_LABEL_VALUES

NOW_S = time.time()


def scrape(server: LLMLensServer) -> dict[str, Any]:
    response = httpx.get(server.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def value(families: dict[str, Any], family: str, sample: str | None = None, **labels: str) -> float:
    total = 0.0
    for s in families[family].samples:
        if s.name == (sample or family) and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


def llm(project: str, **fields: Any) -> dict[str, Any]:
    return {"type": "llm", "project": project, "timestamp": NOW_S, "prompt": "p", "response": "r", **fields}


def test_llm_metrics_match_the_ingested_calls(server: LLMLensServer) -> None:
    p = "metrics-values"
    events = [
        llm(
            p,
            model="gpt-4o",
            provider="openai",
            feature="chat",
            environment="prod",
            prompt_tokens=100,
            completion_tokens=20,
            cached_tokens=40,
            cost_usd=0.01,
            latency_ms=300,
            ttft_ms=120,
            streamed=True,
        ),
        llm(
            p,
            model="gpt-4o",
            provider="openai",
            feature="chat",
            environment="prod",
            prompt_tokens=200,
            completion_tokens=30,
            cost_usd=0.02,
            latency_ms=1500,
            ttft_ms=700,
            streamed=True,
        ),
        llm(
            p,
            model="gpt-4o",
            provider="openai",
            feature="chat",
            environment="prod",
            status="error",
            error_type="rate_limit",
            error="429 Too Many Requests",
            latency_ms=80,
        ),
        llm(
            p,
            model="claude-3-5-haiku",
            provider="anthropic",
            feature="summarize",
            environment="prod",
            prompt_tokens=50,
            completion_tokens=10,
            cost_usd=0.001,
            latency_ms=4200,
            user_id="user-42",
        ),
        llm(
            p,
            model="llama-local",
            provider="vllm",
            feature="summarize",
            prompt_tokens=10,
            completion_tokens=5,
            latency_ms=900,
        ),
        {
            "type": "tool",
            "project": p,
            "timestamp": NOW_S,
            "tool_name": "search_web",
            "success": False,
            "error": "timeout",
            "latency_ms": 5000,
        },
        {
            "type": "tool",
            "project": p,
            "timestamp": NOW_S,
            "tool_name": "search_web",
            "success": True,
            "latency_ms": 400,
        },
    ]
    doc = server.ingest(events)
    assert doc["accepted"] == len(events)
    message_id = doc["message_ids"][0]
    server.ingest([{"type": "feedback", "project": p, "message_id": message_id, "feedback_type": "thumbs_up"}])

    m = scrape(server)
    chat = {"project": p, "model": "gpt-4o", "provider": "openai", "feature": "chat", "environment": "prod"}
    assert value(m, "llmlens_llm_calls", "llmlens_llm_calls_total", **chat, status="ok") == 2
    assert value(m, "llmlens_llm_calls", "llmlens_llm_calls_total", **chat, status="error") == 1
    assert value(m, "llmlens_llm_errors", "llmlens_llm_errors_total", **chat, error_type="rate_limit") == 1
    assert value(m, "llmlens_llm_tokens", "llmlens_llm_tokens_total", **chat, type="prompt") == 300
    assert value(m, "llmlens_llm_tokens", "llmlens_llm_tokens_total", **chat, type="completion") == 50
    assert value(m, "llmlens_llm_tokens", "llmlens_llm_tokens_total", **chat, type="cached") == 40
    assert value(m, "llmlens_llm_cost_usd", "llmlens_llm_cost_usd_total", **chat) == pytest.approx(0.03)
    # Latency histogram: 0.3 s, 1.5 s, 0.08 s.
    latency = "llmlens_llm_latency_seconds"
    assert value(m, latency, latency + "_count", **chat) == 3
    assert value(m, latency, latency + "_sum", **chat) == pytest.approx(1.88)
    assert value(m, latency, latency + "_bucket", **chat, le="0.1") == 1
    assert value(m, latency, latency + "_bucket", **chat, le="0.5") == 2
    assert value(m, latency, latency + "_bucket", **chat, le="2.0") == 3
    assert value(m, latency, latency + "_bucket", **chat, le="+Inf") == 3
    ttft = "llmlens_llm_ttft_seconds"
    assert value(m, ttft, ttft + "_count", **chat) == 2
    assert value(m, ttft, ttft + "_bucket", **chat, le="0.25") == 1
    assert value(m, ttft, ttft + "_sum", **chat) == pytest.approx(0.82)
    # A self-hosted model without a price: counted as unpriced, never as zero cost; missing labels are "none".
    local = {"project": p, "model": "llama-local", "provider": "vllm", "feature": "summarize", "environment": "none"}
    assert value(m, "llmlens_llm_unpriced_calls", "llmlens_llm_unpriced_calls_total", **local) == 1
    assert value(m, "llmlens_llm_cost_usd", "llmlens_llm_cost_usd_total", **local) == 0
    # Tools, feedback, spans by kind.
    assert value(m, "llmlens_tool_calls", "llmlens_tool_calls_total", project=p, tool="search_web", status="error") == 1
    assert value(m, "llmlens_tool_calls", "llmlens_tool_calls_total", project=p, tool="search_web", status="ok") == 1
    assert (
        value(m, "llmlens_ingested_feedback", "llmlens_ingested_feedback_total", project=p, feedback_type="thumbs_up")
        == 1
    )
    assert value(m, "llmlens_ingested_spans", "llmlens_ingested_spans_total", project=p, kind="llm") == 5
    assert value(m, "llmlens_ingested_spans", "llmlens_ingested_spans_total", project=p, kind="tool") == 2
    # No user ids as labels, anywhere.
    for family in m.values():
        for sample in family.samples:
            assert "user_id" not in sample.labels and "user" not in sample.labels
            assert "user-42" not in sample.labels.values()


def test_server_health_metrics(server: LLMLensServer) -> None:
    before = scrape(server)
    server.ingest([llm("metrics-health", model="gpt-4o-mini", prompt_tokens=1, completion_tokens=1)] * 1)
    after = scrape(server)
    assert (
        value(after, "llmlens_ingested_events", "llmlens_ingested_events_total")
        == value(before, "llmlens_ingested_events", "llmlens_ingested_events_total") + 1
    )
    assert value(after, "llmlens_writer_commits", "llmlens_writer_commits_total") >= 1
    commits = value(after, "llmlens_writer_commit_seconds", "llmlens_writer_commit_seconds_count")
    assert commits == value(after, "llmlens_writer_commits", "llmlens_writer_commits_total")
    assert value(after, "llmlens_ingest_queue_events") == 0
    assert value(after, "llmlens_ingest_queue_capacity_events") == 200_000
    assert value(after, "llmlens_ingest_rejected", "llmlens_ingest_rejected_total", reason="backpressure") == 0
    assert value(after, "llmlens_store_size_bytes") > 0
    assert value(after, "llmlens_start_time_seconds") == pytest.approx(time.time(), abs=600)
    # A re-sent span is a duplicate, not a new event.
    event = llm("metrics-health", model="gpt-4o-mini", span_id="00000000000000aa", trace_id="0" * 31 + "a")
    server.ingest([event])
    server.ingest([event])
    again = scrape(server)
    assert value(again, "llmlens_ingest_duplicates", "llmlens_ingest_duplicates_total") >= 1


def test_label_values_are_capped(server: LLMLensServer) -> None:
    p = "metrics-cardinality"
    events = [llm(p, model="gpt-4o-mini", feature=f"feature-{i:03d}") for i in range(MAX_LABEL_VALUES + 50)]
    server.ingest(events)
    m = scrape(server)
    features = {s.labels["feature"] for s in m["llmlens_llm_calls"].samples if s.labels.get("project") == p}
    assert "other" in features
    assert len(features) <= MAX_LABEL_VALUES + 1
    total = value(m, "llmlens_llm_calls", "llmlens_llm_calls_total", project=p)
    assert total == len(events)  # nothing lost, only folded into "other"
    assert value(m, "llmlens_metrics_label_overflow", "llmlens_metrics_label_overflow_total") >= 50


def test_every_metric_is_documented(server: LLMLensServer) -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "integrations.md").read_text()
    server.ingest([llm("metrics-docs", model="m", ttft_ms=10, latency_ms=10)])
    for name in scrape(server):
        assert f"`{name}" in doc, name
