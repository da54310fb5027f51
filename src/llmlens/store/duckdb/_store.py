"""The embedded DuckDB store: one file under the data directory, group-committed writes."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from llmlens._private_files import make_private_dir, restrict_to_owner
from llmlens.model import Feedback, Score, Span

from .._alert_state import AlertRecord, StoredAlertRule
from .._columns import FEEDBACK_COLUMNS, SPAN_COLUMNS, ColumnType
from .._located import Located
from .._protocol import QueryResult, ScoreWriteResult, SqlFailed, Store, WriteResult
from .._recent_ids import RecentIds, id_hash
from .._scoping import ProjectStore, confined_elsewhere, current_project
from ..rollups._memo import RollupMemo
from . import _alerts, _scores
from ._batch_columns import SpanInsert, column_values, select_list, stage, staged_types, to_json
from ._pending_rollups import PendingRollups
from ._rollups import RollupMaintainer, rebuild_rollups, signed_delta_statements
from ._sandbox import NOW_AS_TIMESTAMP, check_user_sql
from ._schema import _SQL_TYPES, migrate
from ._write_indexes import READS_TABLES, WriteIndexes, deleted_table
from ._write_indexes import TABLES as INDEX_TABLES

# Columns `update_span_fields` may overwrite: not the identity, kind or timing of a span.
_UPDATABLE = frozenset(col for col, _, _ in SPAN_COLUMNS) - {"project", "trace_id", "span_id", "kind", "timestamp"}
# Span ids remembered for dedupe, and how many are reloaded from the file at start-up.
_RECENT_IDS = 4_000_000
# Ids reloaded at start-up: a client retries within seconds to minutes of the first try.
_RELOADED_IDS = 1_000_000
# A trusted DELETE of spans (retention): their rollup aggregates are taken out with them.
_SPAN_DELETE = re.compile(r"^\s*DELETE\s+FROM\s+store\.spans\s+WHERE\s+(?P<where>.+?)\s*;?\s*$", re.S | re.I)
_UPDATED_SPANS = "project = ? AND span_id IN (SELECT span_id FROM updated_span_ids)"
_COST_COLUMNS = ("cost_usd", "computed_cost_usd", "cost_source", "price_version")
_COST_STAGED = [("span_id", "VARCHAR"), ("cost_usd", "DOUBLE"), ("computed_cost_usd", "DOUBLE")]
_COST_STAGED += [("cost_source", "VARCHAR"), ("price_version", "VARCHAR")]
_FEEDBACK_STAGED = staged_types(FEEDBACK_COLUMNS)
# SQL that reads a rollup table: committed spans not folded in yet are folded first.
_READS_ROLLUPS = re.compile(r"\b(?:rollup_hour|rollup_day|sketch_hour|sketch_day|user_day)\b", re.IGNORECASE)


_EPOCH = dt.datetime(1970, 1, 1)


class DuckDBStore:
    """Spans and feedback in `<data_dir>/llmlens.duckdb`."""

    def __init__(self, path: Path | str, *, read_only: bool = False, memory_mb: int = 0) -> None:
        self.path = Path(path)
        self.url = f"duckdb://{self.path}"
        if not read_only:
            make_private_dir(self.path.parent)
        self._con = duckdb.connect(str(self.path), read_only=read_only)
        if not read_only:
            # DuckDB makes its file with the umask's mode: narrow it before any span is written. Its WAL
            # is remade at each checkpoint; the server's 0077 umask covers that (see _private_files).
            for data_file in (self.path, self.path.with_name(self.path.name + ".wal")):
                restrict_to_owner(data_file)
        # Time is UTC everywhere: NOW() and TIMESTAMP comparisons in user SQL depend on it.
        self._con.execute("SET TimeZone = 'UTC'")
        if memory_mb > 0:
            # Bounds the buffer cache (DuckDB's default is 80 % of RAM); bigger queries spill to disk.
            self._con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
        self._write_lock = threading.Lock()
        self._read_only = read_only
        self._local = threading.local()
        self._alert_tables_ready = False
        if not read_only:
            migrate(self._con)
        self._recent = RecentIds(_RECENT_IDS)
        self._rollups = RollupMaintainer()
        # Whole-bucket rollup reads kept until those buckets change (a read-only open cannot fold: none).
        self._memo = None if read_only else RollupMemo()
        # Commits store spans only; their rollup deltas are folded in afterwards (`_pending_rollups.py`).
        self._pending = PendingRollups(self._rollups)
        # The query layer reads store.rollup_* / store.sketch_* / store.user_day for aggregate questions
        # (a read-only open of a file from before the rollups answers from raw spans).
        self.has_rollups = bool(
            self._con.execute(
                "SELECT COUNT(*) FROM duckdb_tables() WHERE schema_name = 'store' AND table_name = 'user_day'"
            ).fetchone()[0]  # type: ignore[index]
        )
        if self.has_rollups:
            # Spans a killed process committed but did not fold: folded now, or, read-only, the raw spans answer.
            unfolded = self._pending.open(self._con, writable=not read_only)
            self.has_rollups = not (read_only and unfolded)
        # Id maps, feedback joined to its calls, page rollups: caught up with what a killed process committed.
        self._indexes = WriteIndexes()
        self._indexes.open(self._con, writable=not read_only)
        if not read_only:
            self._load_recent_ids()
        # Each column converted from the batch's Python objects once, straight into the table.
        self._span_insert = SpanInsert("store.spans", SPAN_COLUMNS)
        self._feedback_insert = (
            f"INSERT INTO store.feedback SELECT {select_list(FEEDBACK_COLUMNS)}, ?::TIMESTAMP FROM feedback_batch b "
            "WHERE NOT EXISTS (SELECT 1 FROM store.feedback f WHERE f.project = b.project "
            "AND f.feedback_id = b.feedback_id)"
        )

    # -- writes ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The write lock. The rollup buckets changed under it are reported to the memo as it is released,
        after their transactions have committed (a rolled-back change is reported too, which only costs
        a read)."""
        with self._write_lock:
            try:
                yield
            finally:
                changes = self._rollups.drain_changes()
                if self._memo is not None:
                    for first, last in changes:
                        self._memo.changed(first, last)

    def _load_recent_ids(self) -> None:
        # Fetched in chunks (millions of tuples at once cost hundreds of MB) and unsorted (sorting the last
        # hour of a 10M-span store held 2 GB); `ingested_at` grows with the file, so zone maps skip the rest.
        cur = self._con.execute(
            "SELECT project, span_id FROM store.spans WHERE ingested_at >= "
            "(SELECT max(ingested_at) - INTERVAL 1 HOUR FROM store.spans) LIMIT ?",
            [_RELOADED_IDS],
        )
        while rows := cur.fetchmany(100_000):
            self._recent.add_many(id_hash(p, s) for p, s in rows)

    def write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> WriteResult:
        unique_feedback = list({(f.project, f.feedback_id): f for f in feedback}.values())
        with self._writing():
            by_hash = {id_hash(s.project, s.span_id): s for s in spans}
            hashes = list(by_hash)
            seen = self._recent.contains_many(hashes)
            new_hashes = [h for h, dup in zip(hashes, seen, strict=True) if not dup]
            unique_spans = [by_hash[h] for h in new_hashes]
            con = self._con
            stamp = self._pending.next_stamp()
            con.execute("BEGIN TRANSACTION")
            try:
                spans_written = self._span_insert.run(con, unique_spans, stamp) if unique_spans else 0
                feedback_written = self._insert_feedback(con, unique_feedback, stamp) if unique_feedback else 0
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            self._recent.add_many(new_hashes)
            self._pending.committed(spans_written)
            self._indexes.committed(spans_written + feedback_written)
        return WriteResult(
            spans_written=spans_written,
            spans_duplicate=len(spans) - spans_written,
            feedback_written=feedback_written,
            feedback_duplicate=len(feedback) - feedback_written,
        )

    def _insert_feedback(self, con: duckdb.DuckDBPyConnection, feedback: list[Feedback], stamp: dt.datetime) -> int:
        stage(con, "feedback_batch", _FEEDBACK_STAGED, zip(*column_values(feedback, FEEDBACK_COLUMNS), strict=True))
        # Stamped like the commit's spans: `_write_indexes.py` catches up with feedback by this stamp.
        row = con.execute(self._feedback_insert, [stamp]).fetchone()
        return int(row[0]) if row else 0

    # -- rollup folds (`_pending_rollups.py`) ------------------------------------------------------

    def fold_due_rollups(self) -> None:
        """Fold committed spans into the rollups if a fold is due (the writer calls this between commits,
        after answering the requests of the last one, and when idle)."""
        if self._pending.due or self._indexes.due:
            with self._writing():
                if self._pending.due or self._indexes.due:
                    self._fold(self._con)

    def fold_rollups(self) -> int:
        """Fold every committed span into the rollups now; returns how many it folded."""
        with self._writing():
            return self._fold(self._con)

    def _fold(self, con: duckdb.DuckDBPyConnection) -> int:
        self._indexes.catch_up(con)
        if not self.has_rollups:
            return 0
        folded = self._pending.fold(con)
        if self._rollups.due:
            self._rollups.compact(con)
        return folded

    def _fold_before_reading(self, sql: str) -> None:
        if (self._pending.pending and _READS_ROLLUPS.search(sql)) or (
            self._indexes.pending and READS_TABLES.search(sql)
        ):
            with self._writing():
                if self._pending.pending or self._indexes.pending:
                    self._fold(self._con)

    def update_costs(self, spans: Sequence[Span]) -> int:
        """Overwrite the cost columns of stored spans; their rollup costs follow in the same transaction."""
        if not spans:
            return 0
        by_project: dict[str, list[Span]] = {}
        for span in spans:
            by_project.setdefault(span.project, []).append(span)
        updated = 0
        with self._writing():
            con = self._con
            self._fold(con)  # the spans' deltas are taken out below: they must be in first
            con.execute("BEGIN TRANSACTION")
            try:
                for project, group in by_project.items():
                    updated += self._update_project_costs(con, project, group)
                    self._indexes.spans_updated(con, project, [s.span_id for s in group], _COST_COLUMNS)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return updated

    def _update_project_costs(self, con: duckdb.DuckDBPyConnection, project: str, spans: list[Span]) -> int:
        rows = [(s.span_id, s.cost_usd, s.computed_cost_usd, s.cost_source, s.price_version) for s in spans]
        stage(con, "cost_batch", _COST_STAGED, rows)
        if self.has_rollups:
            # The spans' old costs leave the rollups and their new ones join, as in update_span_fields.
            con.execute("CREATE OR REPLACE TEMP TABLE updated_span_ids AS SELECT span_id FROM cost_batch")
            self._reaggregate(con, _UPDATED_SPANS, [project], -1)
        row = con.execute(
            "UPDATE store.spans s SET cost_usd = b.cost_usd, "
            "computed_cost_usd = b.computed_cost_usd, cost_source = b.cost_source, "
            "price_version = b.price_version FROM cost_batch b "
            "WHERE s.project = ? AND s.span_id = b.span_id",
            [project],
        ).fetchone()
        if self.has_rollups:
            self._reaggregate(con, _UPDATED_SPANS, [project], 1)
            con.execute("DROP TABLE updated_span_ids")
        return int(row[0]) if row else 0

    def update_span_fields(self, project: str, updates: Mapping[str, Mapping[str, Any]]) -> int:
        """Overwrite some columns of stored spans: {span_id: {column: value}}; one UPDATE per column set."""
        if confined_elsewhere(project):  # a request confined to one project changes no other's spans
            return 0
        kinds = {col: kind for col, kind, _ in SPAN_COLUMNS}
        groups: dict[tuple[str, ...], list[str]] = {}
        for span_id, fields in updates.items():
            cols = tuple(sorted(fields))
            for col in cols:
                if col not in _UPDATABLE or col not in kinds:
                    raise ValueError(f"column {col!r} cannot be updated")
            if cols:
                groups.setdefault(cols, []).append(span_id)
        updated = 0
        with self._writing():
            con = self._con
            self._fold(con)  # the spans' deltas are taken out below: they must be in first
            con.execute("BEGIN TRANSACTION")
            try:
                if self.has_rollups:
                    # The spans leave their old rollup keys (e.g. no feature yet) and join their new ones.
                    stage(con, "updated_span_ids", [("span_id", "VARCHAR")], [(i,) for i in updates])
                    self._reaggregate(con, _UPDATED_SPANS, [project], -1)
                updated = self._update_columns(con, project, groups, updates, kinds)
                self._indexes.spans_updated(con, project, list(updates), {c for cols in groups for c in cols})
                if self.has_rollups:
                    self._reaggregate(con, _UPDATED_SPANS, [project], 1)
                    con.execute("DROP TABLE updated_span_ids")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return updated

    def _update_columns(
        self,
        con: duckdb.DuckDBPyConnection,
        project: str,
        groups: dict[tuple[str, ...], list[str]],
        updates: Mapping[str, Mapping[str, Any]],
        kinds: dict[str, ColumnType],
    ) -> int:
        updated = 0
        for cols, ids in groups.items():
            columns = [(col, "VARCHAR" if kinds[col] == "json" else _SQL_TYPES[kinds[col]]) for col in cols]
            json_cols = {col for col in cols if kinds[col] == "json"}
            rows = [
                (i, *(to_json(updates[i][col]) if col in json_cols else updates[i][col] for col in cols)) for i in ids
            ]
            # A table per column set: its columns differ from the last one's.
            stage(con, "update_batch", [("span_id", "VARCHAR"), *columns], rows, replace=True)
            sets = ", ".join(f'"{col}" = b."{col}"::{_SQL_TYPES[kinds[col]]}' for col in cols)
            row = con.execute(
                f"UPDATE store.spans s SET {sets} FROM update_batch b WHERE s.project = ? AND s.span_id = b.span_id",
                [project],
            ).fetchone()
            updated += int(row[0]) if row else 0
        return updated

    def rebuild_rollups(self, since_us: int | None = None) -> None:
        """Recompute the rollups from raw spans (all, or from the day of `since_us` on)."""
        since = None if since_us is None else _EPOCH + dt.timedelta(microseconds=since_us)
        with self._writing():
            con = self._con
            if since is not None:
                self._fold(con)  # the days before `since` are kept as they are: they must hold every span
            self._indexes.catch_up(con)
            self._rollups.compact(con)
            con.execute("BEGIN TRANSACTION")
            try:
                rebuild_rollups(con, since)
                self._indexes.rebuild_rollups(con)
                folded_through = self._pending.rebuilt(con) if since is None else None
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            if folded_through is not None:
                self._pending.caught_up(folded_through)
            if self._memo is not None:
                self._memo.changed_everything()

    def compact_rollups(self) -> None:
        """Fold committed spans in and merge the rows appended since the last compaction (done by
        writes as they go, and at close)."""
        with self._writing():
            self._fold(self._con)
            self._rollups.compact(self._con)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> None:
        with self._writing():
            deleting = _SPAN_DELETE.match(sql) if self.has_rollups else None
            # Deleted spans or feedback leave the id maps, feedback_calls and page rollups (`_write_indexes.py`).
            indexed = deleted_table(sql) if self._indexes.ready else None
            if deleting is None and indexed is None:
                self._con.execute(sql, params)
                return
            # Deleted spans (retention) take their aggregates out of the rollups in the same transaction.
            con = self._con
            self._fold(con)
            con.execute("BEGIN TRANSACTION")
            try:
                if deleting is not None:
                    self._reaggregate(con, deleting["where"], params, -1)
                gone = self._indexes.deleting(con, *indexed, params) if indexed is not None else None
                con.execute(sql, params)
                if gone is not None:
                    self._indexes.deleted(con, gone)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def _reaggregate(
        self, con: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any] | dict[str, Any], sign: int
    ) -> None:
        """Add (sign 1) or take out (sign -1) the rollup aggregates of the stored spans matching `where`."""
        con.execute(f"CREATE OR REPLACE TEMP TABLE rollup_source AS SELECT * FROM store.spans WHERE {where}", params)
        bounds = con.execute("SELECT min(timestamp), max(timestamp) FROM rollup_source").fetchone()
        if bounds is not None and bounds[0] is not None:
            for sql in signed_delta_statements("rollup_source", sign):
                con.execute(sql)
            self._rollups.touched(bounds[0], bounds[1])
        con.execute("DROP TABLE rollup_source")

    # -- scores (`_scores.py`) --------------------------------------------------------------------

    def write_scores(self, scores: Sequence[Score]) -> ScoreWriteResult:
        if not scores:
            return ScoreWriteResult(written=0, duplicate=0)
        with self._writing():
            con = self._con
            stamp = self._pending.next_stamp()
            con.execute("BEGIN TRANSACTION")
            try:
                result = _scores.write_scores(con, scores, stamp)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            self._indexes.committed(result.written)
        return result

    def score_names(self, project: str) -> dict[str, str]:
        return _scores.score_names(self._cursor(), project)

    # -- alert state (`_alerts.py`) ---------------------------------------------------------------

    def ensure_alert_tables(self) -> None:
        if not self._alert_tables_ready:
            with self._writing():
                _alerts.create_alert_tables(self._con)
            self._alert_tables_ready = True

    def claim_alert_transition(self, record: AlertRecord, claimant: str) -> bool:
        self.ensure_alert_tables()
        with self._writing():
            return _alerts.claim_transition(self._con, record, claimant)

    def alert_history(
        self,
        *,
        project: str | None = None,
        rule: str | None = None,
        latest_only: bool = False,
        limit: int | None = None,
    ) -> list[AlertRecord]:
        return _alerts.read_history(self._cursor(), project=project, rule=rule, latest_only=latest_only, limit=limit)

    def alert_rules(self) -> list[StoredAlertRule]:
        return _alerts.read_rules(self._cursor())

    def save_alert_rule(self, name: str, spec: str | None, at: dt.datetime) -> None:
        self.ensure_alert_tables()
        with self._writing():
            _alerts.save_rule(self._con, name, spec, at)

    # -- reads ----------------------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur

    def _scoped_cursor(self, project: str) -> duckdb.DuckDBPyConnection:
        """A per-thread cursor whose views see only `project` (DuckDB variables are per cursor)."""
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "scoped_cursor", None)
        if cur is None:
            cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.scoped_cursor = cur
            self._local.scoped_project = None
        if self._local.scoped_project != project:
            cur.execute("SET VARIABLE llmlens_project = ?", [project])
            self._local.scoped_project = project
        return cur

    def scoped(self, project: str) -> Store:
        return ProjectStore(self, project)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> QueryResult:
        project = current_project.get()
        if project is not None:  # inside a request confined to one project
            return self.query_in_project(sql, params, project)
        self._fold_before_reading(sql)
        return self._run(self._cursor(), sql, params)

    def query_in_project(self, sql: str, params: Sequence[Any] | dict[str, Any], project: str) -> QueryResult:
        self._fold_before_reading(sql)
        # The views filter on the cursor's variable; base tables named directly are filtered here.
        sql = _BASE_TABLE.sub(_filtered_base_table, sql)
        return self._run(self._scoped_cursor(project), sql, params)

    @staticmethod
    def _run(cur: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any]) -> QueryResult:
        cur.execute(sql, params)
        columns = [d[0] for d in cur.description or []]
        types = [str(d[1]) for d in cur.description or []]
        rows = [list(r) for r in cur.fetchall()]
        return QueryResult(columns=columns, rows=rows, types=types)

    # -- lookups by id, page rollups (`_write_indexes.py`) -------------------------------------------

    def rollup_memo(self) -> RollupMemo | None:
        """The memo of whole-bucket rollup reads, once every committed span is in the rollups (read under
        its generation taken after this call); None without one."""
        if self._memo is None or not self.has_rollups:
            return None
        if self._pending.pending:
            with self._writing():
                if self._pending.pending:
                    self._fold(self._con)
        return self._memo

    @property
    def page_rollups(self) -> bool:
        """Whether feedback_calls and the page rollups hold every stored row (a read-only open of a store
        with rows past them, or from before them, answers from raw rows)."""
        return self._indexes.ready and (not self._read_only or self._indexes.caught_up)

    def locate_ids(self, project: str, ids: Sequence[str], source: str = "spans") -> Located | None:
        """The hours that may hold spans (`source` "spans") or feedback ("feedback") with any of `ids`;
        None when the store keeps no usable id map (then every row is read)."""
        return self._indexes.locate(self._cursor(), project, ids, source)

    def user_sql(self, query: str, *, project: str, max_rows: int = 10_000, timeout_s: float = 30.0) -> QueryResult:
        project = current_project.get() or project
        cur = self._con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            check_user_sql(cur, query)
            cur.execute("SET VARIABLE llmlens_project = ?", [project])
            cur.execute(NOW_AS_TIMESTAMP)
            timer = threading.Timer(timeout_s, cur.interrupt)
            timer.start()
            try:
                cur.execute(query)
                rows = cur.fetchmany(max_rows + 1)
            except duckdb.InterruptException:
                raise SqlFailed(f"the query ran longer than the {timeout_s:g} s limit and was stopped") from None
            except duckdb.Error as exc:
                raise SqlFailed(_engine_message(exc)) from None
            finally:
                timer.cancel()
            columns = [d[0] for d in cur.description or []]
            types = [str(d[1]) for d in cur.description or []]
            truncated = len(rows) > max_rows
            return QueryResult(
                columns=columns, rows=[list(r) for r in rows[:max_rows]], types=types, truncated=truncated
            )
        except duckdb.Error as exc:
            raise SqlFailed(_engine_message(exc)) from None
        finally:
            cur.close()

    def close(self) -> None:
        with self._writing():
            if not self._read_only:
                self._fold(self._con)
                self._rollups.compact(self._con)
            self._con.close()


# Every stored table with a project column (spans, feedback, scores, the rollups, `_write_indexes.TABLES`).
_BASE_TABLE = re.compile(
    r"\bstore\s*\.\s*(spans|feedback|scores|score_names|rollup_hour|rollup_day|sketch_hour|sketch_day|user_day|"
    + "|".join(t.removeprefix("store.") for t in INDEX_TABLES)
    + r")\b(?!\s*\.)",
    re.IGNORECASE,
)


def _filtered_base_table(match: re.Match[str]) -> str:
    table = match.group(1).lower()
    return f"(SELECT * FROM store.{table} WHERE project = getvariable('llmlens_project'))"


def _engine_message(exc: Exception) -> str:
    text = str(exc).strip()
    return text.split("\n\nLINE")[0] if text else type(exc).__name__
