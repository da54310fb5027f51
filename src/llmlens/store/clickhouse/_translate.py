"""DuckDB-flavoured SQL -> SQL that ClickHouse 18.16 and current releases both run.

sqlglot parses the DuckDB dialect and writes ClickHouse; on the way we rewrite what sqlglot leaves
for a newer ClickHouse than Debian's 18.16 (DATE(), percentile_cont WITHIN GROUP, FILTER, JSON paths,
date_trunc, CTEs, ILIKE, booleans) and bind `?` parameters as literals.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from .._columns import FEEDBACK_COLUMNS, SPAN_COLUMNS
from .._protocol import SqlFailed
from ..rollups import MEASURES, USER_MEASURES
from ._connection import ServerFeatures

_TRUNC_FUNCTIONS = {
    "SECOND": ("toStartOfSecond", False),
    "MINUTE": ("toStartOfMinute", False),
    "HOUR": ("toStartOfHour", False),
    "DAY": ("toStartOfDay", False),
    "WEEK": ("toMonday", True),
    "MONTH": ("toStartOfMonth", True),
    "QUARTER": ("toStartOfQuarter", True),
    "YEAR": ("toStartOfYear", True),
}


def parse_duckdb(sql: str) -> list[exp.Expr]:
    """Parse DuckDB-dialect SQL; a syntax error becomes SqlFailed with sqlglot's short message."""
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        message = first.get("description") or str(exc).split("\n")[0]
        line, col = first.get("line"), first.get("col")
        where = f" (line {line}, column {col})" if line else ""
        raise SqlFailed(f"syntax error{where}: {message}") from None
    return [s for s in statements if s is not None]


def bind_parameters(tree: exp.Expr, params: Sequence[Any] | dict[str, Any]) -> exp.Expr:
    """Replace `?` (in order) and `$name` placeholders by literals of the given Python values."""
    positional = list(params) if not isinstance(params, dict) else []
    named = params if isinstance(params, dict) else {}
    index = 0

    def replace(node: exp.Expr) -> exp.Expr:
        nonlocal index
        if isinstance(node, exp.Placeholder):
            if node.name and node.name != "?":
                if node.name not in named:
                    raise ValueError(f"no value for parameter ${node.name}")
                return literal(named[node.name])
            if index >= len(positional):
                raise ValueError(f"the query has more ? placeholders than the {len(positional)} values given")
            value = positional[index]
            index += 1
            return literal(value)
        if isinstance(node, exp.Parameter) and node.name in named:
            return literal(named[node.name])
        return node

    bound = tree.transform(replace, copy=True)
    if positional and index != len(positional):
        raise ValueError(f"{len(positional)} values given for {index} ? placeholders")
    return bound


def literal(value: Any) -> exp.Expr:
    """A ClickHouse literal for a Python value; datetimes are naive UTC (or aware)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Literal.number(int(value))
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return _call("toFloat64", exp.Literal.string(str(value).lower()))
        return exp.Literal.number(repr(value))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        seconds = math.floor(value.timestamp())
        return _call("toDateTime", exp.Literal.number(seconds), exp.Literal.string("UTC"))
    if isinstance(value, dt.date):
        return _call("toDate", exp.Literal.string(value.isoformat()))
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[literal(v) for v in value])
    return exp.Literal.string(str(value))


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _parametric(name: str, params: list[exp.Expr], args: list[exp.Expr]) -> exp.Expr:
    # sqlglot prints ParameterizedAgg as this(expressions)(params): `quantile(0.5)(x)`.
    return exp.ParameterizedAgg(this=name, expressions=params, params=args)


def _interpolated_percentile(value: exp.Expr, q: exp.Expr) -> exp.Expr:
    """percentile_cont where the server has no quantileExactInclusive (18.16, whose `quantile` samples):
    the two order statistics around rank q * (n - 1) of the sorted values, interpolated; NULL over none."""
    values = f"arraySort(groupArray({value.sql(dialect='clickhouse')}))"
    rank = f"({q.sql(dialect='clickhouse')} * (length({values}) - 1))"
    lower = f"arrayElement({values}, toUInt64(floor({rank})) + 1)"
    upper = f"arrayElement({values}, toUInt64(ceil({rank})) + 1)"
    sql = f"if(length({values}) = 0, NULL, {lower} + ({upper} - {lower}) * ({rank} - floor({rank})))"
    return sqlglot.parse_one(sql, read="clickhouse")


def _json_path_keys(path: exp.Expr | None) -> list[str] | None:
    if isinstance(path, exp.JSONPath):
        keys = []
        for part in path.expressions:
            if isinstance(part, exp.JSONPathRoot):
                continue
            if isinstance(part, exp.JSONPathKey) and isinstance(part.this, str):
                keys.append(part.this)
            else:
                return None
        return keys
    if isinstance(path, exp.Literal) and path.is_string:
        text = path.this
        if text.startswith("$"):
            text = text[1:].lstrip(".")
        return [k for k in text.split(".") if k] if text else []
    return None


class Translator:
    """Rewrites a parsed DuckDB query into ClickHouse SQL for one server's features."""

    def __init__(self, features: ServerFeatures) -> None:
        self.features = features
        self._rules: dict[type[exp.Expr], Callable[[Any], exp.Expr]] = {
            exp.Date: lambda n: _call("toDate", n.this),
            exp.WithinGroup: self._within_group,
            exp.PercentileCont: lambda n: self._quantile(n.this, n.expression),
            exp.Quantile: lambda n: self._quantile(n.this, n.args.get("quantile")),
            exp.ApproxQuantile: lambda n: self._quantile(n.this, n.args.get("quantile")),
            exp.Median: lambda n: self._quantile(n.this, exp.Literal.number(0.5)),
            exp.Filter: self._filter,
            # COUNT is BIGINT in DuckDB and UInt64 in ClickHouse, and 18.16 finds no common type for
            # UInt64 and Int64 in a UNION ALL (raw window edges beside signed rollup sums).
            exp.Count: lambda n: _call("toInt64", n),
            exp.TimestampTrunc: self._trunc,
            exp.DateTrunc: self._trunc,
            exp.UnixToTime: self._unix_to_time,
            exp.TimeToUnix: lambda n: _call("toUnixTimestamp", n.this),
            exp.JSONExtractScalar: lambda n: self._json(n, scalar=True),
            exp.JSONExtract: lambda n: self._json(n, scalar=False),
            exp.AnyValue: lambda n: _call("any", n.this),
            exp.IgnoreNulls: lambda n: n.this,
            exp.Boolean: lambda n: exp.Literal.number(1 if n.this else 0),
            exp.ILike: lambda n: exp.Like(this=_call("lower", n.this), expression=_call("lower", n.expression)),
            exp.CurrentTimestamp: lambda n: _call("now"),
            exp.CurrentDate: lambda n: _call("today"),
            exp.Cast: self._cast,
            exp.TryCast: self._cast,
            exp.GroupConcat: self._string_agg,
        }

    def to_clickhouse(self, tree: exp.Expr) -> str:
        tree = unshadow_aliases(top_n_per_group(expand_group_by_all(inline_ctes(tree))))
        if not self.features.window_functions and tree.find(exp.Window) is not None:
            raise SqlFailed("window functions (OVER ...) need ClickHouse 21.1 or later; this server is older")
        translated = tree.transform(self._rewrite, copy=True)
        sql: str = translated.sql(dialect="clickhouse")
        return sql

    def _rewrite(self, node: exp.Expr) -> exp.Expr:
        rule = self._rules.get(type(node))
        return rule(node) if rule is not None else node

    def _quantile(self, value: exp.Expr, q: exp.Expr | None) -> exp.Expr:
        if q is None:
            raise SqlFailed("quantile needs a fraction, e.g. quantile_cont(latency_ms, 0.95)")
        if self.features.exact_percentile:
            return _parametric("quantileExactInclusive", [q], [value])
        if isinstance(q, exp.Array):
            return _parametric("quantile", [q], [value])
        return _interpolated_percentile(value, q)

    def _within_group(self, node: exp.WithinGroup) -> exp.Expr:
        inner, order = node.this, node.expression
        if isinstance(inner, exp.PercentileCont | exp.PercentileDisc) and isinstance(order, exp.Order):
            keys = order.expressions
            if len(keys) != 1:
                raise SqlFailed("percentile_cont ... WITHIN GROUP (ORDER BY x) takes exactly one ORDER BY value")
            value = keys[0].this
            descending = bool(keys[0].args.get("desc"))
            q = exp.Sub(this=exp.Literal.number(1), expression=inner.this) if descending else inner.this
            if isinstance(inner, exp.PercentileDisc):
                return _parametric("quantileExact", [q], [value])
            return self._quantile(value, q)
        return node

    def _filter(self, node: exp.Filter) -> exp.Expr:
        agg = node.this
        where = node.expression
        condition = where.this if isinstance(where, exp.Where) else where
        # A count is never NULL in SQL; countIf over a Nullable argument or condition is NULL when every
        # row's is (a window of requests without an HTTP status, say).
        if isinstance(agg, exp.Count) and isinstance(agg.this, exp.Star):
            return _call("toInt64", _call("ifNull", _call("countIf", condition), exp.Literal.number(0)))
        if isinstance(agg, exp.AggFunc):
            name = agg.sql_name().lower()
            names = {"count": "countIf", "sum": "sumIf", "avg": "avgIf", "min": "minIf", "max": "maxIf"}
            if name in names and agg.this is not None:
                call = _call(names[name], agg.this, condition)
                if name == "count":
                    return _call("toInt64", _call("ifNull", call, exp.Literal.number(0)))
                if name == "sum":  # NULL over no value, as in SQL (sumIf gives 0)
                    counted = _call("ifNull", _call("countIf", agg.this, condition), exp.Literal.number(0))
                    none = exp.EQ(this=counted, expression=exp.Literal.number(0))
                    return exp.If(this=none, true=exp.Null(), false=call)
                return call
        raise SqlFailed("FILTER (WHERE ...) is supported on COUNT, SUM, AVG, MIN and MAX only here")

    def _string_agg(self, node: exp.GroupConcat) -> exp.Expr:
        # groupConcat came in 24.x; groupArray skips NULLs as string_agg does. No row gives '' (DuckDB: NULL).
        value = node.this
        if isinstance(value, exp.Order):
            raise SqlFailed("string_agg(... ORDER BY ...) is not supported on ClickHouse")
        separator = node.args.get("separator") or exp.Literal.string(",")
        return _call("arrayStringConcat", _call("groupArray", _call("toString", value)), separator)

    def _trunc(self, node: exp.Expr) -> exp.Expr:
        unit = node.args.get("unit")
        unit_name = (unit.name if isinstance(unit, exp.Expr) else str(unit or "")).upper()
        if unit_name not in _TRUNC_FUNCTIONS:
            raise SqlFailed(f"date_trunc unit {unit_name.lower()!r} is not supported on ClickHouse")
        name, returns_date = _TRUNC_FUNCTIONS[unit_name]
        value = node.this
        truncated = _call(name, value)
        return _call("toDateTime", truncated) if returns_date else truncated

    def _unix_to_time(self, node: exp.UnixToTime) -> exp.Expr:
        scale = node.args.get("scale")
        digits = int(scale.name) if isinstance(scale, exp.Literal) else 0
        value = node.this
        if digits:
            value = _call("intDiv", value, exp.Literal.number(10**digits))
        return _call("toDateTime", value, exp.Literal.string("UTC"))

    def _json(self, node: exp.Expr, *, scalar: bool) -> exp.Expr:
        keys = _json_path_keys(node.expression)
        if keys is None:
            raise SqlFailed("JSON paths on ClickHouse must be simple keys like '$.tier' or '$.a.b'")
        value: exp.Expr = node.this
        if not keys:
            return value
        if self.features.json_functions:
            args = [value, *(exp.Literal.string(k) for k in keys)]
            return _call("JSONExtractString" if scalar else "JSONExtractRaw", *args)
        # 18.16: visitParamExtract* reads the first matching key at any depth; walk down one key at a time.
        for key in keys[:-1]:
            value = _call("visitParamExtractRaw", value, exp.Literal.string(key))
        last = exp.Literal.string(keys[-1])
        return _call("visitParamExtractString" if scalar else "visitParamExtractRaw", value, last)

    def _cast(self, node: exp.Cast) -> exp.Expr:
        to = node.to
        if to.is_type(exp.DataType.Type.DATE):
            return _call("toDate", node.this)
        if to.is_type(exp.DataType.Type.JSON):
            inner: exp.Expr = node.this
            return inner
        if to.is_type(exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.DATETIME):
            return _call("toDateTime", node.this)
        return node


# DuckDB functions sqlglot does not know as aggregates (it parses them as anonymous calls).
_ANONYMOUS_AGGREGATES = frozenset({"histogram", "arbitrary", "fsum", "favg", "product"})


def _is_aggregate(node: exp.Expr) -> bool:
    for sub in node.walk():
        if isinstance(sub, exp.Window):
            continue
        if isinstance(sub, exp.AggFunc) and sub.find_ancestor(exp.Window) is None:
            return True
        if isinstance(sub, exp.Anonymous) and sub.name.lower() in _ANONYMOUS_AGGREGATES:
            return True
    return False


def expand_group_by_all(tree: exp.Expr) -> exp.Expr:
    """`GROUP BY ALL` -> every selected expression that is not an aggregate (DuckDB's rule): ClickHouse
    has GROUP BY ALL only from 23.x, with its own reading of it."""
    tree = tree.copy()
    for select in tree.find_all(exp.Select):
        group = select.args.get("group")
        if not isinstance(group, exp.Group) or not group.args.get("all"):
            continue
        keys: list[exp.Expr] = []
        for projection in select.expressions:
            if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
                raise SqlFailed("GROUP BY ALL with SELECT * cannot be translated for ClickHouse; name the columns")
            inner = projection.unalias()
            if _is_aggregate(inner) or isinstance(inner, exp.Literal | exp.Null | exp.Boolean):
                continue
            # The expression, not its alias: `unshadow_aliases` may rename an alias that hides a column.
            keys.append(inner.copy())
        select.set("group", exp.Group(expressions=keys) if keys else None)
    return tree


def inline_ctes(tree: exp.Expr) -> exp.Expr:
    """Replace references to `WITH name AS (...)` by the subquery itself: 18.16 has no such CTEs."""
    tree = tree.copy()
    while (with_ := tree.find(exp.With)) is not None:
        if with_.args.get("recursive"):
            raise SqlFailed("recursive CTEs are not supported on ClickHouse")
        resolved: dict[str, exp.Expr] = {}
        for cte in with_.expressions:
            resolved[cte.alias_or_name] = _substitute(cte.this.copy(), resolved)
        scope = with_.parent
        with_.pop()
        if scope is not None:
            _substitute(scope, resolved)
    return tree


def _substitute(scope: exp.Expr, bodies: dict[str, exp.Expr]) -> exp.Expr:
    for table in list(scope.find_all(exp.Table)):
        body = bodies.get(table.name)
        if body is not None and not table.args.get("db") and isinstance(table.this, exp.Identifier):
            alias = exp.TableAlias(this=exp.to_identifier(table.alias or table.name))
            replacement = exp.Subquery(this=body.copy(), alias=alias)
            if table is scope:
                return replacement
            table.replace(replacement)
    return scope


_INNER = "_llmlens_inner"
# Column names of the tables and views: an alias is only renamed when it hides one of these.
_STORED_COLUMNS = frozenset(
    [c for c, _, _ in SPAN_COLUMNS]
    + [c for c, _, _ in FEEDBACK_COLUMNS]
    + ["args", "result", "success", "error", "query", "num_documents", "user_satisfaction", "timestamp_us"]
)
# Columns of the rollup relations, for a SELECT reading one (`date_trunc('day', bucket) AS bucket` over
# hourly rows must not move the WHERE on `bucket`); the names of the relations and of their tables.
_ROLLUP_COLUMNS = frozenset(["bucket", "metric", "idx", "n", "tier", *(c for c, _, _ in (*MEASURES, *USER_MEASURES))])
_ROLLUP_RELATIONS = ("rollup_hour", "rollup_day", "sketch_hour", "sketch_day", "user_day")


def unshadow_aliases(tree: exp.Expr) -> exp.Expr:
    """Keep DuckDB's name resolution where ClickHouse's differs.

    In ClickHouse an alias shadows a column of the same name everywhere in its SELECT, so
    `SELECT SUM(cost_usd) AS cost_usd ... WHERE cost_usd > 0` would put SUM in WHERE. Such aliases
    are renamed inside, and an outer SELECT gives the columns their names back.
    """
    tree = tree.copy()
    for select in reversed(list(tree.find_all(exp.Select))):
        replacement = _unshadow(select)
        if replacement is not None:
            if select is tree:
                tree = replacement
            else:
                select.replace(replacement)
    return tree


def _reads_rollup(select: exp.Select) -> bool:
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if isinstance(source, exp.From) else None
    if not isinstance(table, exp.Table):
        return False
    names = (table.name.lower(), table.alias_or_name.lower())
    return any(name.endswith(_ROLLUP_RELATIONS) for name in names)


def _unshadow(select: exp.Select) -> exp.Select | None:
    projections = select.expressions
    if any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)) for p in projections
    ):
        return None
    order = select.args.get("order")
    order_refs = {id(o.this) for o in order.expressions} if isinstance(order, exp.Order) else set()
    referenced = {
        col.name.lower()
        for col in select.find_all(exp.Column)
        if col.find_ancestor(exp.Select) is select and id(col) not in order_refs
    }
    stored = _STORED_COLUMNS | _ROLLUP_COLUMNS if _reads_rollup(select) else _STORED_COLUMNS
    colliding = set()
    for p in projections:
        same_column = isinstance(p.this, exp.Column) and p.this.name.lower() == p.alias.lower()
        name = p.alias.lower() if isinstance(p, exp.Alias) else ""
        if name in referenced and name in stored and not same_column:
            colliding.add(p.alias.lower())
    if not colliding:
        return None
    inner = select.copy()
    outer_projections: list[exp.Expr] = []
    for i, p in enumerate(inner.expressions):
        if isinstance(p, exp.Alias):
            name = p.alias
            if name.lower() in colliding:
                p.set("alias", exp.to_identifier(f"{name}__llmlens"))
            outer_projections.append(exp.alias_(exp.column(p.alias), name, quoted=True))
        elif isinstance(p, exp.Column):
            outer_projections.append(exp.column(p.name))
        else:
            name = p.sql(dialect="duckdb")
            p.replace(exp.alias_(p.copy(), f"_c{i}"))
            outer_projections.append(exp.alias_(exp.column(f"_c{i}"), name, quoted=True))
    inner_order = inner.args.get("order")
    if isinstance(inner_order, exp.Order):
        for ordered in inner_order.expressions:
            ref = ordered.this
            if isinstance(ref, exp.Column) and not ref.table and ref.name.lower() in colliding:
                ordered.set("this", exp.column(f"{ref.name}__llmlens"))
    return exp.Select(expressions=outer_projections).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(_INNER)))
    )


def top_n_per_group(tree: exp.Expr) -> exp.Expr:
    """`SELECT ... FROM (SELECT ..., ROW_NUMBER() OVER (PARTITION BY k ORDER BY o) AS rn ...) WHERE rn <= N`
    -> `... ORDER BY o LIMIT N BY k`: the top-N-per-group idiom without window functions (18.16 has none)."""
    tree = tree.copy()
    for outer in list(tree.find_all(exp.Select)):
        source = outer.args.get("from_") or outer.args.get("from")
        subquery = source.this if isinstance(source, exp.From) else None
        inner = subquery.this if isinstance(subquery, exp.Subquery) else None
        where = outer.args.get("where")
        if not isinstance(inner, exp.Select) or not isinstance(where, exp.Where) or inner.args.get("limit"):
            continue
        for projection in inner.expressions:
            window = projection.this if isinstance(projection, exp.Alias) else None
            if not (isinstance(window, exp.Window) and isinstance(window.this, exp.RowNumber)):
                continue
            rn = projection.alias.lower()
            conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
            limit = _row_number_limit(conjuncts, rn)
            if limit is None:
                continue
            rest = [c for c in conjuncts if _row_number_bound(c, rn) is None]
            others = [c for c in rest if any(col.name.lower() == rn for col in c.find_all(exp.Column))]
            outside = [
                col
                for col in outer.find_all(exp.Column)
                if col.name.lower() == rn and col.find_ancestor(exp.Where) is None
            ]
            if others or outside:
                continue
            partition = [p.copy() for p in window.args.get("partition_by") or []]
            order = window.args.get("order")
            projection.pop()
            if isinstance(order, exp.Order):
                inner.set("order", order.copy())
            inner.set("limit", exp.Limit(expression=exp.Literal.number(limit), expressions=partition))
            outer.set("where", exp.Where(this=exp.and_(*rest)) if rest else None)
            break
    return tree


def _row_number_bound(condition: exp.Expr, rn: str) -> int | None:
    if not isinstance(condition, exp.LTE | exp.LT | exp.EQ):
        return None
    left, right = condition.this, condition.expression
    if not (isinstance(left, exp.Column) and left.name.lower() == rn and isinstance(right, exp.Literal)):
        return None
    if right.is_string or not right.name.isdigit():
        return None
    n = int(right.name)
    if isinstance(condition, exp.LT):
        return n - 1
    if isinstance(condition, exp.EQ):
        return n if n == 1 else None
    return n


def _row_number_limit(conjuncts: list[exp.Expr], rn: str) -> int | None:
    bounds = [b for c in conjuncts if (b := _row_number_bound(c, rn)) is not None]
    return min(bounds) if bounds else None
