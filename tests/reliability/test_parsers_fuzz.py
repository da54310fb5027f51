"""Bad input, property-based: every parser (native JSON and NDJSON, the article's log lines, OTLP over
HTTP) rejects junk with a clear error, keeps the valid parts, and never crashes or answers 500."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.reliability._hostile_shapes import HUGE_NUMBERS, NEARLY_TOO_DEEP, TOO_DEEP
from tests.support.llmlens_server import LLMLensServer

from llmlens.codec.native import BodyError, EventError, decode_events, event_from_log_line, parse_body

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)
FIELDS = st.sampled_from(
    [
        "type",
        "model",
        "prompt",
        "response",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "timestamp",
        "tool_name",
        "args",
        "result",
        "feedback_type",
        "message_id",
        "documents",
        "query",
        "span_id",
        "trace_id",
        "kind",
        "metadata",
        "cost_usd",
        "status",
        "user_id",
        "project",
        "temperature",
        "streamed",
    ]
)
# Objects that look like events (known keys, any values): the decoder's field readers see junk of every type.
EVENTLIKE = st.dictionaries(FIELDS, JSON, max_size=10)
VALID = st.builds(
    lambda i, text, tokens: {
        "type": "llm",
        "model": "gpt-4o",
        "prompt": text,
        "response": text,
        "prompt_tokens": tokens,
        "completion_tokens": tokens,
        "span_id": f"{i + 1:016x}",
    },
    st.integers(0, 2**40),
    st.text(max_size=50),
    st.integers(0, 10**6),
)


def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["application/json", "application/x-ndjson", "", "text/plain"]))
@example(TOO_DEEP.encode(), "application/json")
@example(TOO_DEEP.encode(), "application/x-ndjson")
@example(NEARLY_TOO_DEEP.encode(), "application/json")
@example(HUGE_NUMBERS.encode(), "application/json")
@example(("\n".join([HUGE_NUMBERS[1:-1], TOO_DEEP])).encode(), "application/x-ndjson")
def test_parse_body_raises_only_body_error(body: bytes, content_type: str) -> None:
    try:
        events = parse_body(body, content_type)
    except BodyError:
        return
    assert isinstance(events, list)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(JSON, EVENTLIKE), max_size=8))
@example([{"type": "tool", "tool_name": "t", "args": _deep(900), "metadata": _deep(900)}, _deep(900)])
@example(
    [
        {"type": "llm", "model": "m", name: value}
        for name in ("latency_ms", "cost_usd", "temperature", "ttft_ms", "prompt_tokens", "timestamp")
        for value in (10**400, -(10**400), "9" * 5000, float("inf"), float("nan"))
    ]
)
@example([{"type": "retrieval", "query": "q", "documents": [{"score": 10**400}]}])
def test_decode_events_never_raises(raw: list[Any]) -> None:
    decoded = decode_events(raw, project="p")
    assert decoded.accepted + len(decoded.rejected) == len(raw)
    assert len(decoded.message_ids) == len(raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(VALID, min_size=1, max_size=5), st.lists(st.one_of(JSON, EVENTLIKE), max_size=5), st.randoms())
def test_valid_events_are_kept_beside_junk(valid: list[dict[str, Any]], junk: list[Any], rnd: Any) -> None:
    mixed = [("v", e) for e in valid] + [("j", e) for e in junk]
    rnd.shuffle(mixed)
    decoded = decode_events([e for _, e in mixed], project="p")
    kept = {s.span_id for s in decoded.spans}
    assert {e["span_id"] for e in valid} <= kept


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(VALID.map(json.dumps), st.text(max_size=60)), min_size=1, max_size=8))
def test_ndjson_keeps_valid_lines(lines: list[str]) -> None:
    body = "\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines).encode()
    try:
        raw = parse_body(body, "application/x-ndjson")
    except BodyError:
        return
    decoded = decode_events(raw, project="p")
    expected = {json.loads(line)["span_id"] for line in lines if line.startswith('{"type": "llm"')}
    assert expected <= {s.span_id for s in decoded.spans}


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), JSON.map(lambda v: "INFO:llm_observability:" + json.dumps(v))))
@example("INFO:llm_observability:" + "{" + '"a": {' * 100_000)
@example("INFO:llm_observability:" + HUGE_NUMBERS[1:-1])
@example("INFO:llm_observability:" + NEARLY_TOO_DEEP[1:].split(", {")[0])
def test_log_lines_raise_only_event_error(line: str) -> None:
    try:
        event = event_from_log_line(line)
    except EventError:
        return
    assert event is None or isinstance(event, dict)
    if event is not None:
        decode_events([event], project="p")  # never raises either


_HTTP = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
_TARGETS = [
    ("/api/v1/ingest", "application/json"),
    ("/api/v1/ingest", "application/x-ndjson"),
    ("/v1/traces", "application/x-protobuf"),
    ("/v1/traces", "application/json"),
    ("/v1/logs", "application/x-protobuf"),
    ("/v1/logs", "application/json"),
    ("/api/v1/sql", "application/json"),
]


@_HTTP
@given(
    st.sampled_from(_TARGETS),
    st.one_of(
        st.binary(max_size=400),
        JSON.map(lambda v: json.dumps(v).encode()),
        EVENTLIKE.map(lambda v: json.dumps([v]).encode()),
    ),
    st.booleans(),
)
@example(("/api/v1/ingest", "application/json"), TOO_DEEP.encode(), False)
@example(("/api/v1/ingest", "application/json"), NEARLY_TOO_DEEP.encode(), True)
@example(("/api/v1/ingest", "application/json"), HUGE_NUMBERS.encode(), False)
@example(("/api/v1/ingest", "application/x-ndjson"), TOO_DEEP.encode(), True)
@example(("/v1/traces", "application/json"), TOO_DEEP.encode(), False)
@example(("/v1/logs", "application/json"), TOO_DEEP.encode(), True)
@example(("/api/v1/sql", "application/json"), TOO_DEEP.encode(), False)
@example(("/api/v1/sql", "application/json"), HUGE_NUMBERS.encode(), False)
def test_the_server_never_answers_500(
    server: LLMLensServer, target: tuple[str, str], body: bytes, gzipped: bool
) -> None:
    path, content_type = target
    headers = {"content-type": content_type}
    if gzipped:
        body = gzip.compress(body)
        headers["content-encoding"] = "gzip"
    r = httpx.post(server.url + path, content=body, headers=headers, timeout=30)
    assert r.status_code < 500, (path, r.status_code, r.text[:300])


def test_the_server_is_still_healthy(server: LLMLensServer) -> None:
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"


def test_regressions_found_by_fuzzing(server: LLMLensServer) -> None:
    """A far-future timestamp and lone UTF-16 surrogates once failed the whole group commit (500)."""
    bad_time = {"type": "llm", "model": "gpt-4o", "prompt": "x", "timestamp": 7.038948686701768e66}
    surrogates = (
        '[{"type": "llm", "model": "gpt-4o", "span_id": "abc\\ud90d", "prompt": "a\\udc00b", '
        '"metadata": {"k\\ud800": "v\\udfff"}}]'
    )
    r = httpx.post(server.url + "/api/v1/ingest", json=[bad_time])
    assert r.status_code == 200 and r.json()["accepted"] == 0 and "1970-9999" in r.json()["rejected"][0]["error"]
    r = httpx.post(server.url + "/api/v1/ingest", content=surrogates, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    rows = server.sql("SELECT prompt FROM llm_logs WHERE prompt LIKE 'a%b' AND prompt LIKE '%\ufffd%'")
    assert rows and "\ufffd" in str(rows[0]["prompt"])
