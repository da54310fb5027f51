"""The article's functions and log lines land in a real llmlens server, exactly once."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
from tests.sdk._e2e import new_session, spans_of
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import PUBLISHED_RATES, assert_cost

import llmlens


@pytest.fixture
def sdk(server: LLMLensServer) -> Iterator[LLMLensServer]:
    llmlens.init(url=server.url, schedule_delay_s=0.05, service="api", environment="test")
    yield server


def test_article_functions(sdk: LLMLensServer) -> None:
    session_id = new_session()
    with llmlens.context(user_id="alice", session_id=session_id, feature="code_review"):
        message_id = llmlens.log_llm_call(
            prompt="Review main.py",
            response="Looks fine",
            model="gpt-4o",
            prompt_tokens=120,
            completion_tokens=30,
            latency_ms=850.0,
            cost_usd=0.0006,
            metadata={"template_id": "code_review_v3", "template_version": "2026-03-15", "variables": {"f": "x"}},
        )
        llmlens.log_tool_call("search_web", {"q": "x"}, {"hits": 3}, 120.0, False, error="timeout")
        llmlens.feedback(message_id, "thumbs_down", text="missed a bug")
    llm, tool = spans_of(sdk, session_id, 2)
    assert llm["message_id"] == message_id
    # The caller's cost is the call's cost; the server's own, from genai-prices' gpt-4o rates, sits beside it.
    assert_cost(llm["cost_usd"], 0.0006)
    assert llm["cost_source"] == "caller"
    assert_cost(llm["computed_cost_usd"], PUBLISHED_RATES["gpt-4o"].openai_cost(120, 30))
    assert (llm["template_id"], llm["template_version"]) == ("code_review_v3", "2026-03-15")
    assert (llm["user_id"], llm["feature"], llm["service"], llm["environment"]) == (
        "alice",
        "code_review",
        "api",
        "test",
    )
    assert llm["latency_ms"] == 850.0 and llm["total_tokens"] == 150
    assert tool["tool_name"] == "search_web" and tool["tool_success"] is False and tool["status"] == "error"
    rows = sdk.sql(f"SELECT * FROM feedback_events WHERE message_id = '{message_id}'")
    assert [(r["feedback_type"], r["user_id"], r["feedback_text"]) for r in rows] == [
        ("thumbs_down", "alice", "missed a bug")
    ]


def test_logging_handler_sends_the_article_lines_unchanged(sdk: LLMLensServer) -> None:
    session_id = new_session()
    logger = logging.getLogger("llm_observability")
    handler = llmlens.LoggingHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logged_at = time.time()
        line = {
            "timestamp": logged_at,
            "model": "gpt-4o-mini",
            "prompt": "hi",
            "response": "hello",
            "prompt_tokens": 5,
            "completion_tokens": 7,
            "total_tokens": 12,
            "latency_ms": 321.0,
            "cost_usd": 0.00001,
            "metadata": {"session_id": session_id, "feature": "chat"},
        }
        logger.info(json.dumps(line))
        logger.info(
            json.dumps(
                {
                    "timestamp": logged_at,
                    "tool_name": "calc",
                    "args": {"a": 1},
                    "result": 2,
                    "latency_ms": 3.0,
                    "success": True,
                    "error": None,
                    "metadata": {"session_id": session_id},
                }
            )
        )
        logger.info("not json, ignored")
    finally:
        logger.removeHandler(handler)
    llm, tool = sorted(spans_of(sdk, session_id, 2), key=lambda r: r["kind"])
    assert llm["kind"] == "llm" and llm["prompt"] == "hi" and llm["feature"] == "chat"
    assert_cost(llm["cost_usd"], 0.00001)
    assert_cost(llm["computed_cost_usd"], PUBLISHED_RATES["gpt-4o-mini"].openai_cost(5, 7))
    assert llm["service"] is None  # the line went out unchanged
    assert tool["tool_name"] == "calc"
    assert handler.ignored == 1


def test_resending_a_batch_stores_each_span_once(sdk: LLMLensServer) -> None:
    session_id = new_session()
    with llmlens.context(session_id=session_id), llmlens.span("once") as s:
        pass
    spans_of(sdk, session_id, 1)
    # The same event again, as a retried batch would send it.
    sdk.ingest([{**s.event, "timestamp": s.event["timestamp"]}])
    assert len(spans_of(sdk, session_id, 1)) == 1
