"""The /api/v1 twins of the dashboard pages give the numbers computed independently here from a
small, known set of events sent to a real server."""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support.llmlens_server import LLMLensServer

NOW = time.time()
PROJECT = "analytics-test"
FEATURES = {"code_generation": ("gpt-4o", 0.10), "summarize": ("gpt-4o-mini", 0.01)}
USERS = {"u-free": "free", "u-pro": "pro"}
TOOLS = {"search_web": 0.4, "calculator": 1.0}


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def build() -> dict[str, Any]:
    """40 turns in the last 20 hours: request > llm (> tool); known costs, latencies, feedback."""
    rng = random.Random(42)
    events: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i in range(40):
        feature = "code_generation" if i % 4 == 0 else "summarize"
        model, cost = FEATURES[feature]
        user = "u-free" if i % 2 else "u-pro"
        start = NOW - 3600 * 20 + i * 1800 + 0.5
        trace_id, root, llm_span = _hex(rng, 32), _hex(rng, 16), _hex(rng, 16)
        latency = [400.0, 1500.0, 4000.0][i % 3] + i
        failed = i % 10 == 7
        version = "v1" if i < 20 else "v2"
        session = f"sess-{i // 4}"
        prompt_tokens = 100 + 10 * i
        ctx = {"trace_id": trace_id, "user_id": user, "session_id": session, "feature": feature}
        events.append(
            {
                "type": "span",
                "kind": "request",
                "name": "POST /chat",
                "span_id": root,
                "timestamp": start,
                "latency_ms": latency + 50,
                "http_status": 500 if failed else (404 if i == 3 else 200),
                "status": "error" if failed else "ok",
                **ctx,
            }
        )
        llm = {
            "type": "llm",
            "span_id": llm_span,
            "parent_span_id": root,
            "timestamp": start + 0.01,
            "model": model,
            "prompt": f"question {i} about {'passwords' if i % 5 == 0 else 'billing'}",
            "response": f"answer {i}",
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 50,
            "latency_ms": latency,
            "cost_usd": cost,
            "template_id": "answer",
            "template_version": version,
            "message_id": f"msg-{i}",
            "metadata": {"tier": USERS[user]},
            **ctx,
        }
        if failed:
            llm.update(status="error", error_type="rate_limit", error="429")
        events.append(llm)
        tool = None
        if i % 3 == 0:
            name = "search_web" if i % 2 == 0 else "calculator"
            ok = name == "calculator" or i % 4 == 0
            tool = {"name": name, "ok": ok, "latency": 100.0 + i}
            events.append(
                {
                    "type": "tool",
                    "span_id": _hex(rng, 16),
                    "parent_span_id": llm_span,
                    "timestamp": start + 0.02,
                    "tool_name": name,
                    "args": {"i": i},
                    "result": {"ok": True} if ok else None,
                    "success": ok,
                    "error": None if ok else "boom",
                    "latency_ms": tool["latency"],
                    **ctx,
                }
            )
        feedback = None
        if i % 2 == 0:
            feedback = "thumbs_up" if i % 6 == 0 else ("thumbs_down" if i % 6 == 2 else "retry")
            events.append(
                {
                    "type": "feedback",
                    "message_id": f"msg-{i}",
                    "feedback_type": feedback,
                    "user_id": user,
                    "session_id": session,
                    "timestamp": start + 5,
                }
            )
        turns.append(
            dict(
                i=i,
                feature=feature,
                model=model,
                cost=cost,
                user=user,
                latency=latency,
                failed=failed,
                version=version,
                session=session,
                trace_id=trace_id,
                prompt_tokens=prompt_tokens,
                tool=tool,
                feedback=feedback,
                start=start,
            )
        )
    return {"events": events, "turns": turns}


DATA = build()
TURNS: list[dict[str, Any]] = DATA["turns"]


@pytest.fixture(scope="module")
def srv(server: LLMLensServer) -> Iterator[LLMLensServer]:
    result = server.ingest(DATA["events"], headers={"X-LLMLens-Project": PROJECT})
    assert result["rejected"] == []
    yield server


def get(srv: LLMLensServer, path: str, **params: Any) -> Any:
    with srv.client() as c:
        r = c.get(path, params={"project": PROJECT, "range": "24h", **params})
    assert r.status_code == 200, r.text
    return r.json()


def percentile_cont(values: list[float], q: float) -> float:
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def test_overview(srv: LLMLensServer) -> None:
    doc = get(srv, "/api/v1/overview")
    t = doc["overview"]["totals"]
    assert t["llm_calls"] == 40 and t["requests"] == 40
    assert t["llm_errors"] == sum(x["failed"] for x in TURNS) == 4
    assert t["error_rate"] == pytest.approx(4 / 40)
    assert t["http_5xx"] == 4 and t["http_4xx"] == 1
    assert t["cost_usd"] == pytest.approx(sum(x["cost"] for x in TURNS))
    assert t["prompt_tokens"] == sum(x["prompt_tokens"] for x in TURNS)
    assert t["completion_tokens"] == 50 * 40
    latencies = [x["latency"] for x in TURNS]
    # Percentiles come from the rollups' quantile sketches: within 1 % of the exact value.
    assert t["latency_p50_ms"] == pytest.approx(percentile_cont(latencies, 0.5), rel=0.01, abs=0.1)
    assert t["latency_p95_ms"] == pytest.approx(percentile_cont(latencies, 0.95), rel=0.01, abs=0.1)
    assert t["requests_per_s"] == pytest.approx(40 / 86400, rel=0.01)
    assert doc["overview"]["errors_by_type"] == {"rate_limit": 4}
    cost_trend = doc["overview"]["trends"]["cost_usd"]
    assert sum(v for v in cost_trend["series"][0]["values"] if v) == pytest.approx(t["cost_usd"])


def _this_month(ts: float) -> bool:
    now = datetime.now(UTC)
    return datetime.fromtimestamp(ts, UTC) >= now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def test_cost(srv: LLMLensServer) -> None:
    cost = get(srv, "/api/v1/cost")["cost"]
    by_feature = {f["feature"]: f for f in cost["by_feature"]}
    for feature, (_, unit_cost) in FEATURES.items():
        calls = [x for x in TURNS if x["feature"] == feature]
        assert by_feature[feature]["calls"] == len(calls)
        assert by_feature[feature]["cost_usd"] == pytest.approx(unit_cost * len(calls))
        assert by_feature[feature]["cost_per_call_usd"] == pytest.approx(unit_cost)
    # The article's "code generation costs 10x summarization", at a glance.
    assert by_feature["code_generation"]["times_cheapest"] == pytest.approx(10.0)
    assert by_feature["summarize"]["times_cheapest"] == pytest.approx(1.0)
    users = {u["user_id"]: u for u in cost["top_users"]}
    for user, tier in USERS.items():
        mine = [x for x in TURNS if x["user"] == user]
        mtd = sum(x["cost"] for x in mine if _this_month(x["start"]))
        assert users[user]["tier"] == tier
        assert users[user]["cost_usd"] == pytest.approx(sum(x["cost"] for x in mine))
        assert users[user]["month_to_date_usd"] == pytest.approx(mtd)
        budget = {"free": 1.0, "pro": 50.0}[tier]
        assert users[user]["monthly_budget_usd"] == budget
        assert users[user]["budget_used"] == pytest.approx(mtd / budget)
    versions = {(v["template_id"], v["template_version"]): v for v in cost["by_template_version"]}
    assert versions[("answer", "v1")]["calls"] == 20
    assert cost["unpriced"] == []
    assert sum(
        s["values"][i] or 0
        for s in cost["by_model_over_time"]["series"]
        for i in range(len(cost["by_model_over_time"]["x"]))
    ) == pytest.approx(cost["total_usd"])


def test_latency(srv: LLMLensServer) -> None:
    latency = get(srv, "/api/v1/latency")["latency"]
    for row in latency["by_model"]:
        values = [x["latency"] for x in TURNS if x["model"] == row["model"]]
        assert row["calls"] == len(values)
        assert row["p50_ms"] == pytest.approx(percentile_cont(values, 0.5), rel=0.01, abs=0.1)
        assert row["p99_ms"] == pytest.approx(percentile_cont(values, 0.99), rel=0.01, abs=0.1)
    assert sum(b["calls"] for b in latency["histogram"]) == 40
    assert latency["slowest"][0]["latency_ms"] == max(x["latency"] for x in TURNS)
    only = get(srv, "/api/v1/latency", model="gpt-4o")["latency"]
    assert [m["model"] for m in only["by_model"]] == ["gpt-4o"]


def test_tools(srv: LLMLensServer) -> None:
    tools = get(srv, "/api/v1/tools")["tools"]
    expected: dict[str, list[bool]] = defaultdict(list)
    for x in TURNS:
        if x["tool"]:
            expected[x["tool"]["name"]].append(x["tool"]["ok"])
    rows = tools["tools"]
    assert [r["tool_name"] for r in rows] == sorted(expected, key=lambda n: sum(expected[n]) / len(expected[n]))
    for r in rows:
        assert r["calls"] == len(expected[r["tool_name"]])
        assert r["success_rate"] == pytest.approx(sum(expected[r["tool_name"]]) / len(expected[r["tool_name"]]))
    assert tools["failures"] and {f["tool_name"] for f in tools["failures"]} == {"search_web"}
    assert tools["failures"][0]["error"] == "boom"


def test_feedback(srv: LLMLensServer) -> None:
    fb = get(srv, "/api/v1/feedback")["feedback"]
    rated = [x for x in TURNS if x["feedback"]]
    assert fb["total"] == len(rated)
    assert fb["explicit"] == sum(x["feedback"] in ("thumbs_up", "thumbs_down") for x in rated)
    by_feature = {s["key"]: s for s in fb["by_feature"]}
    for feature in FEATURES:
        mine = [x for x in rated if x["feature"] == feature]
        ups = sum(x["feedback"] == "thumbs_up" for x in mine)
        assert by_feature[feature]["feedback"] == len(mine)
        assert by_feature[feature]["satisfaction"]["rate"] == pytest.approx(ups / len(mine))

    def speed(ms: float) -> str:
        return "fast" if ms < 1000 else ("medium" if ms < 3000 else "slow")

    by_speed = {s["key"]: s for s in fb["by_speed"]}
    for bucket in ("fast", "medium", "slow"):
        mine = [x for x in rated if speed(x["latency"]) == bucket]
        if mine:
            ups = sum(x["feedback"] == "thumbs_up" for x in mine)
            assert by_speed[bucket]["satisfaction"]["rate"] == pytest.approx(ups / len(mine))


def test_prompt_versions(srv: LLMLensServer) -> None:
    listing = get(srv, "/api/v1/prompts", min_tokens=400, min_cost=5)
    assert [t["template_id"] for t in listing["templates"]] == ["answer"]
    assert {o["prompt_tokens"] for o in listing["outliers"]} == {
        x["prompt_tokens"] for x in TURNS if x["prompt_tokens"] > 400
    }
    doc = get(srv, "/api/v1/prompts/answer")["comparison"]
    assert (doc["a"], doc["b"]) == ("v1", "v2")
    for v in doc["versions"]:
        mine = [x for x in TURNS if x["version"] == v["template_version"]]
        rated = [x for x in mine if x["feedback"]]
        assert v["calls"] == len(mine)
        assert v["errors"]["successes"] == sum(x["failed"] for x in mine)
        assert v["satisfaction"]["n"] == len(rated)
        assert v["satisfaction"]["successes"] == sum(x["feedback"] == "thumbs_up" for x in rated)
        assert v["satisfaction"]["ci_low"] <= v["satisfaction"]["rate"] <= v["satisfaction"]["ci_high"]
    # 10 rated calls per version: far too few to tell, and the page says so.
    assert doc["satisfaction_test"]["too_small"] is True
    assert "too small" in doc["satisfaction_test"]["verdict"]


def test_trace_list_filters_and_keyset_pages(srv: LLMLensServer) -> None:
    everything = get(srv, "/api/v1/traces", limit=500)["traces"]
    assert len(everything) == 40
    seen: list[str] = []
    cursor = None
    while True:
        doc = get(srv, "/api/v1/traces", limit=7, **({"cursor": cursor} if cursor else {}))
        seen += [t["trace_id"] for t in doc["traces"]]
        cursor = doc["next_cursor"]
        if not cursor:
            break
    assert seen == [t["trace_id"] for t in everything]
    assert seen == [x["trace_id"] for x in sorted(TURNS, key=lambda x: -x["start"])]

    def ids(**filters: Any) -> set[str]:
        return {t["trace_id"] for t in get(srv, "/api/v1/traces", limit=500, **filters)["traces"]}

    assert ids(model="gpt-4o") == {x["trace_id"] for x in TURNS if x["model"] == "gpt-4o"}
    assert ids(q="PASSWORD") == {x["trace_id"] for x in TURNS if x["i"] % 5 == 0}
    assert ids(status="error") == {x["trace_id"] for x in TURNS if x["failed"] or (x["tool"] and not x["tool"]["ok"])}
    assert ids(user_id="u-free", feature="summarize") == {
        x["trace_id"] for x in TURNS if x["user"] == "u-free" and x["feature"] == "summarize"
    }
    assert ids(min_latency_ms=3000) == {x["trace_id"] for x in TURNS if x["latency"] + 50 >= 3000}
    row = next(t for t in everything if t["trace_id"] == TURNS[0]["trace_id"])
    assert row["cost_usd"] == pytest.approx(0.10) and row["llm_calls"] == 1 and row["models"] == ["gpt-4o"]


def test_trace_and_session_detail(srv: LLMLensServer) -> None:
    turn = TURNS[0]  # request > llm > tool
    trace = get(srv, f"/api/v1/traces/{turn['trace_id']}")["trace"]
    assert [(w["span"]["kind"], w["depth"]) for w in trace["spans"]] == [("request", 0), ("llm", 1), ("tool", 2)]
    assert trace["cost_usd"] == pytest.approx(0.10)
    assert trace["session_id"] == "sess-0"
    assert [f["feedback_type"] for f in trace["feedback"]] == ["thumbs_up"]
    assert trace["spans"][2]["span"]["tool_args"] == {"i": 0}
    session = get(srv, "/api/v1/sessions/sess-0")["session"]
    mine = [x for x in TURNS if x["session"] == "sess-0"]
    assert [t["trace_id"] for t in session["turns"]] == [x["trace_id"] for x in mine]
    assert session["cost_usd"] == pytest.approx(sum(x["cost"] for x in mine))
    assert session["turns"][0]["user_text"] == "question 0 about passwords"
    listing = get(srv, "/api/v1/sessions")["sessions"]
    assert len(listing) == 10 and listing[0]["session_id"] == "sess-9"


def test_bad_parameters_are_clear(srv: LLMLensServer) -> None:
    with srv.client() as c:
        r = c.get("/api/v1/overview", params={"range": "5y"})
        assert r.status_code == 400 and "range" in r.json()["error"]
        r = c.get("/api/v1/traces", params={"cursor": "nonsense!"})
        assert r.status_code == 400 and "cursor" in r.json()["error"]
        r = c.get("/api/v1/traces/0123", params={"project": PROJECT})
        assert r.status_code == 404
        r = c.get("/api/v1/overview", params={"from": "2026-01-02", "to": "2026-01-01"})
        assert r.status_code == 400
