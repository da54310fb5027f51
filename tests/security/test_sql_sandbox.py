"""The SQL console sandbox on a real DuckDB file: read-only, no files/network/extensions/settings,
one project visible, a statement timeout and a row limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmlens.model import Span
from llmlens.store import SqlFailed, SqlRejected
from llmlens.store.duckdb import DuckDBStore

NOW_US = int(time.time() * 1_000_000)


def _llm(project: str, i: int, prompt: str) -> Span:
    return Span(
        trace_id=f"{i:032x}",
        span_id=f"{project[:1]}{i:015x}",
        kind="llm",
        project=project,
        start_us=NOW_US - i * 1_000_000,
        model="gpt-4o",
        prompt=prompt,
        message_id=f"{project}-m{i}",
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    s = DuckDBStore(tmp_path_factory.mktemp("sandbox") / "llmlens.duckdb")
    s.write([_llm("alpha", i, "alpha prompt") for i in range(30)], [])
    s.write([_llm("beta", i, "beta secret") for i in range(5)], [])
    yield s
    s.close()


REFUSED = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'https://example.com/x.parquet'",
    "SELECT * FROM read_parquet('x.parquet')",
    "SELECT * FROM glob('/*')",
    "SELECT read_text('/etc/passwd')",
    "SELECT content FROM read_blob('/etc/hostname')",
    "ATTACH '/tmp/other.duckdb' AS other",
    "COPY (SELECT * FROM llm_logs) TO '/tmp/out.csv'",
    "COPY llm_logs FROM '/etc/passwd'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET VARIABLE llmlens_project = 'beta'",
    "RESET VARIABLE llmlens_project",
    "PRAGMA database_list",
    "SELECT * FROM pragma_database_list()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM store.spans",
    "SELECT * FROM main.llmlens_meta",
    "SELECT * FROM llmlens_meta",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM memory.main.llm_logs",
    "SELECT getvariable('llmlens_project')",
    "SELECT current_setting('threads')",
    "SELECT getenv('HOME')",
    "SELECT * FROM query('SELECT * FROM store.spans')",
    "SELECT * FROM query_table('store.spans')",
    "CREATE TABLE t AS SELECT 1",
    "INSERT INTO store.spans SELECT * FROM store.spans",
    "DELETE FROM llm_logs",
    "UPDATE llm_logs SET prompt = 'x'",
    "DROP VIEW llm_logs",
    "EXPORT DATABASE '/tmp/dump'",
    "CALL pragma_version()",
    "DETACH store",
    "USE store",
    "CHECKPOINT",
    "SELECT 1; SELECT 2",
    "WITH x AS (SELECT 1) SELECT * FROM (WITH llmlens_meta AS (SELECT 1) SELECT * FROM llmlens_meta), llmlens_meta",
]


@pytest.mark.parametrize("query", REFUSED)
def test_refused(store: DuckDBStore, query: str) -> None:
    with pytest.raises((SqlRejected, SqlFailed)):
        store.user_sql(query, project="alpha")
    # and nothing changed: the other project's rows are all there
    assert store.query("SELECT count(*) FROM store.spans WHERE project = 'beta'").rows[0][0] == 5


def test_file_and_network_access_are_rejected_not_just_failed(store: DuckDBStore) -> None:
    for query in ("SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/passwd'", "ATTACH 'x.db'"):
        with pytest.raises(SqlRejected):
            store.user_sql(query, project="alpha")


def test_only_the_callers_project_is_visible(store: DuckDBStore) -> None:
    for view in ("llm_logs", "spans"):
        rows = store.user_sql(f"SELECT DISTINCT project FROM {view}", project="alpha").rows
        assert rows == [["alpha"]]
    rows = store.user_sql("SELECT count(*) FROM llm_logs WHERE project = 'beta'", project="alpha").rows
    assert rows == [[0]]
    rows = store.user_sql("SELECT count(*) FROM llm_logs WHERE prompt LIKE '%secret%'", project="alpha").rows
    assert rows == [[0]]


def test_project_scoped_store_overrides_the_asked_project(store: DuckDBStore) -> None:
    scoped = store.scoped("alpha")
    rows = scoped.user_sql("SELECT DISTINCT project FROM llm_logs", project="beta").rows
    assert rows == [["alpha"]]
    assert scoped.query("SELECT DISTINCT project FROM llm_logs").rows == [["alpha"]]
    # trusted queries through a scoped store cannot widen it either
    assert scoped.query("SELECT count(*) FROM spans WHERE project = 'beta'").rows == [[0]]


def test_row_limit(store: DuckDBStore) -> None:
    result = store.user_sql("SELECT * FROM llm_logs", project="alpha", max_rows=7)
    assert len(result.rows) == 7 and result.truncated
    result = store.user_sql("SELECT * FROM llm_logs", project="alpha", max_rows=100)
    assert len(result.rows) == 30 and not result.truncated


def test_statement_timeout(store: DuckDBStore) -> None:
    started = time.monotonic()
    with pytest.raises(SqlFailed, match="limit"):
        store.user_sql(
            "SELECT sum(hash(a.range * b.range)) FROM range(1000000) a, range(1000000) b",
            project="alpha",
            timeout_s=0.5,
        )
    assert time.monotonic() - started < 10


def test_ctes_and_article_queries_still_work(store: DuckDBStore) -> None:
    q = "WITH m AS (SELECT model, count(*) AS n FROM llm_logs GROUP BY model) SELECT * FROM m"
    assert store.user_sql(q, project="alpha").rows == [["gpt-4o", 30]]


def test_store_files_are_untouched_by_refused_writes(store: DuckDBStore, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(SqlRejected):
        store.user_sql(f"COPY (SELECT 1) TO '{target}'", project="alpha")
    assert not target.exists()
