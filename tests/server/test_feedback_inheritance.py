"""Feedback that names only the rated message (given outside `llmlens.context()`, or posted with just a
message id) takes its user, session, trace and span from the rated call, whichever arrives first; its
own values win. Through a real server, on DuckDB and on ClickHouse."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.llmlens_server import LLMLensServer

import llmlens

SATISFACTION_BY_SPEED = """SELECT
    CASE WHEN latency_ms < 1000 THEN 'fast' WHEN latency_ms < 3000 THEN 'medium' ELSE 'slow' END as speed,
    AVG(CASE WHEN feedback_type = 'thumbs_up' THEN 1.0 ELSE 0.0 END) as satisfaction
FROM llm_logs JOIN feedback_events ON llm_logs.message_id = feedback_events.message_id
GROUP BY speed"""


@pytest.fixture(scope="module", params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    args: list[str] = []
    if request.param == "clickhouse":
        base: str = request.getfixturevalue("clickhouse_url")
        args = ["--store", base.rsplit("/", 1)[0] + f"/feedback_{uuid.uuid4().hex[:12]}"]
    with LLMLensServer(tmp_path_factory.mktemp(f"feedback-{request.param}"), args=args) as server:
        yield server


@pytest.fixture
def project() -> str:
    """A project per test: the article's queries then see only that test's calls and feedback."""
    return f"fb-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sdk(srv: LLMLensServer, project: str) -> Iterator[None]:
    assert llmlens.init(url=srv.url, project=project, schedule_delay_s=0.05)
    yield
    llmlens.shutdown(timeout=5)


def _sql(srv: LLMLensServer, project: str, query: str) -> list[dict[str, Any]]:
    return srv.sql(query, params={"project": project})


def _wait(srv: LLMLensServer, project: str, query: str, ready: Any, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    """Rows of `query` once `ready(rows)` holds (writes are committed in batches), else the last rows."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = _sql(srv, project, query)
        if ready(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def _feedback(srv: LLMLensServer, project: str, message_id: str, *, inherited: bool = True) -> dict[str, Any]:
    query = (
        "SELECT user_id, session_id, feature, trace_id, span_id, feedback_type FROM feedback_events "
        f"WHERE message_id = '{message_id}'"
    )
    rows = _wait(srv, project, query, lambda rows: bool(rows) and (rows[0]["user_id"] is not None or not inherited))
    assert len(rows) == 1, rows
    return rows[0]


def _call(srv: LLMLensServer, project: str, message_id: str) -> dict[str, Any]:
    query = f"SELECT user_id, session_id, feature, trace_id, span_id FROM llm_logs WHERE message_id = '{message_id}'"
    (row,) = _wait(srv, project, query, bool)
    return row


def _article_call(project: str, message_id: str, user: str, session: str, latency_ms: float) -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "prompt": "Review main.py",
        "response": "Looks fine",
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "latency_ms": latency_ms,
        "cost_usd": 0.0006,
        "metadata": {
            "user_id": user,
            "session_id": session,
            "feature": "code_review",
            "message_id": message_id,
            "project": project,
        },
    }


def test_sdk_feedback_outside_context_takes_the_calls_user_and_session(
    srv: LLMLensServer, project: str, sdk: None
) -> None:
    with llmlens.context(user_id="u-ctx", session_id="s-ctx", feature="code_review"):
        message_id = llmlens.log_llm_call(
            "Review main.py",
            "Looks fine",
            "gpt-4o",
            prompt_tokens=120,
            completion_tokens=30,
            latency_ms=500.0,
            cost_usd=0.0001,
        )
    llmlens.feedback(message_id, "thumbs_up", text="spot on")  # later, outside any context
    assert llmlens.flush(10)
    call = _call(srv, project, message_id)
    feedback = _feedback(srv, project, message_id)
    assert (feedback["user_id"], feedback["session_id"], feedback["feature"]) == ("u-ctx", "s-ctx", "code_review")
    assert (feedback["trace_id"], feedback["span_id"]) == (call["trace_id"], call["span_id"])


def test_ingested_feedback_with_only_a_message_id_takes_the_calls_user_and_session(
    srv: LLMLensServer, project: str
) -> None:
    assert srv.ingest(_article_call(project, "msg-ingest", "u-art", "s-art", 700.0))["rejected"] == []
    feedback = {"message_id": "msg-ingest", "feedback_type": "thumbs_down", "project": project}
    assert srv.ingest(feedback)["rejected"] == []
    row = _feedback(srv, project, "msg-ingest")
    assert (row["user_id"], row["session_id"], row["feature"]) == ("u-art", "s-art", "code_review")


def test_feedback_that_arrives_before_its_call(srv: LLMLensServer, project: str) -> None:
    assert srv.ingest({"message_id": "msg-early", "feedback_type": "thumbs_up", "project": project})["rejected"] == []
    early = _feedback(srv, project, "msg-early", inherited=False)
    assert (early["user_id"], early["session_id"], early["feature"], early["trace_id"]) == (None, None, None, None)

    assert srv.ingest(_article_call(project, "msg-early", "u-late", "s-late", 900.0))["rejected"] == []
    call = _call(srv, project, "msg-early")
    row = _feedback(srv, project, "msg-early")
    assert (row["user_id"], row["session_id"], row["feature"]) == ("u-late", "s-late", "code_review")
    assert (row["trace_id"], row["span_id"]) == (call["trace_id"], call["span_id"])


def test_the_feedbacks_own_user_session_and_trace_win(srv: LLMLensServer, project: str) -> None:
    trace_id = "ab" * 16
    own = {
        "message_id": "msg-own",
        "feedback_type": "thumbs_up",
        "user_id": "u-reviewer",
        "session_id": "s-review",
        "trace_id": trace_id,
        "project": project,
    }
    assert srv.ingest([_article_call(project, "msg-own", "u-author", "s-author", 900.0), own])["rejected"] == []
    _call(srv, project, "msg-own")
    row = _feedback(srv, project, "msg-own")
    assert (row["user_id"], row["session_id"], row["feature"]) == ("u-reviewer", "s-review", "code_review")
    # A trace of its own: not paired with the call's span, which belongs to another trace.
    assert (row["trace_id"], row["span_id"]) == (trace_id, None)


def test_the_articles_queries_see_the_inherited_users(srv: LLMLensServer, project: str, sdk: None) -> None:
    with llmlens.context(user_id="u-fast", session_id="s-1", feature="chat"):
        fast = llmlens.log_llm_call(
            prompt="a",
            response="b",
            model="gpt-4o",
            prompt_tokens=5,
            completion_tokens=3,
            latency_ms=400.0,
            cost_usd=0.0001,
        )
    with llmlens.context(user_id="u-slow", session_id="s-2", feature="chat"):
        slow = llmlens.log_llm_call(
            prompt="c",
            response="d",
            model="gpt-4o",
            prompt_tokens=5,
            completion_tokens=3,
            latency_ms=4200.0,
            cost_usd=0.0001,
        )
    llmlens.feedback(fast, "thumbs_up")
    assert llmlens.flush(10)
    assert srv.ingest({"message_id": slow, "feedback_type": "thumbs_down", "project": project})["rejected"] == []

    by_user_sql = (
        "SELECT user_id, AVG(CASE WHEN feedback_type = 'thumbs_up' THEN 1.0 ELSE 0.0 END) as satisfaction "
        "FROM feedback_events GROUP BY user_id ORDER BY user_id"
    )
    by_user = _wait(srv, project, by_user_sql, lambda rows: len(rows) == 2 and None not in {r["user_id"] for r in rows})
    assert [(r["user_id"], r["satisfaction"]) for r in by_user] == [("u-fast", 1.0), ("u-slow", 0.0)]
    by_speed = {r["speed"]: r["satisfaction"] for r in _sql(srv, project, SATISFACTION_BY_SPEED)}
    assert by_speed == {"fast": 1.0, "slow": 0.0}
    joined = _sql(
        srv,
        project,
        "SELECT llm_logs.user_id AS caller, feedback_events.user_id AS rater FROM llm_logs "
        "JOIN feedback_events ON llm_logs.message_id = feedback_events.message_id ORDER BY caller",
    )
    assert [(r["caller"], r["rater"]) for r in joined] == [("u-fast", "u-fast"), ("u-slow", "u-slow")]
