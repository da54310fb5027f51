"""Trace assembly is confined to a project: with auth on, project alpha's spans and log records never take
context or content from project beta's traces, never change beta's stored spans, and never consume beta's
buffered log content, even when alpha reuses beta's trace and span ids. The same holds for the trace fields of
the native ingest API. Each test also checks that the legitimate same-project behaviour still works."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from tests.security._support import bearer, create_key
from tests.support.llmlens_server import LLMLensServer

PROTOBUF = {"Content-Type": "application/x-protobuf"}
CONTEXT = ("user_id", "session_id", "feature")
CONTENT = ("prompt", "response", "input_messages", "output_messages")
BETA_CONTEXT = {"user.id": "beta-user", "session.id": "beta-session", "llmlens.feature": "beta-feature"}
INJECTED = {"user.id": "INJECTED", "session.id": "INJECTED", "llmlens.feature": "INJECTED"}


@dataclass
class Tenants:
    srv: LLMLensServer
    keys: dict[tuple[str, str], str]

    def client(self, project: str) -> httpx.Client:
        return httpx.Client(base_url=self.srv.url, headers=bearer(self.keys[(project, "ingest")]), timeout=30)

    def spans(self, project: str, trace: str) -> dict[str, dict[str, Any]]:
        """The project's stored spans of `trace`, read with its own read key, by span id."""
        rows = self.srv.sql(
            f"SELECT * EXCLUDE (timestamp) FROM spans WHERE trace_id = '{trace}'",
            headers=bearer(self.keys[(project, "read")]),
        )
        return {row["span_id"]: row for row in rows}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    data: Path = tmp_path_factory.mktemp("trace-isolation")
    keys = {(p, r): create_key(data, p, r) for p in ("alpha", "beta") for r in ("ingest", "read")}
    with LLMLensServer(data, args=["--auth", "on"]) as srv:
        yield Tenants(srv, keys)


def _new_trace() -> str:
    return uuid.uuid4().hex


def _new_span_id() -> str:
    return uuid.uuid4().hex[:16]


def _attr(key: str, value: str | int) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def _span(trace: str, span_id: str, parent: str | None = None, *, llm: bool = False, **attrs: str) -> OtlpSpan:
    """An OTLP span; `llm`: an OpenInference LLM call without message content (that comes from logs)."""
    values: dict[str, str | int] = dict(attrs)
    if llm:
        values.update(
            {
                "openinference.span.kind": "LLM",
                "llm.provider": "openai",
                "llm.model_name": "gpt-4o-mini",
                "llm.token_count.prompt": 40,
                "llm.token_count.completion": 5,
            }
        )
    start = time.time_ns()
    return OtlpSpan(
        trace_id=bytes.fromhex(trace),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent) if parent else b"",
        name="chat" if llm else "request",
        start_time_unix_nano=start,
        end_time_unix_nano=start + 500_000_000,
        attributes=[_attr(k, v) for k, v in values.items()],
    )


def _send_spans(client: httpx.Client, *spans: OtlpSpan, claimed_project: str | None = None) -> None:
    """POST /v1/traces as protobuf; `claimed_project`: the resource names a project (the key decides)."""
    resource = Resource(attributes=[_attr("service.name", "isolation-test")])
    if claimed_project is not None:
        resource.attributes.append(_attr("llmlens.project", claimed_project))
    body = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=list(spans))])]
    ).SerializeToString()
    answer = client.post("/v1/traces", content=body, headers=PROTOBUF)
    assert answer.status_code == 200, answer.text


def _send_user_message(client: httpx.Client, trace: str, span_id: str, text: str) -> None:
    """POST /v1/logs as OTLP/JSON: one `gen_ai.user.message` record, as the OTel GenAI instrumentations send."""
    record = {
        "timeUnixNano": str(time.time_ns()),
        "eventName": "gen_ai.user.message",
        "traceId": trace,
        "spanId": span_id,
        "body": {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": text}}]}},
    }
    body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}
    answer = client.post("/v1/logs", json=body)
    assert answer.status_code == 200, answer.text


def _context(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in CONTEXT)


def _content(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in CONTENT)


def test_span_under_another_projects_root_inherits_nothing(tenants: Tenants) -> None:
    trace, root, intruder, sibling = _new_trace(), _new_span_id(), _new_span_id(), _new_span_id()
    with tenants.client("beta") as beta, tenants.client("alpha") as alpha:
        _send_spans(beta, _span(trace, root, **BETA_CONTEXT))
        _send_spans(alpha, _span(trace, intruder, root, llm=True))
        _send_spans(beta, _span(trace, sibling, root, llm=True))
    alpha_rows = tenants.spans("alpha", trace)
    assert set(alpha_rows) == {intruder}
    assert _context(alpha_rows[intruder]) == (None, None, None)
    # Within beta, a child arriving after its root still takes the root's context.
    assert _context(tenants.spans("beta", trace)[sibling]) == ("beta-user", "beta-session", "beta-feature")


def test_reused_root_span_id_does_not_rewrite_another_projects_spans(tenants: Tenants) -> None:
    trace, root, child, alpha_child = _new_trace(), _new_span_id(), _new_span_id(), _new_span_id()
    with tenants.client("beta") as beta, tenants.client("alpha") as alpha:
        # The child first, its root later: the stored child is updated (a late root, within beta).
        _send_spans(beta, _span(trace, child, root, llm=True))
        _send_spans(beta, _span(trace, root, **BETA_CONTEXT))
        before = tenants.spans("beta", trace)
        assert _context(before[child]) == ("beta-user", "beta-session", "beta-feature")
        # Alpha sends beta's root span id on beta's trace, and claims beta in its resource too.
        _send_spans(alpha, _span(trace, root, **INJECTED), claimed_project="beta")
        _send_spans(alpha, _span(trace, alpha_child, root, llm=True))
    assert tenants.spans("beta", trace) == before
    alpha_rows = tenants.spans("alpha", trace)
    assert set(alpha_rows) == {root, alpha_child}
    # Within alpha, its own root's context reaches its own child.
    assert _context(alpha_rows[alpha_child]) == ("INJECTED", "INJECTED", "INJECTED")


def test_log_record_cannot_fill_another_projects_span(tenants: Tenants) -> None:
    trace, span_id = _new_trace(), _new_span_id()
    with tenants.client("beta") as beta, tenants.client("alpha") as alpha:
        _send_spans(beta, _span(trace, span_id, llm=True))
        _send_user_message(alpha, trace, span_id, "INJECTED question")
        assert _content(tenants.spans("beta", trace)[span_id]) == (None, None, None, None)
        # Beta's own record for its stored span fills it.
        _send_user_message(beta, trace, span_id, "beta question")
    row = tenants.spans("beta", trace)[span_id]
    assert "beta question" in row["prompt"] and "INJECTED" not in row["prompt"]
    assert "INJECTED" not in str(row["input_messages"])
    assert tenants.spans("alpha", trace) == {}


def test_buffered_log_content_reaches_only_its_own_projects_span(tenants: Tenants) -> None:
    trace, span_id = _new_trace(), _new_span_id()
    with tenants.client("beta") as beta, tenants.client("alpha") as alpha:
        # Beta's content arrives before its span and waits for it.
        _send_user_message(beta, trace, span_id, "beta secret question")
        _send_spans(alpha, _span(trace, span_id, llm=True))
        assert _content(tenants.spans("alpha", trace)[span_id]) == (None, None, None, None)
        _send_spans(beta, _span(trace, span_id, llm=True))
    assert "beta secret question" in tenants.spans("beta", trace)[span_id]["prompt"]
    assert "beta secret" not in str(tenants.spans("alpha", trace))


def _native(trace: str, span_id: str, parent: str | None = None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "llm",
        "trace_id": trace,
        "span_id": span_id,
        "timestamp": time.time() - 1,
        "model": "gpt-4o-mini",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "latency_ms": 100.0,
    }
    if parent is not None:
        event["parent_span_id"] = parent
    event.update(fields)
    return event


def _ingest(client: httpx.Client, *events: dict[str, Any]) -> None:
    answer = client.post("/api/v1/ingest", json=list(events))
    assert answer.status_code == 200 and answer.json()["accepted"] == len(events), answer.text


def test_native_events_with_another_projects_ids_stay_in_their_project(tenants: Tenants) -> None:
    trace, root, child, otlp_root, alpha_first = (_new_trace(), *(_new_span_id() for _ in range(4)))
    beta_values = {"user_id": "beta-user", "session_id": "beta-session", "feature": "beta-feature"}
    with tenants.client("beta") as beta, tenants.client("alpha") as alpha:
        _ingest(beta, _native(trace, root, prompt="beta prompt", **beta_values))
        _send_spans(beta, _span(trace, otlp_root, **BETA_CONTEXT))
        before = tenants.spans("beta", trace)
        # Alpha reuses beta's ids (claiming beta too), hangs spans under beta's native and OTLP roots,
        # and sends a span id first that beta sends after it.
        _ingest(
            alpha,
            _native(trace, root, prompt="INJECTED", user_id="INJECTED", project="beta"),
            _native(trace, child, root),
            _native(trace, _new_span_id(), otlp_root),
            _native(trace, alpha_first),
        )
        _send_spans(alpha, _span(trace, _new_span_id(), root, llm=True))
        _ingest(beta, _native(trace, alpha_first, prompt="beta's own span"))
    beta_rows = tenants.spans("beta", trace)
    assert beta_rows[alpha_first]["prompt"] == "beta's own span"  # not taken for a retry of alpha's span
    del beta_rows[alpha_first]
    assert beta_rows == before
    alpha_rows = tenants.spans("alpha", trace)
    assert len(alpha_rows) == 5
    assert alpha_rows[root]["prompt"] == "INJECTED"
    for span_id, row in alpha_rows.items():
        if span_id != root:
            assert _context(row) == (None, None, None), span_id


def test_without_auth_log_content_joins_the_spans_of_the_project_it_names(tmp_path: Path) -> None:
    trace, span_id = _new_trace(), _new_span_id()
    with LLMLensServer(tmp_path) as srv, srv.client() as client:
        _send_spans(client, _span(trace, span_id, llm=True), claimed_project="shop")
        # Same ids, another project named by the resource: not shop's content.
        other = {
            "resourceLogs": [
                {
                    "resource": {"attributes": [{"key": "llmlens.project", "value": {"stringValue": "other"}}]},
                    "scopeLogs": [
                        {
                            "logRecords": [
                                {
                                    "eventName": "gen_ai.user.message",
                                    "traceId": trace,
                                    "spanId": span_id,
                                    "body": {
                                        "kvlistValue": {"values": [{"key": "content", "value": {"stringValue": "x"}}]}
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        }
        assert client.post("/v1/logs", json=other).status_code == 200
        shop = {"X-LLMLens-Project": "shop"}
        assert srv.sql(f"SELECT prompt FROM spans WHERE trace_id = '{trace}'", headers=shop) == [{"prompt": None}]
        client.headers.update(shop)
        _send_user_message(client, trace, span_id, "shop question")
        rows = srv.sql(f"SELECT prompt FROM spans WHERE trace_id = '{trace}'", headers=shop)
    assert rows == [{"prompt": "user: shop question"}]
