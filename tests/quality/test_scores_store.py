"""Scores in the store: a database from before scores is migrated without losing data (DuckDB at start-up,
ClickHouse by `llmlens migrate --store`), `llmlens sql` reads the `scores` view (server and file) under
the sandbox's rules, and retention removes old scores."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path

import duckdb
import pytest
from tests.cli._run import llmlens
from tests.support.llmlens_server import LLMLensServer

from llmlens.model import Score, Span
from llmlens.store import open_store
from llmlens.store.clickhouse._schema import SCHEMA_VERSION as CLICKHOUSE_SCHEMA_VERSION
from llmlens.store.duckdb._schema import SCHEMA_VERSION as DUCKDB_SCHEMA_VERSION

EVENTS = [
    {"type": "llm", "model": "gpt-4o", "prompt": "p", "response": "r", "message_id": "m-old", "latency_ms": 900.0},
    {"type": "feedback", "message_id": "m-old", "feedback_type": "thumbs_up"},
]


def _counts(server: LLMLensServer) -> tuple[int, int]:
    llm = server.sql("SELECT COUNT(*) AS n FROM llm_logs")[0]["n"]
    fb = server.sql("SELECT COUNT(*) AS n FROM feedback_events")[0]["n"]
    return llm, fb


def _post_score(server: LLMLensServer) -> None:
    with server.client() as c:
        doc = c.post("/api/v1/scores", json=[{"message_id": "m-old", "name": "helpfulness", "value": 0.5}]).json()
    assert doc["accepted"] == 1, doc


def test_a_duckdb_file_from_before_scores_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    with LLMLensServer(tmp_path) as server:
        server.ingest(EVENTS)
    # Take the file back to schema version 2: what an llmlens without scores left on disk.
    con = duckdb.connect(str(tmp_path / "llmlens.duckdb"))
    con.execute("DROP VIEW main.scores")
    con.execute("DROP TABLE store.scores")
    con.execute("DROP TABLE store.score_names")
    con.execute("UPDATE llmlens_meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    with LLMLensServer(tmp_path) as server:
        assert _counts(server) == (1, 1)
        assert server.sql("SELECT name, value FROM scores") == [{"name": "user_feedback", "value": 1.0}]
        _post_score(server)
        assert len(server.sql("SELECT * FROM scores")) == 2
    con = duckdb.connect(str(tmp_path / "llmlens.duckdb"), read_only=True)
    assert con.execute("SELECT value FROM llmlens_meta WHERE key = 'schema_version'").fetchone() == (
        str(DUCKDB_SCHEMA_VERSION),
    )
    con.close()


@pytest.mark.clickhouse
def test_a_clickhouse_database_from_before_scores_is_migrated(clickhouse_url: str) -> None:
    from clickhouse_driver import Client

    url = clickhouse_url.rsplit("/", 1)[0] + "/scores_upgrade"
    with LLMLensServer(args=["--store", url]) as server:
        server.ingest(EVENTS)
    port = int(url.split("@", 1)[1].split("/", 1)[0].split(":")[1])
    client = Client(host="127.0.0.1", port=port, database="scores_upgrade")
    for name in ("scores", "llmlens_scores", "llmlens_score_names", "llmlens_meta"):
        client.execute(f"DROP TABLE {name}")
    client.execute(
        "CREATE TABLE llmlens_meta (key String, value String, updated DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree(updated) ORDER BY key"
    )
    client.execute("INSERT INTO llmlens_meta (key, value) VALUES", [("schema_version", "2")])
    # A server refuses a ClickHouse schema older than itself; the command its message names upgrades it.
    upgraded = llmlens("migrate", "--store", url)
    assert upgraded.returncode == 0, upgraded.stderr
    with LLMLensServer(args=["--store", url]) as server:
        assert _counts(server) == (1, 1)
        assert server.sql("SELECT name, value FROM scores") == [{"name": "user_feedback", "value": 1.0}]
        _post_score(server)
        assert len(server.sql("SELECT * FROM scores")) == 2
    versions = client.execute("SELECT value FROM llmlens_meta WHERE key = 'schema_version' ORDER BY value")
    assert versions[-1] == (str(CLICKHOUSE_SCHEMA_VERSION),)
    client.disconnect()


def test_llmlens_sql_reads_scores_from_a_server_and_from_the_file(tmp_path: Path) -> None:
    with LLMLensServer(tmp_path / "data") as server:
        server.ingest(EVENTS)
        _post_score(server)
        out = llmlens(
            "sql", "SELECT name, value, source FROM scores ORDER BY name", "--url", server.url, "--format", "json"
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == [
            {"name": "helpfulness", "value": 0.5, "source": "human"},
            {"name": "user_feedback", "value": 1.0, "source": "feedback"},
        ]
        for forbidden in ("SELECT * FROM store.scores", "SELECT * FROM score_names", "SELECT * FROM llmlens_scores"):
            refused = llmlens("sql", forbidden, "--url", server.url)
            assert refused.returncode == 1 and "Traceback" not in refused.stderr, forbidden
    out = llmlens("sql", "SELECT COUNT(*) AS n FROM scores", "--data", str(tmp_path / "data"), "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"n": 2}]


def test_retention_removes_old_scores(tmp_path: Path) -> None:
    from llmlens.ingest.retention import enforce_retention

    store = open_store(None, tmp_path)
    now = time.time()
    try:
        store.write_scores(
            [
                Score(score_id=uuid.uuid4().hex, name="q", data_type="numeric", value=v, message_id="m", timestamp_us=t)
                for v, t in ((1.0, int((now - 40 * 86400) * 1e6)), (2.0, int((now - 3600) * 1e6)))
            ]
        )
        # Retention visits the projects that have spans.
        store.write([Span(trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16], start_us=int(now * 1e6))], [])
        enforce_retention(store, 30, {}, now=dt.datetime.now(dt.UTC).replace(tzinfo=None))
        assert store.user_sql("SELECT value FROM scores", project="default").rows == [[2.0]]
    finally:
        store.close()


@pytest.mark.clickhouse
def test_llmlens_migrate_copies_scores_there_and_back(clickhouse_url: str, tmp_path: Path) -> None:
    first, back = tmp_path / "first.duckdb", tmp_path / "back.duckdb"
    ch = clickhouse_url.rsplit("/", 1)[0] + f"/scores_migrate_{uuid.uuid4().hex[:8]}"
    source = open_store(f"duckdb://{first}", tmp_path)
    written = [
        Score(
            score_id="s-1",
            name="groundedness",
            data_type="numeric",
            value=0.25,
            message_id="m-1",
            source="evaluator",
            evaluator="judge",
            evaluator_version="2",
            reasoning="no citation",
            judge_cost_usd=0.001,
            timestamp_us=1_700_000_000_123_456,
            project="p1",
            metadata={"k": [1]},
        ),
        Score(
            score_id="s-2",
            name="tone",
            data_type="categorical",
            label="warm",
            span_id="ab" * 8,
            timestamp_us=1_700_000_000_000_000,
        ),
    ]
    source.write_scores(written)
    source.close()
    for src, dst in ((f"duckdb://{first}", ch), (f"duckdb://{first}", ch), (ch, f"duckdb://{back}")):
        result = llmlens("migrate", "--from", src, "--to", dst)
        assert result.returncode == 0, result.stderr
    copied = open_store(f"duckdb://{back}", tmp_path)
    try:
        columns = "score_id, project, name, data_type, value, label, source, message_id, span_id, evaluator, evaluator_version, reasoning, judge_cost_usd, timestamp, metadata"
        rows = copied.query(f"SELECT {columns} FROM store.scores ORDER BY score_id").dicts()
        assert [r["score_id"] for r in rows] == ["s-1", "s-2"], "each score copied once, there and back"
        assert rows[0]["timestamp"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123456)
        assert (rows[0]["project"], rows[0]["evaluator_version"], rows[0]["judge_cost_usd"]) == ("p1", "2", 0.001)
        assert json.loads(rows[0]["metadata"]) == {"k": [1]}
        assert (rows[1]["label"], rows[1]["span_id"], rows[1]["project"]) == ("warm", "ab" * 8, "default")
        assert copied.score_names("p1") == {"groundedness": "numeric"}
    finally:
        copied.close()


def test_llmlens_import_stores_score_lines_and_refuses_bad_ones_by_line(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = [
        {"model": "gpt-4o", "prompt": "p", "response": "r", "message_id": "m-imp", "latency_ms": 100.0},
        {"type": "score", "message_id": "m-imp", "name": "helpfulness", "value": 0.75},
        {"type": "score", "message_id": "m-imp", "name": "helpfulness", "label": "good"},  # numeric already
    ]
    log.write_text("\n".join("INFO:llm_observability:" + json.dumps(line) for line in lines) + "\n")
    data = tmp_path / "data"
    result = llmlens("import", str(log), "--data", str(data), "--quiet")
    assert result.returncode == 1, result.stderr
    assert "imported 2 events; rejected 1 lines" in result.stdout and f"{log}:3:" in result.stdout
    out = llmlens(
        "sql", "SELECT name, value, span_id IS NOT NULL AS joined FROM scores", "--data", str(data), "--format", "json"
    )
    assert json.loads(out.stdout) == [{"name": "helpfulness", "value": 0.75, "joined": True}]
