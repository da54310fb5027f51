"""The traces explorer and the sessions list through /api/v1: every filter, sort and page of a real server
fed with known traces, against the answers computed here from the events sent."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.support.llmlens_server import LLMLensServer

PROJECT = "explorer-test"
NOW = time.time()
USERS = ("u-alice", "u-al", "u-bob", "u-carol")  # "u-al" is part of "u-alice": a known id matches exactly
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022", "local-llama")
FEATURES = ("chat", "code", "search")
TOPICS = ("passwords", "billing", "exports", "refunds", "latency")


@dataclass
class Trace:
    """What was sent for one trace, and what its list row must therefore show."""

    i: int
    trace_id: str
    start: float
    latency: float  # of the root span
    user: str
    session: str | None
    feature: str
    models: list[str] = field(default_factory=list)
    costs: list[float | None] = field(default_factory=list)
    tokens: int = 0
    failed: bool = False
    error_types: list[str] = field(default_factory=list)  # of failed spans, in time order
    tools: list[str] = field(default_factory=list)
    templates: list[tuple[str, str]] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # prompts and responses of its LLM calls
    first_message: str | None = None
    call_times: list[tuple[float, float]] = field(default_factory=list)  # (start, latency ms) of LLM calls

    @property
    def cost(self) -> float | None:
        priced = [c for c in self.costs if c is not None]
        return round(sum(priced), 9) if priced else None


def _llm(
    trace: Trace, root: str, n: int, offset: float, model: str, cost: float | None, **extra: Any
) -> dict[str, Any]:
    i = trace.i
    prompt_tokens, completion_tokens = 100 + 13 * i + n, 20 + (i % 7) * 5
    topic = TOPICS[i % 5]
    question = f"question {i} about {topic}" if n == 0 else f"follow-up {i}"
    response = f"answer {i}" + (" with a refund" if i % 7 == 0 and n == 0 else "")
    latency = 300.0 + 10 * i + n
    event = {
        "type": "llm",
        "trace_id": trace.trace_id,
        "span_id": f"{i:08x}{n + 1:08x}",
        "parent_span_id": root,
        "timestamp": trace.start + offset,
        "model": model,
        "provider": "vllm" if model == "local-llama" else ("anthropic" if model.startswith("claude") else "openai"),
        "prompt": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": question},
        ],
        "response": response,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_ms": latency,
        "template_id": "lookup" if trace.feature == "search" else "answer",
        "template_version": "v1" if i < 24 else "v2",
        "message_id": f"msg-{i}-{n}",
        "user_id": trace.user,
        "session_id": trace.session,
        "feature": trace.feature,
        **({"cost_usd": cost} if cost is not None else {}),
        **extra,
    }
    trace.models.append(model)
    trace.costs.append(cost)
    trace.tokens += prompt_tokens + completion_tokens
    trace.templates.append((event["template_id"], event["template_version"]))
    trace.texts += [f"system: You are a helpful assistant.\nuser: {question}", response]
    trace.first_message = trace.first_message or question
    trace.call_times.append((trace.start + offset, latency))
    if "error_type" in extra:
        trace.failed = True
        trace.error_types.append(extra["error_type"])
    return event


def build() -> tuple[list[dict[str, Any]], list[Trace]]:
    """48 traces over the last 40 hours in 16 sessions of 3, 6 more ten days ago, and one without LLM calls."""
    events: list[dict[str, Any]] = []
    traces: list[Trace] = []
    for i in range(55):
        if i < 48:
            start = NOW - 40 * 3600 + i * 2900 + 0.25
        elif i < 54:
            start = NOW - 10 * 86400 + (i - 48) * 600 + 0.25
        else:
            start = NOW - 3 * 3600 + 0.25
        trace = Trace(
            i=i,
            trace_id=f"{i:04d}" + "ab" * 14,
            start=start,
            latency=1234.0 if i % 10 == 3 else 500.0 + (i * 37) % 2000,  # a few equal latencies: ties
            user=USERS[i % 4],
            session=f"s-{i // 3:02d}" if i < 54 else None,
            feature=FEATURES[i % 3] if i < 54 else "health",
        )
        root = f"{i:08x}000000a0"
        root_failed = i % 9 == 4
        events.append(
            {
                "type": "span",
                "kind": "request",
                "name": "POST /api/chat",
                "trace_id": trace.trace_id,
                "span_id": root,
                "timestamp": start,
                "latency_ms": trace.latency,
                "status": "error" if root_failed else "ok",
                "user_id": trace.user,
                "session_id": trace.session,
                "feature": trace.feature,
            }
        )
        trace.failed = root_failed
        if i == 54:  # a health check: no LLM call, so no cost and no tokens
            traces.append(trace)
            continue
        # Costs repeat every 13 traces (equal costs: ties); local-llama has no price.
        model = MODELS[i % 5]
        cost = None if model == "local-llama" else round(0.001 * ((i * 7) % 13 + 1), 6)
        extra: dict[str, Any] = {}
        if i % 9 == 4:
            extra = {"status": "error", "error_type": "rate_limit", "error": "429 Too Many Requests"}
        elif i % 11 == 6:
            extra = {"status": "error", "error_type": "timeout", "error": "timed out"}
        events.append(_llm(trace, root, 0, 0.01, model, cost, **extra))
        if i % 3 == 2 or i % 6 == 1:
            tool = "search_web" if i % 3 == 2 else "calculator"
            ok = i % 6 != 5
            events.append(
                {
                    "type": "tool",
                    "trace_id": trace.trace_id,
                    "span_id": f"{i:08x}000000ff",
                    "parent_span_id": root,
                    "timestamp": start + 0.5,
                    "tool_name": tool,
                    "args": {"q": i},
                    "result": {"n": i} if ok else None,
                    "success": ok,
                    "error": None if ok else "no results",
                    "latency_ms": 40.0,
                    "user_id": trace.user,
                    "session_id": trace.session,
                    "feature": trace.feature,
                }
            )
            trace.tools.append(tool)
            trace.failed = trace.failed or not ok
        if i % 4 == 0:  # a second call, on another model
            second = MODELS[(i + 2) % 5]
            events.append(_llm(trace, root, 1, 0.8, second, None if second == "local-llama" else 0.002))
        for n, kind in ((0, {1: "thumbs_down", 2: "thumbs_up"}.get(i % 4)), (0, "retry" if i % 8 == 3 else None)):
            if kind:
                events.append(
                    {
                        "type": "feedback",
                        "message_id": f"msg-{i}-{n}",
                        "feedback_type": kind,
                        "user_id": trace.user,
                        "session_id": trace.session,
                        "timestamp": start + 30,
                    }
                )
                trace.feedback.append(kind)
        traces.append(trace)
    return events, traces


EVENTS, TRACES = build()
RECENT = [t for t in TRACES if t.start > NOW - 7 * 86400]  # the 7-day window


def _other_project() -> list[dict[str, Any]]:
    """Another project's traffic that reuses this one's user, session and message ids: none of it may show."""
    root = {"type": "span", "kind": "request", "name": "POST /other", "span_id": "0f0f0f0f0f0f0f0f"}
    return [
        {**root, "trace_id": "ff" * 16, "timestamp": NOW - 3600, "latency_ms": 99999.0, "user_id": "u-alice"},
        {
            "type": "llm",
            "trace_id": "ff" * 16,
            "span_id": "0e0e0e0e0e0e0e0e",
            "parent_span_id": root["span_id"],
            "timestamp": NOW - 3600,
            "model": "claude-other-project",
            "prompt": "question about passwords",
            "response": "x",
            "cost_usd": 99.0,
            "message_id": "msg-1-0",
            "user_id": "u-alice",
            "session_id": "s-05",
            "feature": "code",
        },
        *[
            {"type": "feedback", "message_id": f"msg-{i}-0", "feedback_type": "thumbs_down", "timestamp": NOW}
            for i in range(48)
        ],
    ]


@pytest.fixture(scope="module")
def srv(server: LLMLensServer) -> Iterator[LLMLensServer]:
    assert server.ingest(_other_project(), headers={"X-LLMLens-Project": "explorer-other"})["rejected"] == []
    result = server.ingest(EVENTS, headers={"X-LLMLens-Project": PROJECT})
    assert result["rejected"] == []
    yield server


def get(srv: LLMLensServer, path: str, **params: Any) -> Any:
    with srv.client() as c:
        r = c.get(path, params={"project": PROJECT, "range": "7d", **params})
    assert r.status_code == 200, r.text
    return r.json()


def listed(srv: LLMLensServer, **params: Any) -> dict[str, Any]:
    return get(srv, "/api/v1/traces", limit=500, **params)  # type: ignore[no-any-return]


FILTERS: dict[str, tuple[dict[str, Any], Callable[[Trace], bool]]] = {
    "none": ({}, lambda t: True),
    "model substring": ({"model": "claude"}, lambda t: any("claude" in m for m in t.models)),
    "model in any case": ({"model": "CLAUDE-3-5-H"}, lambda t: "claude-3-5-haiku-20241022" in t.models),
    "model exact": ({"model": "gpt-4o"}, lambda t: "gpt-4o" in t.models),
    "user substring": ({"user_id": "alic"}, lambda t: t.user == "u-alice"),
    "user exact": ({"user_id": "u-al"}, lambda t: t.user == "u-al"),
    "session": ({"session_id": "s-05"}, lambda t: t.session == "s-05"),
    "feature": ({"feature": "code"}, lambda t: t.feature == "code"),
    "template": ({"template_id": "lookup"}, lambda t: any(tid == "lookup" for tid, _ in t.templates)),
    "template version": (
        {"template_id": "answer", "template_version": "v2"},
        lambda t: ("answer", "v2") in t.templates,
    ),
    "tool": ({"tool": "calculator"}, lambda t: "calculator" in t.tools),
    "error type": ({"error_type": "timeout"}, lambda t: "timeout" in t.error_types),
    "status error": ({"status": "error"}, lambda t: t.failed),
    "status ok": ({"status": "ok"}, lambda t: not t.failed),
    "thumbs down": ({"feedback": "thumbs_down"}, lambda t: "thumbs_down" in t.feedback),
    "thumbs up": ({"feedback": "thumbs_up"}, lambda t: "thumbs_up" in t.feedback),
    "another feedback type": ({"feedback": "retry"}, lambda t: "retry" in t.feedback),
    "any feedback": ({"feedback": "any"}, lambda t: bool(t.feedback)),
    "no feedback": ({"feedback": "none"}, lambda t: not t.feedback),
    "min cost": ({"min_cost": "0.008"}, lambda t: t.cost is not None and t.cost >= 0.008),
    "min latency": ({"min_latency_ms": "1500"}, lambda t: t.latency >= 1500),
    "text in prompt": ({"q": "PASSWORDS"}, lambda t: any("passwords" in x for x in t.texts)),
    "text in response": ({"q": "refund"}, lambda t: any("refund" in x for x in t.texts)),
    "two filters": (
        {"model": "claude", "status": "ok", "feature": "chat"},
        lambda t: any("claude" in m for m in t.models) and not t.failed and t.feature == "chat",
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_each_filter_lists_and_counts_the_matching_traces(srv: LLMLensServer, name: str) -> None:
    params, wanted = FILTERS[name]
    expected = [t for t in sorted(RECENT, key=lambda t: -t.start) if wanted(t)]
    assert expected, f"the data has no trace for {name}: the test would prove nothing"
    doc = listed(srv, **params)
    assert [r["trace_id"] for r in doc["traces"]] == [t.trace_id for t in expected]
    assert doc["total"] == len(expected) and doc["total_capped"] is False
    for key, value in params.items():
        assert doc["filters"][key] == value  # the state of the filters is in the answer, as in the URL


def test_each_row_shows_its_traces_data(srv: LLMLensServer) -> None:
    rows = {r["trace_id"]: r for r in listed(srv)["traces"]}
    assert len(rows) == len(RECENT)
    for t in RECENT:
        row = rows[t.trace_id]
        assert row["models"] == list(dict.fromkeys(t.models))
        assert row["llm_calls"] == len(t.models)
        assert row["total_tokens"] == t.tokens
        assert row["cost_usd"] == (None if t.cost is None else pytest.approx(t.cost))
        assert row["latency_ms"] == pytest.approx(t.latency)
        assert row["status"] == ("error" if t.failed else "ok")
        assert row["error_type"] == (t.error_types[0] if t.error_types else None)
        assert (row["user_id"], row["session_id"], row["feature"]) == (t.user, t.session, t.feature)
        assert row["name"] == "POST /api/chat"
        assert row["first_message"] == t.first_message
        assert row["title"] == "POST /api/chat" + (f" · {t.first_message}" if t.first_message else "")


def _ordered(traces: list[Trace], sort: str) -> list[str]:
    """The list's order: by value (no cost or latency last, either way), then by trace id in the same direction."""
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    value: dict[str, Callable[[Trace], float | None]] = {
        "time": lambda t: t.start,
        "latency": lambda t: t.latency,
        "cost": lambda t: t.cost,
        "tokens": lambda t: float(t.tokens),
    }
    by_id = sorted(traces, key=lambda t: t.trace_id, reverse=descending)

    def rank(t: Trace) -> tuple[bool, float]:
        v = value[key](t)
        return (v is None, 0.0 if v is None else (-v if descending else v))

    return [t.trace_id for t in sorted(by_id, key=rank)]


SORTS = ("-time", "time", "-latency", "latency", "-cost", "cost", "-tokens", "tokens")


@pytest.mark.parametrize("sort", SORTS)
def test_each_sort_orders_by_the_data(srv: LLMLensServer, sort: str) -> None:
    doc = listed(srv, sort=sort)
    assert doc["sort"] == sort
    assert [r["trace_id"] for r in doc["traces"]] == _ordered(RECENT, sort)
    if sort == "-cost":
        top = max((t for t in RECENT if t.cost is not None), key=lambda t: t.cost or 0.0)
        assert doc["traces"][0]["cost_usd"] == pytest.approx(top.cost)


def _pages(srv: LLMLensServer, cursor_key: str, start: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    """Pages from `start`, following `cursor_key` (next_cursor or prev_cursor) until there is none."""
    pages = [start]
    while pages[-1][cursor_key]:
        pages.append(get(srv, "/api/v1/traces", cursor=pages[-1][cursor_key], **params))
        assert len(pages) < 100, "paging does not end"
    return pages


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("filters", [{}, {"model": "claude"}])
def test_paging_forward_and_back_covers_every_trace_once(
    srv: LLMLensServer, sort: str, filters: dict[str, Any]
) -> None:
    params = {"sort": sort, "limit": 7, **filters}
    wanted = _ordered([t for t in RECENT if FILTERS["model substring"][1](t)] if filters else RECENT, sort)
    first = get(srv, "/api/v1/traces", **params)
    assert first["prev_cursor"] is None and first["total"] == len(wanted)
    forward = _pages(srv, "next_cursor", first, **params)
    seen = [r["trace_id"] for page in forward for r in page["traces"]]
    assert seen == wanted  # every trace once, in order
    assert all(len(page["traces"]) == 7 for page in forward[:-1])
    assert all(page["total"] == len(wanted) for page in forward)
    backward = _pages(srv, "prev_cursor", forward[-1], **params)
    assert [[r["trace_id"] for r in p["traces"]] for p in reversed(backward)] == [
        [r["trace_id"] for r in p["traces"]] for p in forward
    ]
    assert backward[-1]["prev_cursor"] is None


def test_the_cursors_of_earlier_versions_still_page(srv: LLMLensServer) -> None:
    import base64

    first = get(srv, "/api/v1/traces", limit=5)
    last = first["traces"][-1]
    old = base64.urlsafe_b64encode(f"{last['timestamp']}|{last['trace_id']}".encode()).decode().rstrip("=")
    assert (
        get(srv, "/api/v1/traces", limit=5, cursor=old)["traces"]
        == get(srv, "/api/v1/traces", limit=5, cursor=first["next_cursor"])["traces"]
    )


def test_model_and_user_suggestions_are_the_known_values(srv: LLMLensServer) -> None:
    doc = listed(srv)
    assert doc["suggestions"]["model"] == sorted({m for t in RECENT for m in t.models})
    # Users of LLM calls: the health check's user called no model.
    assert doc["suggestions"]["user_id"] == sorted({t.user for t in RECENT if t.models})


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "-price"}, "sort"),
        ({"status": "maybe"}, "status"),
        ({"feedback": "thumbs down!"}, "feedback"),
        ({"min_cost": "-1"}, "min_cost"),
        ({"min_cost": "cheap"}, "min_cost"),
        ({"min_latency_ms": "nan"}, "min_latency_ms"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
    ],
)
def test_bad_parameters_answer_400_naming_the_parameter(srv: LLMLensServer, params: dict[str, str], field: str) -> None:
    with srv.client() as c:
        r = c.get("/api/v1/traces", params={"project": PROJECT, **params})
        assert r.status_code == 400 and field in r.json()["error"], r.text
        page = c.get("/traces", params={"project": PROJECT, **params})
        assert page.status_code == 400 and field in page.text


def test_a_cursor_of_another_sort_is_refused(srv: LLMLensServer) -> None:
    cursor = get(srv, "/api/v1/traces", limit=5, sort="-cost")["next_cursor"]
    with srv.client() as c:
        r = c.get("/api/v1/traces", params={"project": PROJECT, "range": "7d", "sort": "-latency", "cursor": cursor})
    assert r.status_code == 400 and "sort" in r.json()["error"]


def test_the_html_page_shows_the_total_and_the_sorted_rows(srv: LLMLensServer) -> None:
    with srv.client() as c:
        html = c.get("/traces", params={"project": PROJECT, "range": "7d", "sort": "-cost", "model": "claude"}).text
    expected = [t for t in RECENT if FILTERS["model substring"][1](t)]
    assert f"{len(expected)} traces" in html
    order = _ordered(expected, "-cost")
    positions = [html.index(f'data-trace-id="{trace_id}"') for trace_id in order]
    assert positions == sorted(positions)
    assert 'value="claude"' in html and 'placeholder="any model"' in html


# -- sessions ---------------------------------------------------------------------------------------------


def _sessions(traces: list[Trace]) -> list[dict[str, Any]]:
    """Sessions with LLM calls, most recently active first, as the list must show them."""
    by: dict[str, list[Trace]] = {}
    for t in traces:
        if t.session and t.models:
            by.setdefault(t.session, []).append(t)
    out = []
    for sid, ts in by.items():
        calls = sorted(c for t in ts for c in t.call_times)
        out.append(
            {
                "session_id": sid,
                "last_seen": max(c[0] for c in calls),
                "turns": len(ts),
                "llm_calls": len(calls),
                "duration_ms": (max(s + lat / 1000 for s, lat in calls) - calls[0][0]) * 1000,
                "feedback": {k: sum(t.feedback.count(k) for t in ts) for t in ts for k in t.feedback},
                "first_message": min(ts, key=lambda t: t.start).first_message,
                "cost_usd": sum(c for t in ts for c in t.costs if c is not None),
            }
        )
    return sorted(sorted(out, key=lambda s: s["session_id"]), key=lambda s: -s["last_seen"])


@pytest.mark.parametrize("range_", ["7d", "30d"])
def test_sessions_total_paging_and_columns(srv: LLMLensServer, range_: str) -> None:
    wanted = _sessions(RECENT if range_ == "7d" else TRACES)
    first = get(srv, "/api/v1/sessions", range=range_, limit=5)
    assert first["total"] == len(wanted) and first["total_capped"] is False and first["prev_cursor"] is None
    pages = [first]
    while pages[-1]["next_cursor"]:
        pages.append(get(srv, "/api/v1/sessions", range=range_, limit=5, cursor=pages[-1]["next_cursor"]))
    rows = [s for p in pages for s in p["sessions"]]
    assert [s["session_id"] for s in rows] == [s["session_id"] for s in wanted]
    for row, want in zip(rows, wanted, strict=True):
        assert row["turns"] == want["turns"] and row["llm_calls"] == want["llm_calls"]
        assert row["duration_ms"] == pytest.approx(want["duration_ms"], abs=1.0)
        assert row["feedback"] == want["feedback"]
        assert row["first_message"] == want["first_message"]
        assert row["cost_usd"] == pytest.approx(want["cost_usd"])
    back = [pages[-1]]
    while back[-1]["prev_cursor"]:
        back.append(get(srv, "/api/v1/sessions", range=range_, limit=5, cursor=back[-1]["prev_cursor"]))
    assert [s["session_id"] for p in reversed(back) for s in p["sessions"]] == [s["session_id"] for s in wanted]


def test_seven_and_thirty_days_list_different_sessions(srv: LLMLensServer) -> None:
    week = get(srv, "/api/v1/sessions", range="7d", limit=500)
    month = get(srv, "/api/v1/sessions", range="30d", limit=500)
    older = {s["session_id"] for s in month["sessions"]} - {s["session_id"] for s in week["sessions"]}
    assert older == {t.session for t in TRACES if t.session and t.start < NOW - 7 * 86400}
    assert month["total"] == week["total"] + len(older)


# -- one trace ----------------------------------------------------------------------------------------------


def test_the_trace_header_and_waterfall_axis(srv: LLMLensServer) -> None:
    t = next(x for x in RECENT if x.error_types and len(x.models) == 2)
    doc = get(srv, f"/api/v1/traces/{t.trace_id}")["trace"]
    assert doc["status"] == "error" and doc["error_types"] == t.error_types
    assert doc["feature"] == t.feature and doc["models"] == list(dict.fromkeys(t.models))
    ticks = doc["axis"]
    assert ticks[0] == {"offset_ms": 0.0, "offset_pct": 0.0}
    steps = {round(b["offset_ms"] - a["offset_ms"], 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1  # evenly spaced ...
    step = steps.pop()
    assert round(step / 10 ** math.floor(math.log10(step)), 9) in (1, 2, 5)  # ... at a round step
    assert ticks[-1]["offset_ms"] <= doc["duration_ms"] < ticks[-1]["offset_ms"] + step
    for tick in ticks:
        assert tick["offset_pct"] == pytest.approx(100 * tick["offset_ms"] / doc["duration_ms"], abs=0.01)
    labels = [w["label"] for w in doc["spans"]]
    assert labels[0] == "POST /api/chat" and set(t.models) <= set(labels)


# -- more traces than the count goes to -----------------------------------------------------------------------


def test_past_ten_thousand_the_count_says_so_and_sorts_cover_the_newest(fresh_server: LLMLensServer) -> None:
    n = 10_050
    roots = [
        {
            "type": "span",
            "kind": "request",
            "name": "GET /health",
            "trace_id": f"{i + 1:032x}",
            "span_id": f"{i + 1:016x}",
            "timestamp": NOW - 20 * 3600 + i * 6.0 + 0.5,
            "latency_ms": float((i * 7919) % 5000),  # many equal latencies: ties go by trace id
        }
        for i in range(n)
    ]
    for start in range(0, n, 5000):
        assert fresh_server.ingest(roots[start : start + 5000])["rejected"] == []
    with fresh_server.client() as c:
        doc = c.get("/api/v1/traces", params={"range": "24h", "sort": "-latency", "limit": 200}).json()
        html = c.get("/traces", params={"range": "24h", "sort": "-latency"}).text
    assert doc["total"] == 10_000 and doc["total_capped"] is True
    assert "10,000+ traces" in html and 'id="sorted-since"' in html
    # The sort covers the traces from the 10,001st newest on, and says from when.
    newest = sorted(roots, key=lambda r: -r["timestamp"])[:10_001]
    since = newest[-1]["timestamp"]
    assert doc["sorted_since"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since)))
    covered = [r for r in roots if r["timestamp"] >= since]
    by_id = sorted(covered, key=lambda r: r["trace_id"], reverse=True)
    wanted = [r["trace_id"] for r in sorted(by_id, key=lambda r: -r["latency_ms"])]
    pages = [doc]
    while pages[-1]["next_cursor"] and len(pages) < 60:
        with fresh_server.client() as c:
            pages.append(
                c.get(
                    "/api/v1/traces",
                    params={"range": "24h", "sort": "-latency", "limit": 200, "cursor": pages[-1]["next_cursor"]},
                ).json()
            )
    assert [r["trace_id"] for p in pages for r in p["traces"]] == wanted
