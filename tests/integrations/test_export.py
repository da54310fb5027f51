"""Exports: `llmlens export` and GET /api/v1/export to Parquet/JSONL/CSV with the article's columns, and
scheduled exports to a folder; Parquet files are read back with pyarrow."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.support.llmlens_server import LLMLensServer

from llmlens.export import (
    EXPORT_KINDS,
    STATE_FILE,
    ExportConfigError,
    ExportScheduler,
    ExportSpec,
    export_to_file,
    jobs_from_settings,
)
from llmlens.model import Feedback, Span, new_span_id, new_trace_id
from llmlens.store.duckdb import DuckDBStore

NOW_S = time.time()
DAY = 86400
ARROW_TYPES = {
    "string": pa.string(),
    "json": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def llmlens(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmlens.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def _events() -> list[dict[str, Any]]:
    recent = [
        {
            "type": "llm",
            "timestamp": NOW_S - 2 * DAY + i,
            "model": "gpt-4o-mini",
            "provider": "openai",
            "prompt": f"question {i}",
            "response": f"answer {i}",
            "prompt_tokens": 100 + i,
            "completion_tokens": 10 + i,
            "latency_ms": 500.0 + i,
            "cost_usd": 0.001 * (i + 1),
            "user_id": f"user-{i % 2}",
            "feature": "chat",
            "streamed": i % 2 == 0,
            "metadata": {"tier": "pro", "n": i},
            "message_id": f"msg-{i}",
        }
        for i in range(5)
    ]
    old = {**recent[0], "timestamp": NOW_S - 10 * DAY, "message_id": "msg-old", "prompt": "old question"}
    tool = {
        "type": "tool",
        "timestamp": NOW_S - DAY,
        "tool_name": "search_web",
        "args": {"q": "refunds"},
        "result": ["a", "b"],
        "latency_ms": 40,
        "success": False,
        "error": "timeout",
    }
    retrieval = {
        "type": "retrieval",
        "timestamp": NOW_S - DAY,
        "query": "refund policy",
        "documents": [{"id": "d1", "content": "30 days", "score": 0.9}],
        "latency_ms": 12,
    }
    feedback = {"type": "feedback", "message_id": "msg-1", "feedback_type": "thumbs_up", "timestamp": NOW_S - DAY}
    return [*recent, old, tool, retrieval, feedback]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("export-data")) as srv:
        doc = srv.ingest(_events())
        assert doc["accepted"] == len(_events())
        yield srv


def _check_schema(table: pa.Table, kind: str) -> None:
    expected = EXPORT_KINDS[kind].columns
    assert table.column_names == [name for name, _ in expected]
    for name, typ in expected:
        assert table.schema.field(name).type == ARROW_TYPES[typ], name


def test_cli_exports_parquet_from_a_server(loaded: LLMLensServer, tmp_path: Path) -> None:
    out = tmp_path / "llm.parquet"
    result = llmlens("export", "--url", loaded.url, "--since", "7d", "--format", "parquet", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "5 llm_logs rows" in result.stderr
    table = pq.read_table(out)
    _check_schema(table, "llm")
    rows = table.to_pylist()
    assert [r["prompt"] for r in rows] == [f"question {i}" for i in range(5)]  # ordered by time, old one excluded
    first = rows[0]
    assert first["timestamp"] == dt.datetime.fromtimestamp(round(NOW_S - 2 * DAY, 6), dt.UTC)
    assert first["prompt_tokens"] == 100 and first["completion_tokens"] == 10 and first["total_tokens"] == 110
    assert first["cost_usd"] == pytest.approx(0.001)
    assert first["streamed"] is True
    assert json.loads(first["metadata"]) == {"tier": "pro", "n": 0}
    assert rows[1]["user_satisfaction"] == 1.0
    assert first["project"] == "default"


def test_api_streams_jsonl_and_csv_with_utc_times(loaded: LLMLensServer) -> None:
    since = dt.datetime.fromtimestamp(NOW_S - 11 * DAY, dt.UTC).isoformat()
    r = httpx.get(loaded.url + "/api/v1/export", params={"kind": "llm", "format": "jsonl", "since": since})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["x-llmlens-rows"] == "6"
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 6 and lines[0]["prompt"] == "old question"
    assert list(lines[0]) == list(EXPORT_KINDS["llm"].column_names)
    assert lines[0]["timestamp"].endswith("Z")
    assert dt.datetime.fromisoformat(lines[0]["timestamp"].replace("Z", "+00:00")).timestamp() == pytest.approx(
        NOW_S - 10 * DAY, abs=1e-3
    )
    assert isinstance(lines[0]["metadata"], str)

    r = httpx.get(loaded.url + "/api/v1/export", params={"kind": "tool", "format": "csv", "since": "3d"})
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == list(EXPORT_KINDS["tool"].column_names)
    assert rows[0]["tool_name"] == "search_web" and rows[0]["success"] == "false" and rows[0]["error"] == "timeout"
    assert json.loads(rows[0]["args"]) == {"q": "refunds"}


@pytest.mark.parametrize("kind", ["llm", "tool", "retrieval", "feedback", "spans"])
def test_every_kind_exports_with_its_documented_schema(loaded: LLMLensServer, kind: str) -> None:
    r = httpx.get(loaded.url + "/api/v1/export", params={"kind": kind, "format": "parquet", "since": "30d"})
    assert r.status_code == 200, r.text
    table = pq.read_table(pa.BufferReader(r.content))
    _check_schema(table, kind)
    expected = {"llm": 6, "tool": 1, "retrieval": 1, "feedback": 1, "spans": 8}[kind]
    assert table.num_rows == expected


def test_bad_export_requests_are_400s(loaded: LLMLensServer) -> None:
    for params, message in (
        ({"format": "xlsx"}, "format must be one of"),
        ({"kind": "metrics"}, "kind must be one of"),
        ({"since": "yesterday"}, "since must be"),
        ({"since": "1d", "until": "2d"}, "since must be before until"),
    ):
        r = httpx.get(loaded.url + "/api/v1/export", params=params)
        assert r.status_code == 400 and message in r.json()["error"], (params, r.text)
    result = llmlens("export", "--url", loaded.url, "--out", "-")
    assert result.returncode == 1 and "Parquet is binary" in result.stderr


def test_export_straight_from_a_data_directory(loaded: LLMLensServer, tmp_path: Path) -> None:
    loaded.stop()
    try:
        out = tmp_path / "tools.csv"
        result = llmlens(
            "export", "--data", str(loaded.data_dir), "--kind", "tool", "--format", "csv", "--out", str(out)
        )
        assert result.returncode == 0, result.stderr
        assert "search_web" in out.read_text()
        out = tmp_path / "llm.parquet"
        result = llmlens("export", "--data", str(loaded.data_dir), "--since", "30d", "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert pq.read_table(out).num_rows == 6

        # The generic writer (used for ClickHouse) gives the same file contents as DuckDB's COPY.
        store = DuckDBStore(loaded.data_dir / "llmlens.duckdb", read_only=True)
        try:
            end = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            for kind in ("llm", "tool", "feedback"):
                for fmt in ("parquet", "jsonl", "csv"):
                    spec = ExportSpec(EXPORT_KINDS[kind], "default", end - dt.timedelta(days=30), end, fmt)
                    native, generic = tmp_path / f"n.{fmt}", tmp_path / f"g.{fmt}"
                    assert export_to_file(store, spec, native, native=True) == export_to_file(
                        store, spec, generic, native=False
                    )
                    if fmt == "parquet":
                        assert pq.read_table(native).equals(pq.read_table(generic)), kind
                    elif fmt == "jsonl":
                        assert [json.loads(x) for x in native.read_text().splitlines()] == [
                            json.loads(x) for x in generic.read_text().splitlines()
                        ], kind
                    else:
                        assert list(csv.reader(native.open())) == list(csv.reader(generic.open())), kind
        finally:
            store.close()
    finally:
        loaded.start()


def test_export_columns_are_the_views_columns(loaded: LLMLensServer) -> None:
    for kind in EXPORT_KINDS.values():
        rows = loaded.sql(f"SELECT * FROM {kind.view} LIMIT 0")
        assert rows == []
        r = httpx.post(loaded.url + "/api/v1/sql", json={"query": f"SELECT * FROM {kind.view} LIMIT 0"})
        assert r.json()["columns"] == list(kind.column_names), kind.view


# -- scheduled exports ------------------------------------------------------------------------


def _span(at: dt.datetime, prompt: str) -> Span:
    return Span(
        trace_id=new_trace_id(),
        span_id=new_span_id(),
        kind="llm",
        name="chat",
        start_us=int(at.replace(tzinfo=dt.UTC).timestamp() * 1_000_000),
        latency_ms=100.0,
        model="gpt-4o-mini",
        prompt=prompt,
        prompt_tokens=10,
        completion_tokens=2,
    )


def test_scheduled_exports_write_each_completed_period_once(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "db" / "llmlens.duckdb")
    day = dt.datetime(2026, 3, 10)
    store.write(
        [
            _span(day + dt.timedelta(hours=3), "day 10 a"),
            _span(day + dt.timedelta(hours=23, minutes=59), "day 10 b"),
            _span(day + dt.timedelta(days=1, hours=1), "day 11"),
            _span(day + dt.timedelta(days=2, hours=1), "day 12"),
        ],
        [
            Feedback(
                feedback_id="f1",
                message_id="m",
                feedback_type="thumbs_down",
                timestamp_us=int((day + dt.timedelta(hours=5)).replace(tzinfo=dt.UTC).timestamp() * 1e6),
            )
        ],
    )
    folder = tmp_path / "exports"
    jobs = jobs_from_settings(
        [
            {"folder": str(folder), "kind": "llm", "format": "parquet", "every": "1d", "delay": "10m"},
            {"folder": str(folder), "kind": "feedback", "format": "jsonl", "every": "1d", "delay": "0s"},
        ],
        "default",
    )
    scheduler = ExportScheduler(store, jobs)
    try:
        # 00:05 on the 11th: a first run exports the last completed period; for the llm job that is the
        # 9th (empty), as the 10th is still inside its 10-minute delay.
        written = scheduler.run_due(day + dt.timedelta(days=1, minutes=5))
        assert [p.name for p in written] == [
            "llm_logs-20260309T000000Z-20260310T000000Z.parquet",
            "feedback_events-20260310T000000Z-20260311T000000Z.jsonl",
        ]
        assert pq.read_table(written[0]).num_rows == 0
        assert json.loads(written[1].read_text())["feedback_type"] == "thumbs_down"
        written = scheduler.run_due(day + dt.timedelta(days=1, minutes=15))
        assert [p.relative_to(folder).as_posix() for p in written] == [
            "llm_logs/llm_logs-20260310T000000Z-20260311T000000Z.parquet"
        ]
        assert [r["prompt"] for r in pq.read_table(written[0]).to_pylist()] == ["day 10 a", "day 10 b"]
        assert scheduler.run_due(day + dt.timedelta(days=1, hours=2)) == []  # nothing new is complete
        # Down for two days: both missed days are exported in order.
        written = scheduler.run_due(day + dt.timedelta(days=3, hours=1))
        llm_files = [p for p in written if p.suffix == ".parquet"]
        assert [pq.read_table(p).column("prompt").to_pylist() for p in llm_files] == [["day 11"], ["day 12"]]
        state = json.loads((folder / STATE_FILE).read_text())
        assert state["default/llm_logs.parquet"] == "2026-03-13T00:00:00"
    finally:
        store.close()
    assert scheduler.written  # the running total of files


def test_scheduled_export_settings_are_checked() -> None:
    for entry, message in (
        ({"kind": "llm"}, r"exports\[0\]\.folder"),
        ({"folder": "x", "format": "xlsx"}, r"exports\[0\]\.format"),
        ({"folder": "x", "every": "daily"}, r"exports\[0\]: exports\[0\]\.every must be a duration"),
        ({"folder": "s3://bucket/llm"}, "local folder"),
        ({"folder": "x", "kind": "metrics"}, "kind must be one of"),
        ({"folder": "x", "evry": "1d"}, "unknown key"),
    ):
        with pytest.raises(ExportConfigError, match=message):
            jobs_from_settings([entry], "default")


def test_server_runs_scheduled_exports(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    exports = [{"folder": str(folder), "kind": "llm", "format": "csv", "every": "1s", "delay": "0s"}]
    with LLMLensServer(tmp_path / "data", env={"LLMLENS_EXPORTS": json.dumps(exports)}) as server:
        server.ingest([{"type": "llm", "model": "gpt-4o-mini", "prompt": "scheduled-p", "response": "r"}])
        # Wait for the row itself, not just a file: an interval exported before the row came has none.
        deadline = time.monotonic() + 30
        while not any("scheduled-p" in f.read_text() for f in folder.glob("llm_logs/*.csv")):
            assert time.monotonic() < deadline, f"no scheduled export holds the row:\n{server.log()}"
            time.sleep(0.05)
