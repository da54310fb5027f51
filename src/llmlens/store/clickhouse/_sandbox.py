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
from ._schema import FEEDBACK_TABLE, ROLLUP_VIEW, SPANS_TABLE, VIEW_BODIES
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
    for table in list(tree.find_all(exp.Table)):
        placeholder = _check_table(table, nonce)
        if placeholder not in bodies:
            bodies[placeholder] = VIEW_BODIES[table.name.lower()](project_filter)
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

    Every relation it reads is replaced by a project-filtered subquery: the views by their bodies,
    `store.spans`/`store.feedback` and the hourly rollup by `SELECT * ... WHERE project = ...`.
    """
    tree = inline_ctes(tree)
    nonce = secrets.token_hex(8)
    project_filter = f"project = {literal(project).sql(dialect='clickhouse')}"
    bodies: dict[str, str] = {}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            raise SqlRejected("table functions are not allowed in project-scoped queries")
        db = table.args.get("db")
        schema = db.name.lower() if db is not None else ""
        name = table.name.lower()
        if schema == "store" and name in ("spans", "feedback"):
            base = SPANS_TABLE if name == "spans" else FEEDBACK_TABLE
            body = f"SELECT * FROM {base} WHERE {project_filter}"
        elif schema == "" and name in VIEW_BODIES:
            body = VIEW_BODIES[name](project_filter)
        elif schema == "" and name == ROLLUP_VIEW:
            body = f"SELECT * FROM {ROLLUP_VIEW} WHERE {project_filter}"
        else:
            raise SqlRejected(f"relation {table.sql(dialect='duckdb')} is not visible in a project-scoped query")
        placeholder = f"llmlens_{nonce}_{schema}_{name}"
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
