"""`llmlens migrate`: DuckDB -> ClickHouse -> DuckDB keeps every span and feedback event."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from tests.store.test_store_contract import NOW_US, empty_span, full_span

from llmlens.cli import main
from llmlens.model import Feedback
from llmlens.store import SPAN_COLUMNS, open_store

pytestmark = pytest.mark.clickhouse


def test_migrate_there_and_back(clickhouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "first.duckdb"
    source = open_store(f"duckdb://{first}", tmp_path)
    spans = [full_span("a"), empty_span("b"), full_span("c", project="other")]
    feedback = [Feedback("f1", "msg-1", "thumbs_up", NOW_US, metadata={"k": [1]})]
    source.write(spans, feedback)
    source.close()
    ch = clickhouse_url.rsplit("/", 1)[0] + f"/migrate_{uuid.uuid4().hex[:8]}"
    back = tmp_path / "back.duckdb"

    assert main(["migrate", "--from", f"duckdb://{first}", "--to", ch, "--batch", "2"]) == 0
    assert "migrated 3 spans and 1 feedback events (0 already there)" in capsys.readouterr().out
    # Running it again copies nothing twice.
    assert main(["migrate", "--from", f"duckdb://{first}", "--to", ch]) == 0
    assert "migrated 0 spans and 0 feedback events (4 already there)" in capsys.readouterr().out
    assert main(["migrate", "--from", ch, "--to", f"duckdb://{back}"]) == 0

    original, copied = open_store(f"duckdb://{first}", tmp_path), open_store(f"duckdb://{back}", tmp_path)
    try:
        sql = "SELECT * FROM spans ORDER BY project, span_id"
        want, got = original.query(sql).dicts(), copied.query(sql).dicts()
        assert len(got) == 3
        for w, g in zip(want, got, strict=True):
            for col, kind, _ in SPAN_COLUMNS:
                if kind == "json" and w[col] is not None:
                    assert json.loads(g[col]) == json.loads(w[col]), col
                else:
                    assert g[col] == w[col], col
        fb = "SELECT feedback_id, message_id, feedback_type, timestamp, metadata FROM store.feedback"
        assert copied.query(fb).rows == original.query(fb).rows
    finally:
        original.close()
        copied.close()


def test_migrate_refuses_the_same_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"duckdb://{tmp_path / 'x.duckdb'}"
    assert main(["migrate", "--from", url, "--to", url]) == 1
    assert "same store" in capsys.readouterr().err
