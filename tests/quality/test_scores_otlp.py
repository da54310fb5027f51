"""OTel GenAI evaluation results sent over OTLP/HTTP become evaluator scores on the span they judge."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.support.llmlens_server import LLMLensServer


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _span(trace_id: str, span_id: str, name: str, start_ns: int, attrs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + 900_000_000),
        "attributes": [_attr(k, v) for k, v in attrs.items()],
        **extra,
    }


def _evaluation(start_ns: int, **attrs: Any) -> dict[str, Any]:
    return {
        "name": "gen_ai.evaluation.result",
        "timeUnixNano": str(start_ns + 2_000_000_000),
        "attributes": [_attr(k, v) for k, v in attrs.items()],
    }


def test_evaluation_events_and_evaluation_spans_become_scores(server: LLMLensServer) -> None:
    project = f"otel-{uuid.uuid4().hex[:6]}"
    trace_id, chat_id, eval_id = uuid.uuid4().hex, uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    start = time.time_ns() - 60_000_000_000
    chat_attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 12}
    events = [
        _evaluation(
            start,
            **{
                "gen_ai.evaluation.name": "relevance",
                "gen_ai.evaluation.score.value": 0.9,
                "gen_ai.evaluation.score.label": "relevant",
                "gen_ai.evaluation.explanation": "answers the question asked",
            },
        ),
        _evaluation(start, **{"gen_ai.evaluation.name": "verdict", "gen_ai.evaluation.score.label": "pass"}),
        _evaluation(start, **{"gen_ai.evaluation.name": "coherence", "error.type": "timeout"}),  # failed: no score
    ]
    # An emitter that cannot attach events sends the result as a short child span of the judged call.
    judge_attrs = {"gen_ai.evaluation.name": "toxicity", "gen_ai.evaluation.score.value": 0.0}
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", "bot")]},
                "scopeSpans": [
                    {
                        "scope": {"name": "test"},
                        "spans": [
                            _span(trace_id, chat_id, "chat gpt-4o", start, chat_attrs, events=events),
                            _span(
                                trace_id,
                                eval_id,
                                "gen_ai.evaluation.result",
                                start + 1_000_000_000,
                                judge_attrs,
                                parentSpanId=chat_id,
                            ),
                        ],
                    }
                ],
            }
        ]
    }
    with server.client() as c:
        r = c.post(
            "/v1/traces",
            content=json.dumps(body),
            headers={"Content-Type": "application/json", "X-LLMLens-Project": project},
        )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 15
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(rows) < 3:
        rows = server.sql(
            "SELECT name, data_type, value, label, source, reasoning, trace_id, span_id FROM scores ORDER BY name",
            headers={"X-LLMLens-Project": project},
        )
        time.sleep(0.05)
    assert [(r["name"], r["data_type"], r["value"], r["label"], r["source"]) for r in rows] == [
        ("relevance", "numeric", 0.9, "relevant", "evaluator"),
        ("toxicity", "numeric", 0.0, None, "evaluator"),
        ("verdict", "categorical", None, "pass", "evaluator"),
    ]
    assert all((r["trace_id"], r["span_id"]) == (trace_id, chat_id) for r in rows), "all judge the chat span"
    assert rows[0]["reasoning"] == "answers the question asked"
    spans = server.sql("SELECT span_id, kind FROM spans ORDER BY span_id", headers={"X-LLMLens-Project": project})
    assert {s["span_id"] for s in spans} == {chat_id, eval_id}, "the spans themselves are stored as usual"
