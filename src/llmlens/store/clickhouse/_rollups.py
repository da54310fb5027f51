"""ClickHouse rollups: the DuckDB store's hourly and daily tables, kept by materialized views.

The same five relations as DuckDB (`rollup_hour`, `rollup_day`, `sketch_hour`, `sketch_day`,
`user_day`, see `store/rollups/`) with the same columns, so the query layer reads them with the same
SQL. Each is a SummingMergeTree filled on every insert into the spans table by a materialized view
running the aggregates of `store/rollups/_measures.py` (translated to ClickHouse); merges add rows of
the same key, readers add whatever is not merged yet.

Two things ClickHouse 18.16 cannot store are mapped back by ALIAS columns, so readers see DuckDB's
columns: sort keys cannot be Nullable, so a NULL key is kept as `\\0` in `<key>_k`; a SUM over no value
is NULL in SQL, so nullable sums are kept as `<name>_sum` plus the count `<name>_n` of summed values.

Spans that change or go (late context, reprice, retention) take their aggregates out first: the same
SELECT with every measure negated is inserted, and rows whose measures reach zero vanish on merge.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from sqlglot import exp

from ..rollups import MEASURES, ROLLUP_KEYS, ROLLUP_KINDS, SKETCH_KEYS, SKETCHED_METRICS, USER_MEASURES, USER_TIER_SQL
from ..rollups import index_sql as duckdb_index_sql
from ._connection import ServerFeatures
from ._translate import Translator, parse_duckdb

# The relations the query layer reads (store.<name>) -> the tables behind them.
ROLLUP_RELATIONS = {
    **{f"rollup_{g}": f"llmlens_rollup_{g}" for g in ("hour", "day")},
    **{f"sketch_{g}": f"llmlens_sketch_{g}" for g in ("hour", "day")},
    "user_day": "llmlens_user_day",
}
NULL_KEY = "\\0"  # inside a ClickHouse string literal: the NUL byte, which no stored key holds
_CH_TYPES = {"BIGINT": "Int64", "DOUBLE": "Float64"}
_TRUNC = {"hour": "toStartOfHour", "day": "toStartOfDay"}


@dataclass(frozen=True, slots=True)
class Measure:
    """A measure as stored: physical columns with their ClickHouse aggregate, and how readers see it."""

    name: str
    ch_type: str
    stored: tuple[tuple[str, str, str], ...]  # (column, type, aggregate over span rows)
    alias: str | None  # ALIAS expression giving `name`, when `name` is not stored as is


@dataclass(frozen=True, slots=True)
class RollupTable:
    """One rollup relation: its DuckDB name, the ClickHouse table behind it and what feeds it."""

    name: str  # as the query layer names it: store.<name>
    table: str
    grain: str
    keys: tuple[str, ...]  # nullable key columns, after project and bucket
    measures: tuple[Measure, ...]
    extra_keys: tuple[tuple[str, str], ...] = ()  # non-null keys after those: (column, type)
    where: str = ""  # which span rows count (ClickHouse SQL)
    key_values: tuple[str, ...] = ()  # per key, its value over span columns (ClickHouse SQL)
    indexes: tuple[str, ...] = ()  # sketches: per sketched metric, its bucket index (ClickHouse SQL)

    @property
    def view(self) -> str:
        return f"{self.table}_mv"

    def stored_columns(self) -> list[str]:
        keys = [f"{k}_k" for k in self.keys] + [c for c, _ in self.extra_keys]
        return ["project", "bucket", *keys, *(c for m in self.measures for c, _, _ in m.stored)]

    def visible_columns(self) -> list[str]:
        """The columns readers select: DuckDB's names."""
        keys = [*self.keys, *(c for c, _ in self.extra_keys)]
        return ["project", "bucket", *keys, *(m.name for m in self.measures)]


def _measure(name: str, sql_type: str, duckdb_expr: str, translator: Translator) -> Measure:
    """`SUM(x) [FILTER (WHERE c)]` is stored as its sum over values plus their count (NULL when none)."""
    ch_type = _CH_TYPES[sql_type]
    node = parse_duckdb(f"SELECT {duckdb_expr}")[0].expressions[0]
    agg = node.this if isinstance(node, exp.Filter) else node
    if isinstance(agg, exp.Sum):
        count = exp.Count(this=agg.this.copy())
        counted = exp.Filter(this=count, expression=node.expression.copy()) if isinstance(node, exp.Filter) else count
        total = f"ifNull({_ch(translator, node)}, 0)"
        stored = ((f"{name}_sum", ch_type, total), (f"{name}_n", "Int64", f"ifNull({_ch(translator, counted)}, 0)"))
        return Measure(name, ch_type, stored, f"if({name}_n = 0, NULL, {name}_sum)")
    return Measure(name, ch_type, ((name, ch_type, f"ifNull({_ch(translator, node)}, 0)"),), None)


def _ch(translator: Translator, node: exp.Expr) -> str:
    select = translator.to_clickhouse(exp.Select(expressions=[node.copy()]))
    return select.removeprefix("SELECT ")


def index_expression(translator: Translator, metric: str) -> str:
    """The sketch's bucket index of `metric` in ClickHouse, exactly as raw window edges compute it."""
    return _ch(translator, parse_duckdb(f"SELECT {duckdb_index_sql(metric)}")[0].expressions[0])


def tier_expression(translator: Translator) -> str:
    """A span's tier (USER_TIER_SQL without its MAX): a key of `user_day`, merged with MAX by readers."""
    node = parse_duckdb(f"SELECT {USER_TIER_SQL}")[0].expressions[0]
    assert isinstance(node, exp.Max)
    return _ch(translator, node.this)


@functools.lru_cache(maxsize=8)
def rollup_tables(features: ServerFeatures) -> tuple[RollupTable, ...]:
    """The rollup relations as this server stores them (their SQL is translated once per server)."""
    translator = Translator(features)
    kinds = ", ".join(f"'{k}'" for k in ROLLUP_KINDS)
    main = tuple(_measure(n, t, e, translator) for n, t, e in MEASURES)
    user = tuple(_measure(n, t, e, translator) for n, t, e in USER_MEASURES)
    indexes = tuple(index_expression(translator, metric) for metric in SKETCHED_METRICS)
    out: list[RollupTable] = []
    for grain in ("hour", "day"):
        rollup, sketch = f"rollup_{grain}", f"sketch_{grain}"
        keys = tuple(f"`{k}`" for k in ROLLUP_KEYS)
        where = f"kind IN ({kinds})"
        out.append(RollupTable(rollup, ROLLUP_RELATIONS[rollup], grain, ROLLUP_KEYS, main, (), where, keys))
        n = Measure("n", "Int64", (("n", "Int64", "count()"),), None)
        extra = (("metric", "Int8"), ("idx", "Int32"))
        keys = tuple(f"`{k}`" for k in SKETCH_KEYS)
        table = RollupTable(sketch, ROLLUP_RELATIONS[sketch], grain, SKETCH_KEYS, (n,), extra, "kind = 'llm'", keys)
        out.append(dataclasses.replace(table, indexes=indexes))
    where = "kind = 'llm' AND isNotNull(user_id)"
    keys = ("`user_id`", tier_expression(translator))
    out.append(RollupTable("user_day", ROLLUP_RELATIONS["user_day"], "day", ("user_id", "tier"), user, (), where, keys))
    return tuple(out)


def table_ddl(table: RollupTable, *, engine: str | None = None) -> str:
    cols = ["project String", "bucket DateTime('UTC')"]
    cols += [f"`{k}_k` String" for k in table.keys]
    cols += [f"`{c}` {t}" for c, t in table.extra_keys]
    cols += [f"`{c}` {t}" for m in table.measures for c, t, _ in m.stored]
    cols += [f"`{k}` Nullable(String) ALIAS nullIf(`{k}_k`, '{NULL_KEY}')" for k in table.keys]
    cols += [f"`{m.name}` Nullable({m.ch_type}) ALIAS {m.alias}" for m in table.measures if m.alias]
    order = ", ".join(["project", "bucket", *(f"`{k}_k`" for k in table.keys), *(c for c, _ in table.extra_keys)])
    body = ",\n  ".join(cols)
    return (
        f"CREATE TABLE IF NOT EXISTS {table.table} (\n  {body}\n) ENGINE = {engine or 'SummingMergeTree()'} "
        f"PARTITION BY toYYYYMM(bucket) ORDER BY ({order})"
    )


def delta_select(table: RollupTable, source: str, where: str = "") -> str:
    """The aggregates of the span rows of `source` (a table or a parenthesised subquery), as rows of
    `table` named by its stored columns (the materialized view inserts by name)."""
    bucket = f"{_TRUNC[table.grain]}(toDateTime(timestamp, 'UTC')) AS bucket"
    keys = [f"ifNull({v}, '{NULL_KEY}') AS `{k}_k`" for k, v in zip(table.keys, table.key_values, strict=True)]
    # Typed as the table's columns: a materialized view on 18.16 does not convert what it inserts.
    measures = [f"to{t}({agg}) AS `{c}`" for m in table.measures for c, t, agg in m.stored]
    condition = table.where + (f" AND ({where})" if where else "")
    group = ", ".join(["project", "bucket", *(f"`{k}_k`" for k in table.keys)])
    if table.indexes:
        metric_ids = ", ".join(str(i) for i in SKETCHED_METRICS.values())
        return (
            f"SELECT project, {bucket}, {', '.join(keys)}, toInt8(metric_id) AS metric, "
            f"assumeNotNull(metric_idx) AS idx, {', '.join(measures)} "
            f"FROM {source} ARRAY JOIN [{metric_ids}] AS metric_id, [{', '.join(table.indexes)}] AS metric_idx "
            f"WHERE {condition} AND isNotNull(metric_idx) GROUP BY {group}, metric, idx"
        )
    return (
        f"SELECT project, {bucket}, {', '.join(keys)}, {', '.join(measures)} "
        f"FROM {source} WHERE {condition} GROUP BY {group}"
    )


def view_ddl(table: RollupTable, spans_table: str) -> str:
    return f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table.view} TO {table.table} AS {delta_select(table, spans_table)}"


def signed_insert(table: RollupTable, source: str, where: str, sign: int) -> str:
    """INSERT adding (sign 1) or taking out (sign -1) the aggregates of the matching span rows."""
    select = delta_select(table, source, where)
    columns = table.stored_columns()
    listed = ", ".join(f"`{c}`" for c in columns)
    if sign > 0:
        return f"INSERT INTO {table.table} ({listed}) {select}"
    n_keys = len(columns) - sum(len(m.stored) for m in table.measures)
    # INSERT ... SELECT fills columns by position: the outer SELECT needs no aliases.
    outer = [f"`{c}`" for c in columns[:n_keys]] + [f"-`{c}`" for c in columns[n_keys:]]
    return f"INSERT INTO {table.table} ({listed}) SELECT {', '.join(outer)} FROM ({select})"


def reader_select(table: RollupTable, project_filter: str = "") -> str:
    """SELECT of the relation's DuckDB columns (ALIAS columns are not part of `SELECT *`)."""
    cols = ", ".join(f"`{c}`" for c in table.visible_columns())
    where = f" WHERE {project_filter}" if project_filter else ""
    return f"SELECT {cols} FROM {table.table}{where}"
