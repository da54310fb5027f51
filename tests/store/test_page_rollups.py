"""The page rollups of a DuckDB store (feedback joined to its calls, stored scores by call, prompts, tools,
users by model) answer every page question as a raw recount does: feedback and scores arriving after their
call or before it, a second call of a rated message, context a late root span brings (update_span_fields),
repricing, retention, deletes, and a store reopened after its writer was killed before catching up."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

from tests.store._page_reports import RawOnly, assert_rollups_equal_raw, differences, plain
from tests.support.llmlens_server import LLMLensServer

from llmlens.ingest.retention import enforce_retention
from llmlens.model import Feedback, Score, Span
from llmlens.query import Scope, budgets, feedback, parse_window, scores
from llmlens.store.duckdb import DuckDBStore

HOUR_US = 3_600_000_000
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0)
NOW_US = int((NOW - dt.datetime(1970, 1, 1)).total_seconds() * 1_000_000)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-haiku")
TEMPLATE = "support_answer@v2"


def _llm_id(i: int) -> str:
    return f"b{i:015x}"


def _calls(first: int, count: int, rng: random.Random, *, project: str = "default") -> list[Span]:
    """LLM calls (with a request root, and a tool call for some) spread over the last 9 days."""
    spans: list[Span] = []
    for i in range(first, first + count):
        start = NOW_US - int(rng.uniform(0.2, 9 * 24) * HOUR_US)
        trace = f"{'0' if project == 'default' else 'f'}{i:031x}"
        spans.append(
            Span(
                trace_id=trace, span_id=f"a{i:015x}", kind="request", name="POST /chat", start_us=start,
                latency_ms=rng.uniform(100, 5000), project=project, status="ok",
            )
        )  # fmt: skip
        spans.append(
            Span(
                trace_id=trace,
                span_id=_llm_id(i),
                parent_span_id=f"a{i:015x}",
                kind="llm",
                start_us=start + 1000,
                latency_ms=rng.choice([None, rng.uniform(50, 6000)]) if i % 17 == 0 else rng.uniform(50, 6000),
                model=MODELS[i % 3],
                provider="openai",
                prompt_tokens=rng.choice([0, None, rng.randint(10, 1500)]) if i % 11 == 0 else rng.randint(10, 1500),
                completion_tokens=rng.randint(5, 400),
                cost_usd=None if i % 13 == 0 else rng.uniform(0.0001, 0.8),
                status="error" if i % 9 == 0 else "ok",
                message_id=f"m{i}",
                user_id=None if i % 7 == 0 else f"u{i % 4}",
                session_id=f"s{i // 3}",
                feature=None if i % 5 == 0 else ("chat" if i % 2 else "search"),
                template_id=None if i % 4 == 0 else TEMPLATE.partition("@")[0],
                template_version=("v1" if i % 3 else "v2") if i % 8 else None,
                metadata={"tier": "pro"} if i % 6 == 0 else {},
                project=project,
            )
        )
        if i % 3 == 0:
            ok = rng.random() < 0.7
            spans.append(
                Span(
                    trace_id=trace, span_id=f"c{i:015x}", parent_span_id=_llm_id(i), kind="tool", start_us=start + 2000,
                    latency_ms=rng.uniform(1, 900), tool_name=None if i % 27 == 0 else ("search" if i % 2 else "fetch"),
                    name="tool", tool_success=ok, status="ok" if ok else "error", project=project,
                )
            )  # fmt: skip
    return spans


def _feedback(messages: list[int], rng: random.Random, *, prefix: str = "f") -> list[Feedback]:
    kinds = ("thumbs_up", "thumbs_down", "retry", "edit", "abandon")
    return [
        Feedback(
            feedback_id=f"{prefix}{i}-{n}",
            message_id=f"m{i}",
            feedback_type=rng.choice(kinds),
            feedback_text="too slow" if i % 10 == 0 else None,
            timestamp_us=NOW_US - int(rng.uniform(0.1, 24) * HOUR_US),
            user_id=None if i % 2 else f"u{i % 4}",
        )
        for i in messages
        for n in range(1 + i % 2)
    ]


def _scores(calls: range, rng: random.Random, *, prefix: str = "s", project: str = "default") -> list[Score]:
    """Stored scores of three types on LLM calls by span id; some by message id only, on a tool span, or on
    a span never stored (neither counted on a call)."""
    out: list[Score] = []

    def add(i: int, name: str, data_type: str, **fields: Any) -> None:
        at = NOW_US - int(rng.uniform(0.1, 8 * 24) * HOUR_US)
        out.append(Score(f"{prefix}{i}-{name}", name, data_type, at, project=project, **fields))

    for i in calls:
        add(i, "quality", "numeric", value=round(rng.uniform(0, 1), 3), span_id=_llm_id(i))
        if i % 3 == 0:
            add(i, "correct", "boolean", value=float(rng.random() < 0.6), span_id=_llm_id(i))
        if i % 5 == 0:
            add(i, "tone", "categorical", label=rng.choice(["calm", "curt"]), span_id=_llm_id(i))
        if i % 7 == 0:
            add(i, "relevance", "numeric", value=rng.uniform(0, 5), message_id=f"m{i}")
        if i % 11 == 0:
            add(i, "tool_ok", "boolean", value=1.0, span_id=f"c{i:015x}")
        if i % 13 == 0:
            add(i, "orphan", "numeric", value=1.0, span_id=f"d{i:015x}")
    return out


def _scored_calls(store: DuckDBStore, project: str = "default") -> int:
    """Scores counted on calls in the last 30 days, as the score columns give them."""
    board = budgets.Budgets(users={}, tiers={}, default_tier=None)
    columns = scores.score_columns(store, Scope(project, parse_window("30d", now=NOW)), board)
    return sum(cell.count for cell in columns.overall if cell.name != "user_feedback")


def _event(s: Span) -> dict[str, object]:
    """A span as the native JSON event the ingest API takes."""
    event: dict[str, object] = {
        "type": {"llm": "llm", "tool": "tool"}.get(s.kind, "span"), "kind": s.kind, "name": s.name,
        "trace_id": s.trace_id, "span_id": s.span_id, "parent_span_id": s.parent_span_id,
        "timestamp": s.start_us / 1e6, "latency_ms": s.latency_ms, "status": s.status,
    }  # fmt: skip
    if s.kind == "llm":
        event.update(
            model=s.model, provider=s.provider, prompt_tokens=s.prompt_tokens, completion_tokens=s.completion_tokens,
            cost_usd=s.cost_usd, message_id=s.message_id, user_id=s.user_id, session_id=s.session_id,
            feature=s.feature, template_id=s.template_id, template_version=s.template_version, metadata=s.metadata,
        )  # fmt: skip
    if s.kind == "tool":
        event.update(tool_name=s.tool_name or "(unnamed)", success=s.tool_success)
    return {k: v for k, v in event.items() if v is not None}


def _check(store: DuckDBStore) -> None:
    # Minute charts (raw only), hour charts (days, hours and raw edges), day charts.
    for range_ in ("1h", "7d", "30d"):
        assert_rollups_equal_raw(store, Scope("default", parse_window(range_, now=NOW)), TEMPLATE, "gpt-4o")


def test_feedback_after_and_before_its_call(tmp_path: Path) -> None:
    rng = random.Random(5)
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(_calls(0, 400, rng), [])
        # After its call: feedback and scores on calls already stored and caught up (scores on fewer calls
        # than the id map looks up one by one, then on more).
        store.fold_rollups()
        store.write([], _feedback(list(range(0, 400, 3)), rng))
        store.write_scores(_scores(range(0, 400, 4), rng))
        store.fold_rollups()
        _check(store)
        store.write_scores([s for first in (1, 2, 3) for s in _scores(range(first, 400, 4), rng)])
        assert _scored_calls(store) > 300
        _check(store)
        # Before its call: feedback and scores on calls not stored yet, caught up before the calls arrive.
        store.write([], _feedback(list(range(400, 600, 2)), rng))
        store.write_scores(_scores(range(400, 600, 2), rng, prefix="t"))
        store.fold_rollups()
        before = _scored_calls(store)
        assert feedback.feedback_report(store, Scope("default", parse_window("30d", now=NOW))).total == sum(
            1 + i % 2 for i in range(0, 400, 3)
        )
        store.write(_calls(400, 200, rng), [])
        store.fold_rollups()
        assert _scored_calls(store) > before
        _check(store)
        # A second LLM call of a rated message (and of one scored by message id), with a smaller span id: it
        # becomes the call `scores` names.
        second = _calls(3, 1, rng)[1]
        second.span_id, second.trace_id = "0" * 16, "e" * 32
        other_second = _calls(7, 1, rng)[1]
        other_second.span_id, other_second.trace_id = "0" * 15 + "1", "e" * 31 + "1"
        store.write([second, other_second], [])
        store.fold_rollups()
        _check(store)
        # More scores by message id only than are looked up one by one.
        by_message = [
            Score(f"r{i}", "relevance", "numeric", NOW_US, value=float(i % 5), message_id=f"m{i}")
            for i in range(1, 600, 2)
        ]
        store.write_scores(by_message)
        _check(store)
        # Both arriving in one commit, and feedback and scores arriving while calls are still being caught up.
        store.write(_calls(600, 60, rng), _feedback(list(range(600, 660, 2)), rng, prefix="g"))
        store.write_scores(_scores(range(600, 660), rng, prefix="g"))
        _check(store)
    finally:
        store.close()


def test_changed_and_deleted_calls(tmp_path: Path) -> None:
    rng = random.Random(9)
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(_calls(0, 300, rng), _feedback(list(range(0, 300, 2)), rng))
        store.write_scores(_scores(range(0, 300), rng))
        store.fold_rollups()
        # A late root span's context: feature and user move rated calls to other groups; a message id
        # moves one call's feedback to another call.
        store.update_span_fields(
            "default",
            {
                **{_llm_id(i): {"feature": "late", "user_id": "u9", "template_version": "v3"} for i in range(0, 60)},
                _llm_id(100): {"message_id": "m101"},
                _llm_id(200): {"latency_ms": 9000.0, "model": "gpt-4o"},
            },
        )
        _check(store)
        # Repricing changes the template rollup's cost.
        repriced = _calls(0, 40, random.Random(9))
        llm = [s for s in repriced if s.kind == "llm"]
        for s in llm:
            s.cost_usd = 2.0
        store.update_costs(llm)
        _check(store)
        # Retention: calls and feedback older than four days go, with their rows in every rollup.
        enforce_retention(store, 4, {}, now=NOW)
        remaining = store.query("SELECT min(timestamp) FROM store.spans").rows[0][0]
        assert remaining >= NOW - dt.timedelta(days=4)
        _check(store)
        store.execute("DELETE FROM store.feedback WHERE project = ? AND feedback_type = ?", ["default", "retry"])
        gone = ["default", _llm_id(201), f"c{201:015x}"]
        store.execute("DELETE FROM store.spans WHERE project = ? AND span_id IN (?, ?)", gone)
        _check(store)
        scored = _scored_calls(store)
        store.execute("DELETE FROM store.scores WHERE project = ? AND name = ?", ["default", "quality"])
        assert 0 < _scored_calls(store) < scored
        _check(store)
    finally:
        store.close()
    reopened = DuckDBStore(tmp_path / "s.duckdb")
    try:
        _check(reopened)
    finally:
        reopened.close()


def test_projects_stay_apart(tmp_path: Path) -> None:
    rng = random.Random(3)
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        # The same message ids in two projects: each project's feedback rates its own calls only.
        store.write(_calls(0, 100, rng) + _calls(0, 100, rng, project="other"), [])
        other_feedback = _feedback(list(range(0, 100, 2)), rng, prefix="o")
        for f in other_feedback:
            f.project = "other"
        store.write([], _feedback(list(range(1, 100, 2)), rng) + other_feedback)
        store.write_scores(_scores(range(0, 100, 3), rng) + _scores(range(1, 100, 2), rng, project="other"))
        for project in ("default", "other"):
            scope = Scope(project, parse_window("30d", now=NOW))
            rolled, raw = feedback.feedback_report(store, scope), feedback.feedback_report(RawOnly(store), scope)
            assert rolled.by_type == raw.by_type and rolled.total == raw.total > 0
            scoped = store.scoped(project)
            assert feedback.feedback_report(scoped, scope).by_type == raw.by_type
            board = budgets.Budgets(users={}, tiers={}, default_tier=None)
            rolled_scores = scores.score_columns(store, scope, board)
            raw_scores = scores.score_columns(RawOnly(store), scope, board)
            assert not differences(plain(rolled_scores), plain(raw_scores))
            rated = range(0, 100, 3) if project == "default" else range(1, 100, 2)
            assert {c.name: c.count for c in rolled_scores.overall}["quality"] == len(rated)
    finally:
        store.close()


def test_a_killed_server_leaves_rollups_that_catch_up(tmp_path: Path) -> None:
    """Events acknowledged by a server killed before it caught up are in the rollups once the store reopens."""
    data = tmp_path / "data"
    rng = random.Random(11)
    events = [_event(s) for s in _calls(1, 120, rng)]
    rated = [
        {
            "type": "feedback", "feedback_id": f.feedback_id, "message_id": f.message_id,
            "feedback_type": f.feedback_type, "timestamp": f.timestamp_us / 1e6,
        }
        for f in _feedback(list(range(2, 122, 2)), rng)
    ]  # fmt: skip
    rated += [
        {"type": "score", "name": "quality", "value": i / 10, "span_id": _llm_id(i), "timestamp": NOW_US / 1e6}
        for i in range(1, 121, 3)
    ]
    server = LLMLensServer(data).start()
    try:
        half = len(rated) // 2
        assert server.ingest({"events": rated[:half]})["rejected"] == []  # feedback before its calls
        assert server.ingest({"events": events})["rejected"] == []
        assert server.ingest({"events": rated[half:]})["rejected"] == []  # scores after them
    finally:
        server.stop(kill=True)
    # Killed before it caught up: a read-only open sees rows past the watermarks and answers from raw rows.
    before = DuckDBStore(data / "llmlens.duckdb", read_only=True)
    try:
        assert not before.page_rollups
    finally:
        before.close()
    store = DuckDBStore(data / "llmlens.duckdb")
    try:
        assert store.query("SELECT count(*) FROM store.feedback").rows[0][0] == len(rated) - 40
        assert _scored_calls(store) == 40
        _check(store)
    finally:
        store.close()
