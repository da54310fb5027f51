"""The dashboard queries rewritten for speed (sessions from a recent slice, recent tool failures,
feedback from the base tables) give the answers of the original whole-window SQL, on a real DuckDB
file read through a project-scoped store as the server reads it; the session list on ClickHouse too."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmlens.model import Feedback, Span
from llmlens.query import Scope, parse_window
from llmlens.query._common import bucket_expr
from llmlens.query.feedback import _GROUPED_SQL, feedback_report, window_feedback
from llmlens.query.sessions import session_list
from llmlens.query.tools import FAILURE_SAMPLES, tools_report
from llmlens.store import Store, open_store
from llmlens.store.duckdb import DuckDBStore

NOW = dt.datetime(2026, 11, 20, 12, 0, 30)
EPOCH = dt.datetime(1970, 1, 1)
_ids = itertools.count(1)

# The queries as they were before the rewrite: the reference answers.
OLD_SESSIONS_SQL = (
    "SELECT session_id, MIN(timestamp) AS started, MAX(timestamp) AS last_seen, "
    "COUNT(DISTINCT trace_id) AS turns, COUNT(*) AS llm_calls, SUM(cost_usd) AS cost_usd, "
    "SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, MIN(user_id) AS user_id, "
    "MIN(feature) AS feature FROM spans WHERE {where} GROUP BY session_id "
    "ORDER BY last_seen DESC, session_id LIMIT {limit}"
)
OLD_FEEDBACK_SQL = """
SELECT feature, template_id, template_version, model, speed, feedback_type, COUNT(*) AS n
FROM (
  SELECT
    COALESCE(s.feature, '(none)') AS feature,
    COALESCE(s.template_id, '(none)') AS template_id,
    COALESCE(s.template_version, '(none)') AS template_version,
    COALESCE(s.model, '(none)') AS model,
    CASE WHEN s.latency_ms < 1000 THEN 'fast' WHEN s.latency_ms < 3000 THEN 'medium' ELSE 'slow' END AS speed,
    f.feedback_type AS feedback_type
  FROM feedback_events f
  JOIN spans s ON s.project = f.project AND s.message_id = f.message_id
  WHERE {where} AND s.kind = 'llm'
) t
GROUP BY feature, template_id, template_version, model, speed, feedback_type
"""
OLD_FAILURES_SQL = (
    "SELECT tool_name, timestamp, trace_id, span_id, args, error FROM ("
    "SELECT COALESCE(tool_name, name, '(unnamed)') AS tool_name, timestamp, trace_id, span_id, "
    "tool_args AS args, error_message AS error, ROW_NUMBER() OVER ("
    "PARTITION BY COALESCE(tool_name, name, '(unnamed)') ORDER BY timestamp DESC) AS rn "
    "FROM spans WHERE {where} AND kind = 'tool' "
    "AND (tool_success = false OR status = 'error')) t "
    f"WHERE rn <= {FAILURE_SAMPLES} ORDER BY tool_name, timestamp DESC"
)


def _us(age: dt.timedelta) -> int:
    return int((NOW - age - EPOCH) / dt.timedelta(microseconds=1))


def _span(age: dt.timedelta, **fields: Any) -> Span:
    n = next(_ids)
    defaults: dict[str, Any] = {"kind": "llm", "name": "chat", "latency_ms": 500.0, "status": "ok"}
    return Span(trace_id=f"{n:032x}", span_id=f"{n:016x}", start_us=_us(age), **{**defaults, **fields})


def _days(d: float) -> dt.timedelta:
    return dt.timedelta(days=d)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[DuckDBStore]:
    """Written to directly (a project-scoped store would force its project on every span)."""
    store = DuckDBStore(tmp_path / "q.duckdb")
    yield store
    store.close()


@pytest.fixture
def store(backend: DuckDBStore) -> Store:
    """Read as the server reads: confined to the project."""
    return backend.scoped("default")


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def either(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """`backend` on DuckDB or ClickHouse (which reads a session's calls through its id map)."""
    url = None
    if request.param == "clickhouse":
        base = request.getfixturevalue("clickhouse_url").rsplit("/", 1)[0]
        url = f"{base}/slices_{tmp_path.name[-8:].replace('-', '_')}"
    opened = open_store(url, tmp_path)
    yield opened
    opened.close()


def _scope(range_: str) -> Scope:
    return Scope("default", parse_window(range_, now=NOW))


def _old_sessions(store: Store, scope: Scope, limit: int, user_id: str | None = None) -> list[dict[str, Any]]:
    where = f"{scope.where()} AND kind = 'llm' AND session_id IS NOT NULL"
    params = scope.params()
    if user_id:
        where += " AND user_id = ?"
        params.append(user_id)
    return store.query(OLD_SESSIONS_SQL.format(where=where, limit=limit), params).dicts()


def _sessions_traffic() -> list[Span]:
    spans: list[Span] = []
    # Three sessions active in the last hour whose first calls are days old (outside the first slice).
    for i in range(3):
        sid = f"long-{i}"
        spans += [_span(_days(9 + i), session_id=sid, user_id="u-long", cost_usd=0.5, feature="chat")]
        spans += [_span(_days(3), session_id=sid, user_id="u-long", cost_usd=None, status="error")]
        spans += [_span(dt.timedelta(minutes=5 + i), session_id=sid, user_id="u-long", cost_usd=0.25)]
    # One of them also called before the 30-day window: that call is not counted.
    spans += [_span(_days(40), session_id="long-0", user_id="u-long", cost_usd=9.0)]
    # Sixty sessions spread over the month, two turns (traces) each, one with two calls.
    for i in range(60):
        sid = f"s-{i:02d}"
        age = _days(0.3 * i + 0.1)
        first = _span(age + dt.timedelta(minutes=10), session_id=sid, user_id=f"u{i % 4}", cost_usd=0.01 * i)
        spans += [first, _span(age, session_id=sid, user_id=f"u{i % 4}", feature=f"f{i % 3}", cost_usd=0.02)]
        spans += [dataclasses.replace(first, span_id=f"{next(_ids):016x}", start_us=first.start_us + 1_000_000)]
    # Two sessions last seen at the same instant, ordered by id as before; a tool span and another project.
    spans += [_span(_days(2), session_id=sid, user_id="u-tie") for sid in ("tie-b", "tie-a")]
    spans += [_span(dt.timedelta(minutes=1), kind="tool", session_id="tool-only", tool_name="search")]
    spans += [_span(dt.timedelta(minutes=1), session_id="other-project", project="other")]
    return spans


@pytest.mark.parametrize(("range_", "limit"), [("30d", 50), ("30d", 5), ("30d", 500), ("7d", 50), ("24h", 50)])
def test_session_list_matches_the_whole_window_query(either: Store, range_: str, limit: int) -> None:
    either.write(_sessions_traffic(), [])
    store = either.scoped("default")
    scope = _scope(range_)
    got = [dataclasses.asdict(r) for r in session_list(store, scope, limit=limit)]
    want = _old_sessions(store, scope, limit)
    assert [r["session_id"] for r in got] == [r["session_id"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g["started"] == w["started"] and g["last_seen"] == w["last_seen"]
        assert (g["turns"], g["llm_calls"], g["errors"]) == (w["turns"], w["llm_calls"], w["errors"])
        assert g["cost_usd"] == (None if w["cost_usd"] is None else pytest.approx(w["cost_usd"], rel=1e-12))
        assert (g["user_id"], g["feature"]) == (w["user_id"], w["feature"])
    if range_ == "30d" and limit == 50:
        # The long sessions come first, started days before the hour that found them.
        assert [r["session_id"] for r in got[:3]] == ["long-0", "long-1", "long-2"]
        assert got[0]["started"] == NOW.replace(microsecond=0) - _days(9) and got[0]["llm_calls"] == 3


def test_session_list_with_a_user_filter_and_few_sessions(either: Store) -> None:
    either.write(_sessions_traffic(), [])
    store = either.scoped("default")
    scope = _scope("30d")
    for user in ("u-long", "u1", "u-tie", "nobody"):
        got = [r.session_id for r in session_list(store, scope, user_id=user)]
        assert got == [r["session_id"] for r in _old_sessions(store, scope, 50, user_id=user)]
    assert session_list(store, _scope("1h"), user_id="u-tie") == []


def _tool(age: dt.timedelta, name: str, ok: bool, **fields: Any) -> Span:
    return _span(age, kind="tool", name=name, tool_name=name, tool_success=ok, **fields)


def test_recent_tool_failures_match_the_whole_window_query(backend: DuckDBStore, store: Store) -> None:
    spans = [_tool(dt.timedelta(minutes=m), "search", ok=m % 3 != 0) for m in range(1, 60)]
    # A tool that failed twice, days ago, and one that fails by status only, long ago and recently.
    spans += [_tool(_days(d), "calc", ok=False, error_message=f"boom {d}") for d in (6, 12)]
    spans += [_tool(_days(d), "fetch", ok=True) for d in range(1, 20)]
    spans += [_span(_days(d), kind="tool", name="db", status="error") for d in (0.01, 0.02, 15, 16, 17, 18, 19)]
    spans += [_tool(_days(40), "calc", ok=False)]  # before the window
    backend.write(spans, [])
    for range_ in ("30d", "7d", "24h"):
        scope = _scope(range_)
        got = [dataclasses.asdict(f) for f in tools_report(store, scope).failures]
        want = store.query(OLD_FAILURES_SQL.format(where=scope.where()), scope.params()).dicts()
        key = ("tool_name", "timestamp", "trace_id", "span_id", "error")
        assert Counter(tuple(g[k] for k in key) for g in got) == Counter(tuple(w[k] for k in key) for w in want)
        assert len(got) == len(want)
    per_tool = Counter(f.tool_name for f in tools_report(store, _scope("30d")).failures)
    assert per_tool == {"search": FAILURE_SAMPLES, "calc": 2, "db": FAILURE_SAMPLES}


def test_feedback_report_matches_the_join_with_the_view(backend: DuckDBStore, store: Store) -> None:
    calls = [
        _span(_days(d), message_id=f"m{i}", model=m, feature=f, latency_ms=lat, template_id=t, template_version=v)
        for i, (d, m, f, lat, t, v) in enumerate(
            [
                (0.5, "gpt-4o", "chat", 400.0, "tpl", "1"),
                (2.0, "gpt-4o", "search", 1500.0, None, None),
                (6.0, "claude", None, 5000.0, "tpl", "2"),
                (20.0, "claude", "chat", None, "tpl", "2"),
                (45.0, "gpt-4o", "chat", 100.0, None, None),  # outside every window
            ]
        )
    ]
    calls += [_span(_days(1.0), message_id="m1", model="gpt-4o-mini", latency_ms=900.0)]  # a second call, same id
    calls += [_span(_days(1.0), message_id="m2", kind="tool", tool_name="search")]  # not an LLM call
    calls += [_span(_days(1.0), message_id="m0", project="other", model="other-model")]  # another project
    kinds = ("thumbs_up", "thumbs_down", "retry", "edit", "abandon")
    feedback = [
        Feedback(f"fb{n}", f"m{n % 6}", kinds[n % 5], _us(_days(fb_age)), project=project)
        for n, (fb_age, project) in enumerate(
            itertools.product((0.1, 3.0, 35.0), ("default", "default", "other"))  # some long after the call
        )
    ]
    feedback += [Feedback(f"fbx{n}", f"m{n}", "thumbs_up", _us(_days(44.0))) for n in range(5)]  # old feedback
    backend.write(calls, feedback)
    for range_ in ("30d", "7d", "24h", "1h"):
        scope = _scope(range_)
        report = feedback_report(store, scope)
        want = store.query(OLD_FEEDBACK_SQL.format(where=scope.where("s")), scope.params()).dicts()
        # The SQL of stores without the page rollups: its groups, and its time buckets adding up to them.
        feedback, feedback_params = window_feedback(scope, "message_id, feedback_type")
        bucket = bucket_expr(scope.window, "s.timestamp")
        sql = _GROUPED_SQL.format(where=scope.where(), feedback=feedback, bucket=bucket)
        both = store.query(sql, [*scope.params(), *feedback_params]).dicts()
        got = [r for r in both if not r["per_bucket"]]
        assert sorted(map(_row_key, got)) == sorted(map(_row_key, want))
        buckets: Counter[str] = Counter()
        for r in both:
            if r["per_bucket"]:
                buckets[str(r["feedback_type"])] += int(r["n"])
        want_by_type: Counter[str] = Counter()
        for w in want:
            want_by_type[str(w["feedback_type"])] += int(w["n"])
        assert report.by_type == dict(want_by_type)
        assert buckets == want_by_type, range_
        by_model: Counter[str] = Counter()
        for w in want:
            by_model[str(w["model"])] += int(w["n"])
        assert {s.key: s.feedback for s in report.by_model} == dict(by_model)
        by_speed: Counter[str] = Counter()
        for w in want:
            by_speed[str(w["speed"])] += int(w["n"])
        assert {s.key: s.feedback for s in report.by_speed} == dict(by_speed)
        # The chart counts the feedback on the window's calls by the time of the call: it adds up to the total.
        assert sum(v or 0 for s in report.by_type_over_time.series for v in s.values) == report.total
    assert feedback_report(store, _scope("30d")).total > 0


def _row_key(r: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(r[k]) for k in ("feature", "template_id", "template_version", "model", "speed", "feedback_type", "n")
    )
