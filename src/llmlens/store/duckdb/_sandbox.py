"""Check untrusted SQL before DuckDB runs it: one SELECT, reading only the article's views.

DuckDB parses the query for us (`json_serialize_sql`, which only accepts SELECT statements); we walk
the tree and refuse file/network table functions, replacement scans of file paths, other schemas and
catalogs, and any relation that is not a queryable view or a CTE of the query itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb

from .._columns import QUERYABLE_VIEWS
from .._protocol import SqlRejected

_ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# Stored times are naive UTC and the console's time zone is UTC. DuckDB's NOW() is a TIMESTAMPTZ, so
# `timestamp > NOW() - INTERVAL 7 DAY` converts every stored time and can skip no row group by its
# min/max (600 ms at 1M calls); the same instant as a TIMESTAMP compares as stored (40 ms).
NOW_AS_TIMESTAMP = "CREATE OR REPLACE TEMP MACRO now() AS current_localtimestamp()"
_DENIED_FUNCTIONS = frozenset(
    {"getvariable", "current_setting", "getenv", "read_text", "read_blob", "query", "query_table"}
)


def check_user_sql(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise SqlRejected with a reason when `sql` is not a single read-only query over our views."""
    if not sql.strip():
        raise SqlRejected("the query is empty")
    statements = con.extract_statements(sql)
    if len(statements) != 1:
        raise SqlRejected("send exactly one SQL statement")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        first = sql.strip().split(None, 1)[0].upper()
        raise SqlRejected(f"only read-only SELECT queries are allowed, not {first}")
    tree_json = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    tree = json.loads(tree_json[0]) if tree_json else {"error": True}
    if tree.get("error"):
        message = tree.get("error_message") or "cannot parse the query"
        # Not a plain SELECT (e.g. a statement the serializer does not support): refuse.
        raise SqlRejected(f"only plain SELECT queries are allowed: {message}")
    ctes: set[str] = set()
    for node in _walk(tree):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map", []):
                ctes.add(str(entry.get("key", "")).lower())
    if ctes:
        _check_cte_names(con, ctes)
    for node in _walk(tree):
        node_type = node.get("type")
        if node_type == "BASE_TABLE":
            _check_table(node, ctes)
        elif node_type == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            name = str(fn.get("function_name", "")).lower()
            if name not in _ALLOWED_TABLE_FUNCTIONS:
                raise SqlRejected(f"table function {name}() is not allowed: the console reads only {_views()}")
        elif node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name in _DENIED_FUNCTIONS or name.startswith(("read_", "duckdb_", "pragma_")):
                raise SqlRejected(f"function {name}() is not allowed in the SQL console")


def _check_cte_names(con: duckdb.DuckDBPyConnection, ctes: set[str]) -> None:
    """A CTE may not borrow the name of a real table: the CTE set is global to the query, so a
    reference outside the CTE's scope would otherwise reach the table (e.g. `llmlens_meta`)."""
    rows = con.execute(
        "SELECT lower(table_name) FROM duckdb_tables() UNION ALL SELECT lower(view_name) FROM duckdb_views()"
    ).fetchall()
    taken = {str(r[0]) for r in rows} - set(QUERYABLE_VIEWS)
    clash = sorted(ctes & taken)
    if clash:
        raise SqlRejected(f"a CTE may not be named {clash[0]!r}: pick another name")


def _check_table(node: dict[str, Any], ctes: set[str]) -> None:
    name = str(node.get("table_name", ""))
    schema = str(node.get("schema_name", "")).lower()
    catalog = str(node.get("catalog_name", "")).lower()
    if catalog or schema not in ("", "main"):
        raise SqlRejected(
            f"relation {'.'.join(p for p in (catalog, schema, name) if p)} is not allowed: query {_views()}"
        )
    if schema == "" and name.lower() in ctes:
        return
    if name.lower() not in QUERYABLE_VIEWS:
        raise SqlRejected(f"unknown relation {name!r}: query {_views()}")


def _views() -> str:
    return ", ".join(QUERYABLE_VIEWS)


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
