"""The ClickHouse store: the same Store protocol as DuckDB, on a server several llmlens share."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clickhouse_driver.errors import Error as DriverError
from clickhouse_driver.errors import ServerException

from llmlens.model import Feedback, Score, Span

from .._alert_state import AlertRecord, StoredAlertRule
from .._columns import FEEDBACK_COLUMNS, SPAN_COLUMNS, ColumnType
from .._located import Located
from .._protocol import QueryResult, ScoreWriteResult, SqlFailed, SqlRejected, Store, WriteResult
from .._scoping import ProjectStore, confined_elsewhere, current_project
from . import _alerts, _id_index, _rollups, _scores
from ._cluster import Layout, check_cluster, replica_addresses, wait_for_mutations_on_every_replica
from ._connection import ClickHouseUrl, ClientFactory, ClientPool, server_features
from ._sandbox import inline_filtered_views, rewrite_user_sql, scope_trusted_sql
from ._schema import FEEDBACK_TABLE, SCHEMA_VERSION, SCORES_TABLE, SPANS_TABLE, SchemaOutdated, migrate
from ._translate import Translator, bind_parameters, parse_duckdb
from ._translation_cache import TranslationCache

# A retried span carries its original start time; look for an earlier copy this far around it.
_DEDUPE_WINDOW_US = 3_600_000_000
# Results shown as booleans although ClickHouse 18.16 stores them as UInt8.
_BOOL_COLUMNS = frozenset({col for col, kind, _ in SPAN_COLUMNS if kind == "bool"} | {"success"})
_COST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cost_usd", "Float64"),
    ("computed_cost_usd", "Float64"),
    ("cost_source", "String"),
    ("price_version", "String"),
)
# Columns `update_span_fields` may overwrite (not ids, kind or time: they are in the sort key).
_UPDATABLE_TYPES: dict[str, ColumnType] = {
    col: kind
    for col, kind, _ in SPAN_COLUMNS
    if col not in ("project", "trace_id", "span_id", "kind", "name", "status", "timestamp")
}
_CH_TYPES: dict[ColumnType, str] = {
    "str": "String",
    "json": "String",
    "int": "Int64",
    "float": "Float64",
    "bool": "UInt8",
}
_SERVER_TIMEOUT_CODE = 159
_READERS = 4  # reads of one page run at once (each worker keeps its own connection)
_UPDATE_CHUNK = 5_000
# Mutations name every span id in their text: allow statements far above the 256 KiB default.
_BIG_QUERY = {"max_query_size": 256 * 1024 * 1024}


class _Values:
    """One value under the attribute name `_column_values` reads."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _to_json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _column_values(records: Sequence[Any], col: str, kind: ColumnType, attr: str) -> list[Any]:
    values = [getattr(r, attr) for r in records]
    if kind == "json":
        if col == "attributes":
            return [_to_json(v) if v else None for v in values]
        return [_to_json(v) for v in values]
    if kind == "bool":
        return [None if v is None else int(bool(v)) for v in values]
    if kind == "int":
        return [None if v is None else int(v) for v in values]
    if kind == "float":
        return [None if v is None else float(v) for v in values]
    if kind == "str":
        return [None if v is None else str(v) for v in values]
    return values


def _columns_for_insert(
    records: Sequence[Any], columns: tuple[tuple[str, ColumnType, str], ...]
) -> tuple[list[str], list[list[Any]]]:
    names: list[str] = []
    data: list[list[Any]] = []
    for col, kind, attr in columns:
        if kind == "timestamp":
            names.append("timestamp_us")
            data.append([int(getattr(r, attr)) for r in records])
            continue
        names.append(col)
        data.append(_column_values(records, col, kind, attr))
    return names, data


def _server_message(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    text = str(text).split("Stack trace:")[0].strip()
    return text.removeprefix("DB::Exception: ").strip() or type(exc).__name__


def _result_value(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class ClickHouseStore:
    """Spans and feedback in a ClickHouse database; any number of llmlens servers may share it."""

    # How long a claimant of an alert transition waits before reading the winner (`_alerts.py`):
    # more than the 1 s resolution of ClickHouse 18.16's clock plus the duration of an insert.
    alert_claim_settle_s = 2.0
    # The dashboards read the rollup tables of `_rollups.py`, as they read DuckDB's.
    has_rollups = True
    schema_version = SCHEMA_VERSION  # what this code makes; `schema_found` is what the database had

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 10.0,
        upgrade: bool = False,
        client_factory: ClientFactory | None = None,
    ) -> None:
        """Open (and on a new database, create) the store. A database made by an older llmlens is refused
        with the `llmlens migrate` command to run, unless `upgrade` (what that command passes). On a
        cluster (`?cluster=NAME`) only `upgrade` creates anything (`_cluster.py`)."""
        self.config = ClickHouseUrl.parse(url)
        self.url = self.config.redacted()
        self.layout = Layout.of(self.config)
        self._pool = ClientPool(self.config, connect_timeout_s=connect_timeout_s, factory=client_factory)
        setup = self._pool.new_client(database="default")
        try:
            self._prepare_database(setup, upgrade=upgrade)
            self.features = server_features(setup)
        except Exception:
            self._pool.close()
            raise
        finally:
            setup.disconnect()
        self._translator = Translator(self.features)
        self._translations = TranslationCache()
        self._readers: ThreadPoolExecutor | None = None  # `read_together`'s workers, made on first use
        self._readers_lock = threading.Lock()
        self._rollups = _rollups.rollup_tables(self.features)
        self._write_lock = threading.Lock()
        # On a cluster `llmlens migrate` made them; a claim there also waits for replication between nodes.
        self._alert_tables_ready = self.layout.clustered
        if self.layout.clustered:
            self.alert_claim_settle_s = 3.0
        self._replicas: list[tuple[str, int]] | None = None
        try:
            self.schema_found = migrate(
                self._pool.client(),
                self.features,
                self.config.retention_days,
                upgrade=upgrade,
                store_url=self.url,
                layout=self.layout,
            )
        except Exception:
            self._pool.close()
            raise

    def _prepare_database(self, setup: Any, *, upgrade: bool) -> None:
        database = self.config.database
        if not self.layout.clustered:
            setup.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            return
        check_cluster(setup, self.layout, self.url)
        if upgrade:
            setup.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`{self.layout.on_cluster}")
        elif not setup.execute("SELECT count() FROM system.databases WHERE name = %(db)s", {"db": database})[0][0]:
            raise SchemaOutdated(
                f"this ClickHouse server has no database {database!r} yet: run `llmlens migrate --store {self.url}` "
                "once (with every node of the cluster up), then start the servers"
            )

    # -- writes ---------------------------------------------------------------------------------

    def write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> WriteResult:
        unique_spans = list({(s.project, s.span_id): s for s in spans}.values())
        unique_feedback = list({(f.project, f.feedback_id): f for f in feedback}.values())
        with self._write_lock:
            spans_written = self._insert_spans(unique_spans) if unique_spans else 0
            feedback_written = self._insert_feedback(unique_feedback) if unique_feedback else 0
        return WriteResult(
            spans_written=spans_written,
            spans_duplicate=len(spans) - spans_written,
            feedback_written=feedback_written,
            feedback_duplicate=len(feedback) - feedback_written,
        )

    def _existing(
        self, table: str, id_column: str, keys: list[tuple[str, str]], time_filter: str
    ) -> set[tuple[str, str]]:
        """(project, id) pairs already stored: a batch re-sent after a lost answer writes nothing twice."""
        rows = self._pool.client().execute(
            f"SELECT project, {id_column} FROM {table} WHERE {time_filter}(project, {id_column}) IN _batch",
            external_tables=[
                {
                    "name": "_batch",
                    "structure": [("project", "String"), ("id", "String")],
                    "data": [{"project": p, "id": i} for p, i in keys],
                }
            ],
        )
        return {(str(p), str(i)) for p, i in rows}

    def _insert_spans(self, spans: list[Span]) -> int:
        starts = [s.start_us for s in spans]
        lo = (min(starts) - _DEDUPE_WINDOW_US) // 1_000_000
        hi = (max(starts) + _DEDUPE_WINDOW_US) // 1_000_000 + 1
        time_filter = f"timestamp >= toDateTime({lo}, 'UTC') AND timestamp <= toDateTime({hi}, 'UTC') AND "
        seen = self._existing(SPANS_TABLE, "span_id", [(s.project, s.span_id) for s in spans], time_filter)
        fresh = [s for s in spans if (s.project, s.span_id) not in seen]
        if not fresh:
            return 0
        names, data = _columns_for_insert(fresh, SPAN_COLUMNS)
        names.append("documents_count")
        data.append([len(s.documents) if isinstance(s.documents, list) else None for s in fresh])
        self._insert(SPANS_TABLE, names, data)
        return len(fresh)

    def _insert_feedback(self, feedback: list[Feedback]) -> int:
        seen = self._existing(FEEDBACK_TABLE, "feedback_id", [(f.project, f.feedback_id) for f in feedback], "")
        fresh = [f for f in feedback if (f.project, f.feedback_id) not in seen]
        if not fresh:
            return 0
        names, data = _columns_for_insert(fresh, FEEDBACK_COLUMNS)
        self._insert(FEEDBACK_TABLE, names, data)
        return len(fresh)

    def _insert(self, table: str, names: list[str], data: list[list[Any]]) -> None:
        columns = ", ".join(f"`{n}`" for n in names)
        self._pool.client().execute(f"INSERT INTO {table} ({columns}) VALUES", data, columnar=True)

    def update_costs(self, spans: Sequence[Span]) -> int:
        """One ALTER TABLE ... UPDATE per project (waited for); the rollups follow (`_update_rolled_up`)."""
        if not spans:
            return 0
        by_project: dict[str, dict[str, Span]] = defaultdict(dict)
        for s in spans:
            by_project[s.project][s.span_id] = s
        updated = 0
        with self._write_lock:
            for project, by_id in by_project.items():
                all_ids = list(by_id)
                for start in range(0, len(all_ids), _UPDATE_CHUNK):
                    chunk = all_ids[start : start + _UPDATE_CHUNK]
                    updated += self._update_chunk(project, {i: by_id[i] for i in chunk})
        return updated

    def _update_chunk(self, project: str, by_id: dict[str, Span]) -> int:
        client = self._pool.client()
        ids = list(by_id)
        rows = client.execute(
            f"SELECT count() FROM {SPANS_TABLE} WHERE project = %(project)s AND span_id IN _ids",
            {"project": project},
            external_tables=[{"name": "_ids", "structure": [("id", "String")], "data": [{"id": i} for i in ids]}],
        )
        matched = int(rows[0][0])
        if not matched:
            return 0
        assignments = ", ".join(
            f"`{col}` = {self._transform(col, ch_type, ids, [getattr(by_id[i], col) for i in ids])}"
            for col, ch_type in _COST_COLUMNS
        )
        id_list = ", ".join(_quote(i) for i in ids)
        where = f"project = {_quote(project)} AND span_id IN ({id_list})"
        mutation = f"ALTER TABLE {self.layout.target(SPANS_TABLE)} UPDATE {assignments} WHERE {where}"
        self._update_rolled_up(mutation, where)
        return matched

    def update_span_fields(self, project: str, updates: Mapping[str, Mapping[str, Any]]) -> int:
        """One ALTER TABLE ... UPDATE per column set (waited for); the rollups follow (`_update_rolled_up`)."""
        if confined_elsewhere(project):  # a request confined to one project changes no other's spans
            return 0
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for span_id, fields in updates.items():
            cols = tuple(sorted(fields))
            for col in cols:
                if col not in _UPDATABLE_TYPES:
                    raise ValueError(f"column {col!r} cannot be updated")
            if cols:
                groups[cols].append(span_id)
        updated = 0
        with self._write_lock:
            for cols, all_ids in groups.items():
                for start in range(0, len(all_ids), _UPDATE_CHUNK):
                    ids = all_ids[start : start + _UPDATE_CHUNK]
                    updated += self._update_fields_chunk(project, cols, ids, updates)
        return updated

    def _update_fields_chunk(
        self, project: str, cols: tuple[str, ...], ids: list[str], updates: Mapping[str, Mapping[str, Any]]
    ) -> int:
        client = self._pool.client()
        rows = client.execute(
            f"SELECT count() FROM {SPANS_TABLE} WHERE project = %(project)s AND span_id IN _ids",
            {"project": project},
            external_tables=[{"name": "_ids", "structure": [("id", "String")], "data": [{"id": i} for i in ids]}],
        )
        matched = int(rows[0][0])
        if not matched:
            return 0
        assignments = []
        for col in cols:
            kind = _UPDATABLE_TYPES[col]
            values = _column_values([_Values(updates[i][col]) for i in ids], col, kind, "value")
            assignments.append(f"`{col}` = {self._transform(col, _CH_TYPES[kind], ids, values)}")
        id_list = ", ".join(_quote(i) for i in ids)
        where = f"project = {_quote(project)} AND span_id IN ({id_list})"
        mutation = f"ALTER TABLE {self.layout.target(SPANS_TABLE)} UPDATE {', '.join(assignments)} WHERE {where}"
        self._update_rolled_up(mutation, where)
        return matched

    @staticmethod
    def _transform(col: str, ch_type: str, ids: list[str], values: list[Any]) -> str:
        # transform() maps each span id to its new value; a parallel flag array carries NULLs (18.16 has
        # no Nullable array elements in transform()).
        id_array = "[" + ", ".join(_quote(i) for i in ids) + "]"
        nulls = "[" + ", ".join("1" if v is None else "0" for v in values) + "]"
        if ch_type == "Float64":
            # repr() of a float always has a '.' or an exponent: the array is Float64, as transform() needs.
            vals = "[" + ", ".join(repr(0.0 if v is None else float(v)) for v in values) + "]"
            default = f"ifNull(`{col}`, toFloat64(0))"
        elif ch_type in ("Int64", "UInt8"):
            vals = "[" + ", ".join(f"to{ch_type}({0 if v is None else int(v)})" for v in values) + "]"
            default = f"ifNull(`{col}`, to{ch_type}(0))"
        else:
            vals = "[" + ", ".join("''" if v is None else _quote(str(v)) for v in values) + "]"
            default = f"ifNull(`{col}`, '')"
        value = f"transform(span_id, {id_array}, {vals}, {default})"
        return f"if(transform(span_id, {id_array}, {nulls}, 0) = 1, NULL, {value})"

    def _mutate(self, statement: str) -> None:
        """Run an ALTER ... UPDATE/DELETE and wait until it is applied: with `mutations_sync` where the
        server has it, else by watching system.mutations (18.16). On a cluster the statement runs ON CLUSTER
        and is waited for on every replica that answers."""
        client = self._pool.client()
        if self.layout.clustered:
            client.execute(statement, settings=_BIG_QUERY)
            self._wait_on_replicas()
            return
        if self.features.mutations_sync:
            client.execute(statement, settings={**_BIG_QUERY, "mutations_sync": 1})
            return
        client.execute(statement, settings=_BIG_QUERY)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            rows = client.execute(
                "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0"
            )
            if int(rows[0][0]) == 0:
                return
            time.sleep(0.05)
        raise TimeoutError("ClickHouse did not finish a mutation within 600 s")

    def _wait_on_replicas(self) -> None:
        if self._replicas is None:
            self._replicas = replica_addresses(self._pool.client(), self.layout)
        wait_for_mutations_on_every_replica(self.config, self._replicas)

    # -- rollups (`_rollups.py`) ------------------------------------------------------------------

    def _roll(self, where: str, sign: int) -> None:
        """Add (1) or take out (-1) the aggregates of the stored spans matching `where` in every rollup."""
        client = self._pool.client()
        for table in self._rollups:
            client.execute(_rollups.signed_insert(table, SPANS_TABLE, where, sign), settings=_BIG_QUERY)

    def _update_rolled_up(self, mutation: str, where: str) -> None:
        """Change stored spans and keep the rollups equal to them: their old aggregates out, the mutation,
        their new aggregates in (rows that cancel out merge away). Readers in between see those spans in
        no rollup row, never in two."""
        self._roll(where, -1)
        self._mutate(mutation)
        self._roll(where, 1)

    def _merge_rollup_partitions(self, first: dt.datetime, last: dt.datetime) -> None:
        """Merge the months of [first, last] now, so the rows that cancelled out are gone from them."""
        month = dt.datetime(first.year, first.month, 1)
        client = self._pool.client()
        while month <= last:
            for table in self._rollups:
                partition = month.year * 100 + month.month
                client.execute(f"OPTIMIZE TABLE {self.layout.target(table.table)} PARTITION {partition} FINAL")
            month = dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1)

    def rebuild_rollups(self, since_us: int | None = None) -> None:
        """Recompute the rollups from the stored spans (from the day of `since_us` on). Run it with ingest
        stopped: spans arriving meanwhile could be counted twice."""
        where = ""
        with self._write_lock:
            if since_us is not None:
                day = dt.datetime.fromtimestamp(since_us / 1e6, dt.UTC).replace(
                    tzinfo=None, hour=0, minute=0, second=0, microsecond=0
                )
                start = int(_epoch(day))
                where = f"timestamp >= toDateTime({start}, 'UTC')"
                for table in self._rollups:
                    since = f"bucket >= toDateTime({start}, 'UTC')"
                    self._mutate(f"ALTER TABLE {self.layout.target(table.table)} DELETE WHERE {since}")
            else:
                for table in self._rollups:
                    self._pool.client().execute(f"TRUNCATE TABLE {self.layout.target(table.table)}")
            self._roll(where, 1)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> None:
        """Trusted statements: DELETE FROM spans/feedback becomes ALTER TABLE ... DELETE (waited for)."""
        from sqlglot import exp

        statements = parse_duckdb(sql)
        if len(statements) != 1:
            raise ValueError("execute() takes exactly one statement")
        tree = bind_parameters(statements[0], params)
        with self._write_lock:
            if isinstance(tree, exp.Delete):
                table = _base_table(tree.this.name if isinstance(tree.this, exp.Table) else "")
                where = tree.args.get("where")
                condition = where.this if isinstance(where, exp.Where) else exp.true()
                self._delete(table, self._translator.to_clickhouse(_rename_tables(condition)))
                return
            self._pool.client().execute(self._translator.to_clickhouse(_rename_tables(tree)))

    def delete_spans_before(self, project: str, cutoff: dt.datetime) -> None:
        """Retention: the project's spans from before the day of `cutoff` (UTC), and their rollup rows.

        Whole days, so whole rollup buckets go with them: deleting them is exact without reading the
        spans first, and repeating it is harmless (several servers run retention, maybe at once, and a
        subtraction computed by two of them before either deleted would count the spans out twice)."""
        day = cutoff.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
        before = f"toDateTime({int(_epoch(day))}, 'UTC')"
        project_is = f"project = {_quote(project)}"
        with self._write_lock:
            self._delete_rows(SPANS_TABLE, f"{project_is} AND timestamp < {before}")
            for table in self._rollups:
                self._delete_rows(table.table, f"{project_is} AND bucket < {before}")
            self._delete_rows(_id_index.TABLE, _id_index.forget_before(project_is, before))

    def _delete(self, table: str, condition: str) -> None:
        """Delete rows; deleted spans leave the rollups first, and the months they were in are merged."""
        if table != SPANS_TABLE:
            self._delete_rows(table, condition)
            return
        rows = self._pool.client().execute(
            f"SELECT count(), min(toDateTime(timestamp, 'UTC')), max(toDateTime(timestamp, 'UTC')) "
            f"FROM {SPANS_TABLE} WHERE {condition}",
            settings=_BIG_QUERY,
        )
        if not rows or not int(rows[0][0]):
            return
        self._roll(condition, -1)
        self._delete_rows(table, condition)
        self._merge_rollup_partitions(_naive_utc(rows[0][1]), _naive_utc(rows[0][2]))

    def _delete_rows(self, table: str, condition: str) -> None:
        # 18.16 deletes the rows whose condition is NULL (`model = 'x'` where model is NULL): only TRUE deletes.
        condition = f"ifNull(({condition}), 0)"
        rows = self._pool.client().execute(f"SELECT count() FROM {table} WHERE {condition}", settings=_BIG_QUERY)
        if not int(rows[0][0]):  # a mutation would rewrite parts for nothing
            return
        target = self.layout.target(table)
        if self.features.lightweight_delete and self.layout.clustered:
            self._pool.client().execute(f"DELETE FROM {target} WHERE {condition}", settings=_BIG_QUERY)
            self._wait_on_replicas()
        elif self.features.lightweight_delete:
            # Marks the rows at once; parts are rewritten by later merges.
            self._pool.client().execute(
                f"DELETE FROM {target} WHERE {condition}", settings={**_BIG_QUERY, "mutations_sync": 1}
            )
        else:
            self._mutate(f"ALTER TABLE {target} DELETE WHERE {condition}")

    # -- scores (`_scores.py`) --------------------------------------------------------------------

    def write_scores(self, scores: Sequence[Score]) -> ScoreWriteResult:
        if not scores:
            return ScoreWriteResult(written=0, duplicate=0)
        with self._write_lock:
            return _scores.write_scores(self._pool.client(), scores)

    def score_names(self, project: str) -> dict[str, str]:
        return _scores.score_names(self._pool.client(), project)

    # -- alert state (`_alerts.py`) ---------------------------------------------------------------

    def ensure_alert_tables(self) -> None:
        if not self._alert_tables_ready:
            _alerts.create_alert_tables(self._pool.client())
            self._alert_tables_ready = True

    def claim_alert_transition(self, record: AlertRecord, claimant: str) -> bool:
        self.ensure_alert_tables()
        return _alerts.claim_transition(self._pool.client(), record, claimant, settle_s=self.alert_claim_settle_s)

    def alert_history(
        self,
        *,
        project: str | None = None,
        rule: str | None = None,
        latest_only: bool = False,
        limit: int | None = None,
    ) -> list[AlertRecord]:
        self.ensure_alert_tables()
        return _alerts.read_history(
            self._pool.client(), project=project, rule=rule, latest_only=latest_only, limit=limit
        )

    def alert_rules(self) -> list[StoredAlertRule]:
        self.ensure_alert_tables()
        return _alerts.read_rules(self._pool.client())

    def save_alert_rule(self, name: str, spec: str | None, at: dt.datetime) -> None:
        self.ensure_alert_tables()
        _alerts.save_rule(self._pool.client(), name, spec, at)

    # -- reads ----------------------------------------------------------------------------------

    def translate(self, sql: str, params: Sequence[Any] | dict[str, Any] = (), project: str | None = None) -> str:
        """The ClickHouse SQL `query()` runs for a DuckDB-flavoured trusted query (confined to `project`)."""
        return self._translations.translated(
            ("trusted", project), sql, params, lambda values: self._translated(sql, values, project)
        )

    def _translated(self, sql: str, params: Sequence[Any] | dict[str, Any], project: str | None = None) -> str:
        statements = parse_duckdb(sql)
        if len(statements) != 1:
            raise ValueError("query() takes exactly one statement")
        tree = bind_parameters(statements[0], params)
        if project is None:
            return inline_filtered_views(_rename_tables(tree), self._translator)
        return scope_trusted_sql(tree, project, self._translator)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> QueryResult:
        project = current_project.get()
        if project is not None:  # inside a request confined to one project
            return self.query_in_project(sql, params, project)
        translated = self.translate(sql, params)
        rows, meta = self._pool.client().execute(translated, with_column_types=True)
        return _result(rows, meta)

    def query_in_project(self, sql: str, params: Sequence[Any] | dict[str, Any], project: str) -> QueryResult:
        translated = self.translate(sql, params, project)
        rows, meta = self._pool.client().execute(translated, with_column_types=True)
        return _result(rows, meta)

    def scoped(self, project: str) -> Store:
        return ProjectStore(self, project)

    def locate_ids(self, project: str, ids: Sequence[str], source: str = "spans") -> Located:
        """The hours that may hold spans (`source` "spans") or feedback ("feedback") with any of `ids`."""
        return _id_index.locate(self._pool.client(), project, ids, source)

    def user_sql(self, query: str, *, project: str, max_rows: int = 10_000, timeout_s: float = 30.0) -> QueryResult:
        project = current_project.get() or project
        translated = self._translations.translated(
            ("user", project), query, (), lambda _: rewrite_user_sql(query, project, self._translator)
        )
        settings = {
            "readonly": 2,
            "max_execution_time": max(1, math.ceil(timeout_s)),
            "max_result_rows": max_rows + 1,
            "result_overflow_mode": "break",
        }
        client = self._pool.client()
        try:
            rows, meta = client.execute(translated, with_column_types=True, settings=settings)
        except ServerException as exc:
            if exc.code == _SERVER_TIMEOUT_CODE:
                raise SqlFailed(f"the query ran longer than the {timeout_s:g} s limit and was stopped") from None
            if exc.code == 164:  # READONLY
                raise SqlRejected("only read-only SELECT queries are allowed") from None
            raise SqlFailed(_server_message(exc)) from None
        except DriverError as exc:
            raise SqlFailed(_server_message(exc)) from None
        result = _result(rows[: max_rows + 1], meta)
        result.truncated = len(result.rows) > max_rows
        result.rows = result.rows[:max_rows]
        return result

    def read_together(self, reads: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run independent reads at once, each on a worker's own connection and in the caller's context
        (the project a request is confined to goes with it); the first failure is raised."""
        if len(reads) < 2 or _IN_READER.get():  # a read inside a read runs in place: the workers may all wait
            return [read() for read in reads]
        with self._readers_lock:
            if self._readers is None:
                self._readers = ThreadPoolExecutor(_READERS, thread_name_prefix="llmlens-ch-read")
            readers = self._readers
        futures = [readers.submit(contextvars.copy_context().run, _as_reader, read) for read in reads]
        return [f.result() for f in futures]

    def close(self) -> None:
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        self._pool.close()


_IN_READER: contextvars.ContextVar[bool] = contextvars.ContextVar("llmlens_ch_in_reader", default=False)


def _as_reader(read: Callable[[], Any]) -> Any:
    _IN_READER.set(True)  # in the copied context this worker runs the read in
    return read()


def _result(rows: list[Any], meta: list[tuple[str, str]]) -> QueryResult:
    columns = [name for name, _ in meta]
    types = [ch_type for _, ch_type in meta]
    as_bool = [name in _BOOL_COLUMNS and t.replace("Nullable(", "").rstrip(")") == "UInt8" for name, t in meta]
    out = []
    for row in rows:
        values = [_result_value(v) for v in row]
        for i, flag in enumerate(as_bool):
            if flag and values[i] is not None:
                values[i] = bool(values[i])
        out.append(values)
    return QueryResult(columns=columns, rows=out, types=types)


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _epoch(value: dt.datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _base_table(name: str) -> str:
    tables = {"spans": SPANS_TABLE, "feedback": FEEDBACK_TABLE, "scores": SCORES_TABLE}
    if name not in tables:
        raise ValueError(f"DELETE is supported on store.spans, store.feedback and store.scores, not {name!r}")
    return tables[name]


def _rename_tables(tree: Any) -> Any:
    """`store.spans`/`spans` -> the spans table (same columns, reads use its primary key directly);
    `store.feedback`, `store.scores` and the rollups (`store.rollup_hour`, ...) -> their tables; other
    views keep their names."""
    from sqlglot import exp

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            db = node.args.get("db")
            name = node.name.lower()
            if name == "spans" and (db is None or db.name == "store"):
                renamed: exp.Expr = _renamed(node, SPANS_TABLE, "spans")
                return renamed
            if name == "feedback" and db is not None and db.name == "store":
                renamed = _renamed(node, FEEDBACK_TABLE, "feedback")
                return renamed
            if name == "scores" and db is not None and db.name == "store":
                renamed = _renamed(node, SCORES_TABLE, "scores")
                return renamed
            if name in _rollups.ROLLUP_RELATIONS and db is not None and db.name == "store":
                # Their ALIAS columns give the DuckDB columns to readers that name them.
                renamed = _renamed(node, _rollups.ROLLUP_RELATIONS[name], name)
                return renamed
        return node

    return tree.transform(rename, copy=True)


def _renamed(node: Any, table: str, alias: str) -> Any:  # returns exp.Table
    from sqlglot import exp

    return exp.Table(
        this=exp.to_identifier(table),
        alias=exp.TableAlias(this=exp.to_identifier(node.alias or alias)),
    )
