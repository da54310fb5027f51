"""The opt-in exact-match cache, and the W3C trace context that parents proxied calls."""

from __future__ import annotations

import json

import httpx
import openai
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace import TracerProvider
from tests.proxy._support import Gateway, same_bytes
from tests.support.fake_provider import FakeProvider

HELLO = [{"role": "user", "content": "cache me"}]
CACHE = {"X-LLMLens-Cache": "true"}


def test_cache_hit_answers_without_the_upstream_and_records_the_saving(
    gateway: Gateway, upstream: FakeProvider
) -> None:
    client = gateway.openai()
    headers = CACHE | {"X-LLMLens-Session-Id": "sess-cache"}
    first = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, extra_headers=headers)  # type: ignore[arg-type]
    second = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, extra_headers=headers)  # type: ignore[arg-type]
    assert first.headers["x-llmlens-cache"] == "MISS" and second.headers["x-llmlens-cache"] == "HIT"
    assert second.http_response.content == first.http_response.content
    assert second.headers["x-request-id"] == first.headers["x-request-id"]
    assert len(upstream.requests) == 1

    # Same body with its keys in another order: still a hit (the key is the canonical body).
    body = {"messages": HELLO, "model": "gpt-4o"}
    raw = httpx.post(
        gateway.openai_url + "/chat/completions",
        content=json.dumps(body, indent=2),
        headers=headers | {"Authorization": "Bearer sk-test-secret-123", "Content-Type": "application/json"},
    )
    assert raw.headers["x-llmlens-cache"] == "HIT"
    # Another key is another organisation: no hit.
    other = gateway.openai(api_key="sk-other")
    other.chat.completions.create(model="gpt-4o", messages=HELLO, extra_headers=headers)  # type: ignore[arg-type]
    # Without the header, no cache.
    client.chat.completions.create(model="gpt-4o", messages=HELLO, extra_headers={"X-LLMLens-Session-Id": "sess-cache"})  # type: ignore[arg-type]
    assert len(upstream.requests) == 3

    rows = gateway.wait_rows(
        "SELECT cache_hit, cost_usd, cost_saved_usd FROM llm_logs WHERE session_id = 'sess-cache' ORDER BY timestamp",
        5,
    )
    assert [r["cache_hit"] for r in rows] == [False, True, True, False, False]
    paid, hit = rows[0], rows[1]
    assert paid["cost_usd"] > 0 and paid["cost_saved_usd"] is None
    assert hit["cost_usd"] == 0 and hit["cost_saved_usd"] == paid["cost_usd"]


def test_cached_answers_stay_in_their_project(gateway: Gateway, upstream: FakeProvider) -> None:
    """The same provider key and body from two projects: the second project's call goes upstream."""
    client = gateway.openai()
    seen = []
    for project in ("cache-alpha", "cache-beta", "cache-alpha", "cache-beta"):
        headers = CACHE | {"X-LLMLens-Project": project}
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, extra_headers=headers)  # type: ignore[arg-type]
        seen.append((project, raw.headers["x-llmlens-cache"]))
    assert seen == [("cache-alpha", "MISS"), ("cache-beta", "MISS"), ("cache-alpha", "HIT"), ("cache-beta", "HIT")]
    assert len(upstream.requests) == 2


def test_streamed_cache_hit_is_streamed_again(gateway: Gateway, upstream: FakeProvider) -> None:
    kwargs = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}}
    headers = CACHE | {"X-LLMLens-Session-Id": "sess-cache-stream"}
    bodies = []
    for _ in range(2):
        with gateway.openai().chat.completions.with_streaming_response.create(**kwargs, extra_headers=headers) as r:  # type: ignore[call-overload]
            assert r.headers["content-type"].startswith("text/event-stream")
            bodies.append(b"".join(r.iter_bytes()))
    same_bytes(bodies[0], bodies[1])
    assert len(upstream.requests) == 1
    rows = gateway.wait_rows(
        "SELECT cache_hit, streamed, cost_usd, cost_saved_usd, completion_tokens FROM llm_logs "
        "WHERE session_id = 'sess-cache-stream' ORDER BY timestamp",
        2,
    )
    assert [(r["cache_hit"], r["streamed"]) for r in rows] == [(False, True), (True, True)]
    assert rows[1]["cost_usd"] == 0 and rows[1]["cost_saved_usd"] > 0


def test_traceparent_makes_the_gateway_span_a_child_of_the_apps_span(gateway: Gateway, upstream: FakeProvider) -> None:
    tracer = TracerProvider().get_tracer("app")
    headers: dict[str, str] = {"X-LLMLens-Session-Id": "sess-trace"}
    with tracer.start_as_current_span("answer_question") as app_span:
        inject(headers)  # W3C traceparent of the app's own span
        gateway.openai().chat.completions.create(model="gpt-4o", messages=HELLO, extra_headers=headers)  # type: ignore[arg-type]
    context = app_span.get_span_context()
    trace_id, parent = f"{context.trace_id:032x}", f"{context.span_id:016x}"

    row = gateway.wait_rows("SELECT trace_id, span_id, parent_span_id FROM llm_logs WHERE session_id = 'sess-trace'")[0]
    assert (row["trace_id"], row["parent_span_id"]) == (trace_id, parent)
    # The upstream sees the gateway's span as the parent of whatever it traces.
    flags = f"{int(context.trace_flags):02x}"
    assert upstream.last_request.headers["traceparent"] == f"00-{trace_id}-{row['span_id']}-{flags}"

    gateway.openai().chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        extra_headers={"X-LLMLens-Trace-Id": "order-1234", "X-LLMLens-Session-Id": "sess-trace-id"},
    )  # type: ignore[arg-type]
    row = gateway.wait_rows("SELECT trace_id, parent_span_id FROM llm_logs WHERE session_id = 'sess-trace-id'")[0]
    assert len(row["trace_id"]) == 32 and row["parent_span_id"] is None
    same = gateway.openai()
    same.chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        extra_headers={"X-LLMLens-Trace-Id": "order-1234", "X-LLMLens-Session-Id": "sess-trace-id"},
    )  # type: ignore[arg-type]
    rows = gateway.wait_rows("SELECT DISTINCT trace_id FROM llm_logs WHERE session_id = 'sess-trace-id'")
    assert len(rows) == 1  # a caller's own id maps to one trace


def test_gateway_info(gateway: Gateway) -> None:
    info = httpx.get(gateway.srv.url + "/api/v1/gateway").json()
    assert info["upstreams"]["dead"].endswith("/v1")
    assert info["cache"]["hits"] >= 0 and info["config"]["timeout_s"] == 600.0
    assert isinstance(openai.__version__, str)
