"""Untrusted SQL on ClickHouse: one SELECT over the article's views, scoped to one project.

The query is parsed (DuckDB dialect) with sqlglot, checked, translated, and every view it names is
replaced by that view's body filtered to the project: 18.16 cannot parametrise a view, and inlining
the filter also lets ClickHouse use the primary key. The server runs it with `readonly = 2`.
"""

from __future__ import annotations

import secrets

from sqlglot import exp

from .._columns import QUERYABLE_VIEWS
from .._protocol import SqlRejected
from ._rollups import ROLLUP_RELATIONS, reader_select, rollup_tables
from ._schema import FEEDBACK_TABLE, PUSHABLE, ROLLUP_VIEW, SCORES_TABLE, SPANS_TABLE, VIEW_BODIES
from ._translate import Translator, inline_ctes, literal, parse_duckdb

# Table functions and scalar functions that reach outside the views: files, network, other servers,
# dictionaries, settings.
_DENIED_FUNCTIONS = frozenset(
    {
        "file",
        "url",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "mysql",
        "postgresql",
        "odbc",
        "jdbc",
        "hdfs",
        "s3",
        "s3cluster",
        "input",
        "merge",
        "numbers",
        "generaterandom",
        "joinget",
        "getsetting",
        "getmacro",
        "currentdatabase",
        "hostname",
        "fqdn",
        "filesystemavailable",
        "filesystemfree",
        "filesystemcapacity",
        "sleep",
        "sleepeachrow",
        "throwif",
    }
)
_DENIED_PREFIXES = ("dictget", "dicthas", "read_", "system.")
# `store.<name>` in trusted SQL -> its table.
_BASE_TABLES = {"spans": SPANS_TABLE, "feedback": FEEDBACK_TABLE, "scores": SCORES_TABLE}


def _views() -> str:
    return ", ".join(QUERYABLE_VIEWS)


def rewrite_user_sql(query: str, project: str, translator: Translator) -> str:
    """ClickHouse SQL for an untrusted query; raises SqlRejected (not allowed) or SqlFailed (syntax)."""
    if not query.strip():
        raise SqlRejected("the query is empty")
    statements = parse_duckdb(query)
    if len(statements) != 1:
        raise SqlRejected("send exactly one SQL statement")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        first = query.strip().split(None, 1)[0].upper()
        raise SqlRejected(f"only read-only SELECT queries are allowed, not {first}")
    for node in tree.walk():
        if isinstance(node, exp.Command | exp.DDL | exp.DML | exp.Into | exp.Set | exp.Pragma):
            raise SqlRejected("only read-only SELECT queries are allowed")
        if isinstance(node, exp.Func):
            _check_function(node)
    tree = inline_ctes(tree)
    nonce = secrets.token_hex(8)
    bodies: dict[str, str] = {}
    project_filter = f"project = {literal(project).sql(dialect='clickhouse')}"
    for index, table in enumerate(list(tree.find_all(exp.Table))):
        # One body per reference: each gets the conditions of its own SELECT (they only narrow it).
        placeholder = f"{_check_table(table, nonce)}_{index}_"  # `_1_` is no part of `_10_`
        name = table.name.lower()
        shaped = {**_pushed_conditions(table, name, translator), **_read_columns(tree, table, name)}
        bodies[placeholder] = VIEW_BODIES[name](project_filter, **shaped)
        alias = table.alias or table.name
        table.set("this", exp.to_identifier(placeholder))
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    sql = translator.to_clickhouse(tree)
    for placeholder, body in bodies.items():
        # The nonce is random per query, so a placeholder can only be a table reference we wrote.
        for quoted in (f'"{placeholder}"', f"`{placeholder}`", placeholder):
            sql = sql.replace(quoted, f"({body})")
    return sql


def _check_function(node: exp.Func) -> None:
    name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
    if name in _DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
        raise SqlRejected(f"function {name}() is not allowed in the SQL console: it reads only {_views()}")


def _check_table(table: exp.Table, nonce: str) -> str:
    if not isinstance(table.this, exp.Identifier):
        fn = table.this.sql_name().lower() if isinstance(table.this, exp.Func) else type(table.this).__name__
        raise SqlRejected(f"table function {fn}() is not allowed: the console reads only {_views()}")
    if table.args.get("db") or table.args.get("catalog"):
        raise SqlRejected(f"relation {table.sql(dialect='duckdb')} is not allowed: query {_views()}")
    name = table.name.lower()
    if name not in QUERYABLE_VIEWS:
        raise SqlRejected(f"unknown relation {table.name!r}: query {_views()}")
    return f"llmlens_{nonce}_{name}"


def scope_trusted_sql(tree: exp.Expr, project: str, translator: Translator) -> str:
    """ClickHouse SQL for a trusted (llmlens-written) query confined to one project.

    A table read in the FROM of a SELECT gets `project = ...` in that SELECT's WHERE, beside the query's
    own time filters, so ClickHouse 18.16 (which does not push outer conditions into subqueries) reads
    only the project's rows of the window. Every other relation is replaced by a project-filtered
    subquery: the views by their bodies, `store.spans`/`store.feedback`/`store.scores`, the rollups and
    the hourly rollup view by a SELECT of their rows in the project.
    """
    tree = inline_ctes(tree)
    nonce = secrets.token_hex(8)
    project_filter = f"project = {literal(project).sql(dialect='clickhouse')}"
    bodies: dict[str, str] = {}
    for index, table in enumerate(list(tree.find_all(exp.Table))):
        if not isinstance(table.this, exp.Identifier):
            raise SqlRejected("table functions are not allowed in project-scoped queries")
        db = table.args.get("db")
        schema = db.name.lower() if db is not None else ""
        name = table.name.lower()
        physical = _physical_table(schema, name)
        if physical is not None and _filter_in_place(table, physical, project):
            continue
        if schema == "store" and name in _BASE_TABLES:
            body = f"SELECT * FROM {_BASE_TABLES[name]} WHERE {project_filter}"
        elif schema == "store" and name in ROLLUP_RELATIONS:
            rollup = next(t for t in rollup_tables(translator.features) if t.name == name)
            body = reader_select(rollup, project_filter)
        elif schema == "" and name in VIEW_BODIES:
            shaped = {**_pushed_conditions(table, name, translator), **_read_columns(tree, table, name)}
            body = VIEW_BODIES[name](project_filter, **shaped)
        elif schema == "" and name == ROLLUP_VIEW:
            body = f"SELECT * FROM {ROLLUP_VIEW} WHERE {project_filter}"
        else:
            raise SqlRejected(f"relation {table.sql(dialect='duckdb')} is not visible in a project-scoped query")
        placeholder = f"llmlens_{nonce}_{schema}_{name}_{index}_"  # one per reference: pushed conditions differ
        bodies[placeholder] = body
        alias = table.alias or table.name
        table.set("db", None)
        table.set("this", exp.to_identifier(placeholder))
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    sql = translator.to_clickhouse(tree)
    for placeholder, body in bodies.items():
        for quoted in (f'"{placeholder}"', f"`{placeholder}`", placeholder):
            sql = sql.replace(quoted, f"({body})")
    return sql


def _physical_table(schema: str, name: str) -> str | None:
    """The table a relation reads as is (the `spans` view is the spans table's shared columns)."""
    if schema == "store":
        return _BASE_TABLES.get(name) or ROLLUP_RELATIONS.get(name)
    return SPANS_TABLE if schema == "" and name == "spans" else None


def _filter_in_place(table: exp.Table, physical: str, project: str) -> bool:
    """Read `physical` directly in `table`'s SELECT and confine it there: possible when the table is the
    FROM of a SELECT that names no column `project` other than the table's own and selects no `*`
    (the physical tables have columns the views do not show)."""
    source = table.parent
    select = source.parent if isinstance(source, exp.From) else None
    if not isinstance(select, exp.Select):
        return False
    for projection in select.expressions:
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
            return False
        if projection.alias_or_name.lower() == "project" and not isinstance(projection.unalias(), exp.Column):
            return False
    alias = table.alias or table.name
    table.set("db", None)
    table.set("this", exp.to_identifier(physical))
    table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    select.where(exp.EQ(this=exp.column("project", table=alias), expression=literal(project)), copy=False)
    return True


# Views whose body reads only the columns a query names (see `_read_columns`).
_PRUNED_VIEWS = frozenset({"llm_logs", "feedback_events"})


def _read_columns(tree: exp.Expr, table: exp.Table, view: str) -> dict[str, frozenset[str]]:
    """{"columns": the names `tree` may read from `table`} for a view in `_PRUNED_VIEWS`: every column
    qualified by the table's alias or by none (a superset: names of other tables and aliases do no harm).
    Nothing when a `*`, a JOIN ... USING or a NATURAL JOIN could read columns the query does not name."""
    if view not in _PRUNED_VIEWS:
        return {}
    for select in tree.find_all(exp.Select):
        if any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star) for p in select.expressions):
            return {}
    if any(join.args.get("using") or join.method.upper() == "NATURAL" for join in tree.find_all(exp.Join)):
        return {}
    alias = (table.alias or table.name).lower()
    names = {c.name.lower() for c in tree.find_all(exp.Column) if not c.table or c.table.lower() == alias}
    return {"columns": frozenset(names)}


def _pushed_conditions(table: exp.Table, view: str, translator: Translator) -> dict[str, str]:
    """The conditions of the WHERE of the SELECT reading `view` (in its FROM) that its body can apply to
    the rows it reads first (`PUSHABLE`), as ClickHouse SQL per body keyword. The WHERE stays as it is."""
    allowed = PUSHABLE.get(view)
    source = table.parent
    select = source.parent if isinstance(source, exp.From) else None
    where = select.args.get("where") if isinstance(select, exp.Select) else None
    if not allowed or not isinstance(where, exp.Where):
        return {}
    alias = (table.alias or table.name).lower()
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    pushed: dict[str, list[str]] = {}
    for conjunct in conjuncts:
        if conjunct.find(exp.Select, exp.Subquery, exp.AggFunc, exp.Window, exp.Placeholder) is not None:
            continue
        columns = list(conjunct.find_all(exp.Column))
        if not columns or any(c.table and c.table.lower() != alias for c in columns):
            continue
        names = {c.name.lower() for c in columns}
        bare = conjunct.copy()
        for column in bare.find_all(exp.Column):
            column.set("table", None)
        for keyword, names_allowed in allowed.items():
            if names <= names_allowed:
                pushed.setdefault(keyword, []).append(f"({translator.to_clickhouse(bare)})")
    return {keyword: " AND ".join(conditions) for keyword, conditions in pushed.items()}


def inline_filtered_views(tree: exp.Expr, translator: Translator) -> str:
    """ClickHouse SQL for a trusted query that reads every project: a view whose SELECT has conditions
    its body can apply early (`PUSHABLE`) is replaced by that body with them; other views keep their
    names (the database's views)."""
    tree = inline_ctes(tree)
    nonce = secrets.token_hex(8)
    bodies: dict[str, str] = {}
    for index, table in enumerate(list(tree.find_all(exp.Table))):
        name = table.name.lower()
        if table.args.get("db") is not None or name not in VIEW_BODIES or not isinstance(table.this, exp.Identifier):
            continue
        shaped = {**_pushed_conditions(table, name, translator), **_read_columns(tree, table, name)}
        if not shaped:
            continue
        placeholder = f"llmlens_{nonce}_{name}_{index}_"
        bodies[placeholder] = VIEW_BODIES[name]("", **shaped)
        alias = table.alias or table.name
        table.set("this", exp.to_identifier(placeholder))
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    sql = translator.to_clickhouse(tree)
    for placeholder, body in bodies.items():
        for quoted in (f'"{placeholder}"', f"`{placeholder}`", placeholder):
            sql = sql.replace(quoted, f"({body})")
    return sql
