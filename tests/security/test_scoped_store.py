"""`store.scoped(project)` and the request's `current_project`, on both backends: reads see one
project (views, base tables, the SQL console), writes land in it whatever the spans say."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmlens.model import Feedback, Span
from llmlens.store import Store, confined_to, open_store

NOW_US = (int(time.time()) - 600) * 1_000_000


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "duckdb":
        opened = open_store(f"duckdb://{tmp_path / 'scoped.duckdb'}", tmp_path)
    else:
        base: str = request.getfixturevalue("clickhouse_url")
        opened = open_store(base.rsplit("/", 1)[0] + f"/scoped_{uuid.uuid4().hex[:12]}", tmp_path)
    try:
        for project in ("alpha", "beta"):
            opened.write(
                [
                    Span(
                        trace_id=uuid.uuid4().hex,
                        span_id=uuid.uuid4().hex[:16],
                        kind=kind,
                        project=project,
                        start_us=NOW_US + i,
                        model="gpt-4o",
                        prompt=f"{project} text",
                        message_id=f"{project}-m{i}",
                        tool_name="t" if kind == "tool" else None,
                    )
                    for i, kind in enumerate(("llm", "llm", "tool", "retrieval"))
                ],
                [
                    Feedback(
                        feedback_id=f"{project}-f",
                        message_id=f"{project}-m0",
                        feedback_type="thumbs_up",
                        timestamp_us=NOW_US,
                        project=project,
                    )
                ],
            )
        yield opened
    finally:
        opened.close()


QUERIES = [
    "SELECT project FROM spans",
    "SELECT project FROM llm_logs",
    "SELECT project FROM tool_logs",
    "SELECT project FROM retrieval_logs",
    "SELECT project FROM feedback_events",
    "SELECT project FROM store.spans",
    "SELECT project FROM store.feedback",
    "SELECT s.project FROM spans s JOIN llm_logs l ON l.span_id = s.span_id",
    "WITH x AS (SELECT project FROM llm_logs) SELECT project FROM x",
    "SELECT project FROM (SELECT * FROM spans WHERE project IN ('alpha', 'beta')) t",
]


@pytest.mark.parametrize("query", QUERIES)
def test_scoped_reads_see_one_project(store: Store, query: str) -> None:
    assert {r[0] for r in store.query(query).rows} == {"alpha", "beta"}  # unscoped: both
    assert {r[0] for r in store.scoped("alpha").query(query).rows} == {"alpha"}
    with confined_to("beta"):
        assert {r[0] for r in store.query(query).rows} == {"beta"}


def test_scoped_user_sql_ignores_the_asked_project(store: Store) -> None:
    rows = store.scoped("alpha").user_sql("SELECT DISTINCT project FROM llm_logs", project="beta").rows
    assert rows == [["alpha"]]
    with confined_to("alpha"):
        assert store.user_sql("SELECT DISTINCT project FROM llm_logs", project="beta").rows == [["alpha"]]


def test_scoped_writes_force_the_project(store: Store) -> None:
    span = Span(
        trace_id=uuid.uuid4().hex,
        span_id=uuid.uuid4().hex[:16],
        kind="llm",
        project="beta",
        start_us=NOW_US,
        prompt="smuggled",
    )
    store.scoped("alpha").write([span], [])
    rows = store.query("SELECT project FROM spans WHERE prompt = 'smuggled'").rows
    assert rows == [["alpha"]]


def test_a_scoped_store_cannot_be_widened(store: Store) -> None:
    scoped = store.scoped("alpha")
    assert scoped.scoped("alpha") is scoped
    with pytest.raises(PermissionError):
        scoped.scoped("beta")


@pytest.mark.parametrize("table", ["rollup_hour", "rollup_day", "sketch_hour", "sketch_day", "user_day"])
def test_scoped_rollups_answer_for_one_project(tmp_path: Path, table: str) -> None:
    # The server's pages read through a scoped store: it must offer the rollups, confined to its project.
    opened = open_store(f"duckdb://{tmp_path / 'rollups.duckdb'}", tmp_path)
    try:
        opened.write(
            [
                Span(
                    trace_id=uuid.uuid4().hex,
                    span_id=uuid.uuid4().hex[:16],
                    kind="llm",
                    project=project,
                    start_us=NOW_US,
                    model="gpt-4o",
                    user_id="u1",
                    latency_ms=120.0,
                    cost_usd=0.01,
                )
                for project in ("alpha", "beta")
            ],
            [],
        )
        scoped = opened.scoped("alpha")
        assert getattr(scoped, "has_rollups", False) is True
        query = f"SELECT DISTINCT project FROM store.{table} WHERE project IN ('alpha', 'beta')"
        assert {r[0] for r in opened.query(query).rows} == {"alpha", "beta"}
        assert scoped.query(query).rows == [["alpha"]]
    finally:
        opened.close()
