"""`Store.update_span_fields` on both backends: what late context, log content and dedupe rely on."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmlens.model import Span
from llmlens.store import Store, confined_to, open_store

NOW_US = (int(time.time()) - 600) * 1_000_000


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "duckdb":
        opened = open_store(f"duckdb://{tmp_path / 'u.duckdb'}", tmp_path)
    else:
        base: str = request.getfixturevalue("clickhouse_url")
        opened = open_store(base.rsplit("/", 1)[0] + f"/updates_{uuid.uuid4().hex[:12]}", tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def _span(span_id: str, project: str = "default", **fields: object) -> Span:
    return Span(trace_id="t" * 32, span_id=span_id, kind="llm", project=project, start_us=NOW_US, **fields)  # type: ignore[arg-type]


def test_update_span_fields_sets_each_type(store: Store) -> None:
    store.write([_span("a", prompt_tokens=5), _span("b"), _span("a", project="other")], [])
    updated = store.update_span_fields(
        "default",
        {
            "a": {"user_id": "u1", "metadata": {"tier": "pro"}, "prompt_tokens": None, "streamed": True},
            "b": {"user_id": "u2", "input_messages": [{"role": "user", "content": 'it\'s "x" \\ n'}], "ttft_ms": 1.5},
            "missing": {"user_id": "nobody"},
        },
    )
    assert updated == 2
    rows = {
        r[0]: r[1:]
        for r in store.query(
            "SELECT span_id, user_id, metadata, prompt_tokens, streamed, input_messages, ttft_ms, project "
            "FROM store.spans WHERE project = ? ORDER BY span_id",
            ["default"],
        ).rows
    }
    assert rows["a"][0] == "u1" and json.loads(rows["a"][1]) == {"tier": "pro"}
    assert rows["a"][2] is None and rows["a"][3] is True
    assert rows["b"][0] == "u2" and json.loads(rows["b"][4]) == [{"role": "user", "content": 'it\'s "x" \\ n'}]
    assert rows["b"][5] == 1.5
    other = store.query("SELECT user_id, prompt_tokens FROM store.spans WHERE project = ?", ["other"]).rows
    assert other == [[None, None]]


def test_identity_columns_cannot_be_updated(store: Store) -> None:
    with pytest.raises(ValueError, match="kind"):
        store.update_span_fields("default", {"a": {"kind": "other"}})


def test_a_request_confined_to_one_project_updates_no_other(store: Store) -> None:
    store.write([_span("a", project="beta", user_id="beta-user")], [])
    with confined_to("alpha"):
        assert store.update_span_fields("beta", {"a": {"user_id": "INJECTED"}}) == 0
    with confined_to("beta"):
        assert store.update_span_fields("beta", {"a": {"feature": "beta-feature"}}) == 1
    rows = store.query("SELECT user_id, feature FROM store.spans WHERE project = ?", ["beta"]).rows
    assert rows == [["beta-user", "beta-feature"]]
