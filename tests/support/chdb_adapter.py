"""Current ClickHouse in process (chdb) behind the `clickhouse_driver.Client` calls the ClickHouse store makes.

Tests only: `ChdbEngine(path).store(url)` opens a `ClickHouseStore` whose own code (schema, inserts,
mutations, translated queries) runs on the ClickHouse release chdb embeds instead of a server. The
adapter covers what the store uses of the driver: `%(name)s` parameters, `INSERT ... VALUES` with
rows or columns, external tables (`... IN _batch`), per-query settings, `with_column_types`, and
server errors as `ServerException` with their code.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from chdb import ChdbError
from chdb import session as chdb_session
from clickhouse_driver.errors import ServerException

from llmlens.store.clickhouse import ClickHouseStore, ClickHouseUrl

_INSERT_VALUES = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<table>[\w.`]+)\s*(?:\((?P<cols>[^)]*)\))?\s*VALUES\s*$", re.I | re.S
)
_PARAM = re.compile(r"%\((\w+)\)s")
_CODE = re.compile(r"Code:\s*(\d+)")
# Settings that must be known before a statement is parsed: set once for the session instead.
_SESSION_SETTINGS = {"max_query_size": 256 * 1024 * 1024}


def _literal(value: Any) -> str:
    """A ClickHouse literal, as the driver would substitute it for `%(name)s`."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | Decimal):
        return repr(float(value)) if isinstance(value, float) and not math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return f"'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    if isinstance(value, list | tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _unwrap(ch_type: str, prefix: str) -> str | None:
    if ch_type.startswith(prefix + "(") and ch_type.endswith(")"):
        return ch_type[len(prefix) + 1 : -1]
    return None


def _split_args(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += ch in "(["
        depth -= ch in ")]"
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _python_value(value: Any, ch_type: str) -> Any:
    """A JSON value of a result column -> what clickhouse_driver would return for that type."""
    for wrapper in ("Nullable", "LowCardinality"):
        inner = _unwrap(ch_type, wrapper)
        if inner is not None:
            return None if value is None else _python_value(value, inner)
    if value is None:
        return None
    inner = _unwrap(ch_type, "Array")
    if inner is not None:
        return [_python_value(v, inner) for v in value]
    inner = _unwrap(ch_type, "Tuple")
    if inner is not None:
        types = [
            t.split(" ", 1)[-1] if " " in t and not t.startswith(("Nullable", "Array")) else t
            for t in _split_args(inner)
        ]
        return tuple(_python_value(v, t) for v, t in zip(value, types, strict=True))
    if ch_type.startswith("DateTime"):
        parsed = dt.datetime.fromisoformat(str(value))
        return parsed.replace(tzinfo=dt.UTC) if "'" in ch_type else parsed
    if ch_type.startswith("Date"):
        return dt.date.fromisoformat(str(value))
    if ch_type.startswith(("Int", "UInt")):
        return int(value)
    if ch_type.startswith("Float"):
        return float(value)
    if ch_type.startswith("Decimal"):
        return Decimal(str(value))
    if ch_type == "Bool":
        return bool(value)
    return value


class ChdbEngine:
    """One chdb session in a folder; every client made from it shares it (chdb runs one engine per process)."""

    def __init__(self, path: Path) -> None:
        self._session = chdb_session.Session(str(path))
        self._lock = threading.RLock()
        self._database: str | None = None
        for name, value in _SESSION_SETTINGS.items():
            self._session.query(f"SET {name} = {value}")

    def client(self, url: ClickHouseUrl, database: str) -> ChdbClient:
        return ChdbClient(self, database)

    def store(self, url: str, **options: Any) -> ClickHouseStore:
        return ClickHouseStore(url, client_factory=self.client, **options)

    def version(self) -> str:
        return str(self.run("SELECT version()", "default")[0][0][0])

    def close(self) -> None:
        with self._lock:
            self._session.close()

    def run(self, sql: str, database: str) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
        with self._lock:
            try:
                if database != self._database:
                    self._session.query(f"CREATE DATABASE IF NOT EXISTS `{database}`")
                    self._session.query(f"USE `{database}`")
                    self._database = database
                result = self._session.query(sql, "JSONCompact")
            except ChdbError as exc:
                message = str(exc)
                code = _CODE.search(message)
                raise ServerException(message, code=int(code.group(1)) if code else None) from None
        text = str(result).strip()
        if not text:
            return [], []
        doc = json.loads(text)
        meta = [(c["name"], c["type"]) for c in doc["meta"]]
        rows = [tuple(_python_value(v, t) for v, (_, t) in zip(row, meta, strict=True)) for row in doc["data"]]
        return rows, meta


class ChdbClient:
    """What the store calls on a `clickhouse_driver.Client`, run on a `ChdbEngine`."""

    def __init__(self, engine: ChdbEngine, database: str) -> None:
        self._engine = engine
        self._database = database

    def execute(
        self,
        query: str,
        params: Any = None,
        *,
        with_column_types: bool = False,
        external_tables: Sequence[dict[str, Any]] | None = None,
        settings: dict[str, Any] | None = None,
        columnar: bool = False,
    ) -> Any:
        insert = _INSERT_VALUES.match(query)
        if insert is not None:
            self._insert(insert.group("table"), insert.group("cols"), params or [], columnar=columnar)
            return [] if not with_column_types else ([], [])
        if isinstance(params, dict):
            query = _PARAM.sub(lambda m: _literal(params[m.group(1)]), query)
        query_settings = {k: v for k, v in (settings or {}).items() if k not in _SESSION_SETTINGS}
        if query_settings and not query.lstrip().upper().startswith(("INSERT", "CREATE", "DROP")):
            query += " SETTINGS " + ", ".join(f"{k} = {_literal(v)}" for k, v in query_settings.items())
        with self._engine._lock:
            made = [self._external(t) for t in external_tables or []]
            try:
                rows, meta = self._engine.run(query, self._database)
            finally:
                for name in made:
                    self._engine.run(f"DROP TABLE IF EXISTS `{name}`", self._database)
        return (list(rows), meta) if with_column_types else list(rows)

    def _external(self, table: dict[str, Any]) -> str:
        name = table["name"]
        structure = ", ".join(f"`{c}` {t}" for c, t in table["structure"])
        self._engine.run(f"DROP TABLE IF EXISTS `{name}`", self._database)
        self._engine.run(f"CREATE TABLE `{name}` ({structure}) ENGINE = Memory", self._database)
        names = [c for c, _ in table["structure"]]
        rows = [[r[c] for c in names] if isinstance(r, dict) else list(r) for r in table["data"]]
        self._insert_rows(name, names, rows)
        return str(name)

    def _insert(self, table: str, cols: str | None, data: Any, *, columnar: bool) -> None:
        if cols:
            names = [c.strip().strip("`") for c in cols.split(",")]
        else:
            found, _ = self._engine.run(
                f"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '{table}' "
                "AND default_kind NOT IN ('ALIAS', 'MATERIALIZED') ORDER BY position",
                self._database,
            )
            names = [r[0] for r in found]
        if columnar:
            rows = [list(r) for r in zip(*data, strict=True)]
        else:
            rows = [[r[c] for c in names] if isinstance(r, dict) else list(r) for r in data]
        self._insert_rows(table, names, rows)

    def _insert_rows(self, table: str, names: list[str], rows: list[list[Any]]) -> None:
        if not rows:
            return
        lines = "\n".join(
            json.dumps({c: _json_value(v) for c, v in zip(names, row, strict=True)}, ensure_ascii=False) for row in rows
        )
        listed = ", ".join(f"`{c}`" for c in names)
        self._engine.run(
            f"INSERT INTO {table} ({listed}) SETTINGS date_time_input_format = 'best_effort' FORMAT JSONEachRow\n{lines}",
            self._database,
        )

    def disconnect(self) -> None:
        """Nothing to close: the session is the engine's."""
