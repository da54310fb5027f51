"""Comparing calls across models with scores; whole-trace replay with recorded tool results; clear errors."""

from __future__ import annotations

import uuid

import pytest
from tests.replay.conftest import KEYS, USER_SCORER, ReplayEnv
from tests.replay.test_replay_calls import TOOLS, ingest_native
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

QUESTION = "Is it sunny in Paris"
REPLY = f"Fake reply to: {QUESTION}"


def test_compare_across_models_with_scores(env: ReplayEnv, fp: FakeProvider) -> None:
    feature = f"cmp-{uuid.uuid4().hex[:6]}"
    for i in range(2):
        ingest_native(
            env,
            model="gpt-4o-mini",
            provider="openai",
            feature=feature,
            input_messages=[{"role": "user", "content": QUESTION}],
            response=REPLY if i == 0 else "Something else entirely",
            latency_ms=1000.0 * (i + 1),
        )
    scorers = ["exact_match", "json_valid", "contains:Paris", "length_ratio", USER_SCORER]
    doc = env.ok(
        "/api/v1/compare",
        {
            "filter": {"feature": feature},
            "models": ["gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "fake-ratelimit"],
            "scorers": scorers,
        },
    )
    assert len(fp.requests) == 6
    assert {r.path for r in fp.requests} == {"/v1/chat/completions", "/v1/messages"}
    rows = doc["rows"]
    assert len(rows) == 6 and doc["scorers"] == scorers
    by_model = {m["model"]: m for m in doc["summary"]}
    assert list(by_model) == ["original", "gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "fake-ratelimit"]
    assert by_model["original"]["calls"] == 2 and by_model["original"]["mean_latency_ms"] == 1500.0
    mini = by_model["gpt-4o-mini"]
    assert mini["calls"] == 2 and mini["errors"] == 0 and mini["error_rate"] == 0
    assert mini["scores"]["exact_match"] == 0.5  # one original said exactly what the fake says
    assert mini["scores"]["contains:Paris"] == 1.0 and mini["scores"][USER_SCORER] == 1.0
    assert mini["scores"]["json_valid"] == 0.0
    assert mini["total_cost_usd"] > 0
    assert by_model["fake-ratelimit"]["error_rate"] == 1.0
    failed = [r for r in rows if r["model"] == "fake-ratelimit"]
    assert all("rate_limit" in r["error"] for r in failed)
    first = next(r for r in rows if r["model"] == "gpt-4o-mini" and r["original_response"] == REPLY)
    assert first["scores"]["exact_match"] == 1.0 and first["similarity"] == 1.0
    assert first["scores"]["length_ratio"] == 1.0
    other = next(r for r in rows if r["model"] == "gpt-4o-mini" and r["original_response"] != REPLY)
    assert ("insert", "Fake") in [tuple(d) for d in other["diff"]] or any(op == "insert" for op, _ in other["diff"])
    # Stored: every replay is linked, scores are on the spans, and the run can be shown again.
    stored = env.server.sql(
        f"SELECT replay_of, attributes FROM spans WHERE trace_id = '{doc['run_id']}' AND kind = 'llm'"
    )
    assert len(stored) == 6 and all(s["replay_of"] for s in stored)
    again = env.server.client().get(f"/api/v1/replays/{doc['run_id']}").json()
    assert again["kind"] == "compare"
    assert {m["model"]: m["scores"] for m in again["comparison"]["summary"]} == {
        m["model"]: m["scores"] for m in doc["summary"]
    }
    page = env.server.client().get(f"/replays/{doc['run_id']}")
    assert page.status_code == 200 and "claude-3-5-haiku-latest" in page.text


def test_unregistered_import_scorer_is_refused_by_the_server(env: ReplayEnv, fp: FakeProvider) -> None:
    span_id = ingest_native(env, model="gpt-4o", input_messages=[{"role": "user", "content": "x"}])
    r = env.post("/api/v1/replay", {"span_id": span_id, "scorers": ["os:system"]})
    assert r.status_code == 422 and "not registered" in r.json()["error"]
    assert fp.requests == []


def test_unreachable_endpoint_is_named(env: ReplayEnv, fp: FakeProvider) -> None:
    span_id = ingest_native(env, model="gpt-4o", input_messages=[{"role": "user", "content": "x"}])
    r = env.post("/api/v1/replay", {"span_id": span_id, "models": ["vllm:llama-3-8b"]})
    assert r.status_code == 502
    message = r.json()["error"]
    assert "cannot reach upstream 'vllm'" in message and f"127.0.0.1:{env.dead_port}" in message


def test_missing_key_is_named(fp: FakeProvider, tmp_path: object) -> None:
    args = ["--upstream", f"openai={fp.openai_base_url}", "--upstream", f"anthropic={fp.anthropic_base_url}"]
    env_vars = {"OPENAI_API_KEY": KEYS["OPENAI_API_KEY"], "ANTHROPIC_API_KEY": ""}
    with LLMLensServer(args=args, env=env_vars) as srv:
        trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        srv.ingest(
            [
                {
                    "type": "span",
                    "kind": "llm",
                    "trace_id": trace_id,
                    "span_id": span_id,
                    "model": "gpt-4o",
                    "input_messages": [{"role": "user", "content": "x"}],
                }
            ]
        )
        with srv.client() as c:
            r = c.post("/api/v1/compare", json={"span_ids": [span_id], "models": ["gpt-4o", "claude-3-5-haiku-latest"]})
        pid = srv.proc.pid  # type: ignore[union-attr]
    assert r.status_code == 400
    assert r.json()["error"].startswith(f"the llmlens server (pid {pid}) has no ANTHROPIC_API_KEY in its environment")
    assert fp.requests == []  # nothing is sent when one of the targets cannot be


def _agent_trace(env: ReplayEnv) -> tuple[str, str]:
    trace_id = uuid.uuid4().hex
    root, llm1, tool, llm2 = (uuid.uuid4().hex[:16] for _ in range(4))
    first_messages = [{"role": "user", "content": "Weather in Paris?"}]
    call = {
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
    }
    second_messages = [
        *first_messages,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
    ]
    base = {"trace_id": trace_id, "timestamp": 1_700_000_000}
    env.server.ingest(
        [
            {**base, "type": "span", "kind": "agent", "span_id": root, "name": "agent", "latency_ms": 3000},
            {
                **base,
                "type": "span",
                "kind": "llm",
                "span_id": llm1,
                "parent_span_id": root,
                "model": "gpt-4o-mini",
                "provider": "openai",
                "input_messages": first_messages,
                "tools": TOOLS,
                "latency_ms": 500,
                "tool_calls": [{"id": "call_a", "name": "get_weather", "arguments": {"location": "Paris"}}],
            },
            {
                **base,
                "type": "tool",
                "span_id": tool,
                "parent_span_id": root,
                "tool_name": "get_weather",
                "args": {"location": "Paris"},
                "result": {"temp": 21},
                "success": True,
                "timestamp": 1_700_000_001,
            },
            {
                **base,
                "type": "span",
                "kind": "llm",
                "span_id": llm2,
                "parent_span_id": root,
                "model": "gpt-4o-mini",
                "provider": "openai",
                "input_messages": second_messages,
                "tools": TOOLS,
                "response": "It is 21C.",
                "timestamp": 1_700_000_002,
            },
        ]
    )
    return trace_id, llm2


def test_whole_trace_replay_feeds_recorded_tool_results(env: ReplayEnv, fp: FakeProvider) -> None:
    trace_id, llm2 = _agent_trace(env)
    fp.enqueue("tool")
    fp.tool_arguments = {"location": "Paris"}
    doc = env.ok(f"/api/v1/traces/{trace_id}/replay", {"models": ["gpt-4.1-mini"]})
    assert doc["divergence"] is None and doc["stopped"] is None
    assert len(doc["steps"]) == 2
    assert doc["steps"][0]["fed_results"] == [
        {"name": "get_weather", "arguments": '{"location":"Paris"}', "result": {"temp": 21}}
    ]
    # On track, step 2 is sent the original step's own context.
    second = fp.requests[1].json
    assert second["model"] == "gpt-4.1-mini" and second["messages"][2]["content"] == '{"temp": 21}'
    stored = env.server.sql(f"SELECT kind, replay_of FROM spans WHERE trace_id = '{doc['run_id']}' ORDER BY timestamp")
    assert [s["kind"] for s in stored].count("llm") == 2 and [s["kind"] for s in stored].count("tool") == 1
    assert llm2 in {s["replay_of"] for s in stored}
    page = env.server.client().get(f"/replays/{doc['run_id']}")
    assert page.status_code == 200 and "followed the original" in page.text


@pytest.mark.parametrize(
    ("scenario", "arguments", "reason", "stopped"),
    [
        ("tool", {"location": "Berlin"}, "different arguments", True),
        ("normal", None, "final answer at another step", False),
    ],
)
def test_whole_trace_replay_marks_divergence(
    env: ReplayEnv, fp: FakeProvider, scenario: str, arguments: dict[str, str] | None, reason: str, stopped: bool
) -> None:
    trace_id, _ = _agent_trace(env)
    fp.enqueue(scenario)
    fp.tool_arguments = arguments
    doc = env.ok(f"/api/v1/traces/{trace_id}/replay", {})
    assert doc["divergence"]["step"] == 0 and doc["divergence"]["reason"] == reason
    assert doc["steps"][0]["diverged"] == reason
    assert bool(doc["stopped"]) is stopped
    if stopped:
        assert "no recorded result for get_weather" in doc["stopped"]
