"""Translated trusted queries, kept so that a page's statements are parsed and rewritten once.

Turning a DuckDB-flavoured query into ClickHouse SQL (sqlglot parse, view inlining, rewrites) costs
several milliseconds a statement, as much as ClickHouse takes to answer many of them. A page runs the
same statements with new values each time (its window moves), so what is kept is a template: the query
translated with a marker in place of each string, float and time value, into which the values of a
later call are put back as literals. Small ints, NULL and booleans are part of the key;
a query with a list or a large int (ids, hour numbers: values of one call), a very long query and one with
many values are translated every time.

A template is kept only if putting the values of the call that made it back in gives exactly what
translating with those values gives; a query whose translation depends on such a value (a JSON path,
a row-number bound) is marked as not kept and is translated on every call. Keys hold the project the
query is confined to; the number of templates is bounded. The SQL page's queries are kept the same way
(they have no values), by project.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from ._translate import literal

Params = Sequence[Any] | dict[str, Any]
_NOT_KEPT = object()
_SIZE = 1024  # templates kept (a page reads with 5-20 statements, each kept per range unit and project)
_SMALL = 100_000  # ints up to this (limits, counts) are part of the key; larger ones vary by call
# Queries longer than this or with more values than this (a long list of ids) are seldom run twice alike:
# they are translated every time, not kept.
_LONGEST_SQL = 20_000
_MOST_VALUES = 64


class _Template:
    __slots__ = ("_pattern", "_slots", "_sql")

    def __init__(self, sql: str, slots: dict[str, int | str]) -> None:
        self._sql = sql
        self._slots = slots  # marker text -> the parameter it stands for (index or name)
        self._pattern = re.compile("|".join(_marker_regex(m) for m in sorted(slots, key=len, reverse=True)))

    def fill(self, params: Params) -> str:
        if not self._slots:
            return self._sql
        texts = {marker: _value_text(_param(params, slot)) for marker, slot in self._slots.items()}
        return self._pattern.sub(lambda m: texts[m.group(0)], self._sql)


class TranslationCache:
    """Templates by (scope, SQL, value shapes), where the scope says how the SQL is translated and for
    which project; `translate(params)` makes the SQL on a miss."""

    def __init__(self, size: int = _SIZE) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[Any, ...], _Template | object] = OrderedDict()
        self._lock = threading.Lock()

    def translated(
        self, scope: tuple[str, str | None], sql: str, params: Params, translate: Callable[[Params], str]
    ) -> str:
        shape = _shape(params)
        if shape is None or len(sql) > _LONGEST_SQL:
            return translate(params)
        key = (scope, sql, shape)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
        if isinstance(kept, _Template):
            return kept.fill(params)
        direct = translate(params)  # raises for a bad query, which is then not kept either
        if kept is None:
            self._keep(key, _template(params, direct, translate))
        return direct

    def _keep(self, key: tuple[Any, ...], template: _Template | object) -> None:
        with self._lock:
            self._kept[key] = template
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)


def _template(params: Params, direct: str, translate: Callable[[Params], str]) -> _Template | object:
    nonce = secrets.token_hex(6)
    slots: dict[str, int | str] = {}
    marked: list[Any] | dict[str, Any]
    if isinstance(params, dict):
        marked = {name: _marked(value, nonce, slots, name) for name, value in params.items()}
    else:
        marked = [_marked(value, nonce, slots, i) for i, value in enumerate(params)]
    if not slots:
        return _Template(direct, {})
    try:
        template = _Template(translate(marked), slots)
    except Exception:  # a marker the translation cannot take: this query is not kept
        return _NOT_KEPT
    return template if template.fill(params) == direct else _NOT_KEPT


def _marked(value: Any, nonce: str, slots: dict[str, int | str], slot: int | str) -> Any:
    """The marker standing for parameter `slot`'s `value` (its text recorded in `slots`), or `value` when it
    is kept as is."""
    if isinstance(value, str):
        marker: Any = f"llmlens_{nonce}_{slot}"
    elif isinstance(value, float):
        marker = float(f"0.{int(nonce, 16) % 10**9:09d}{len(slots):03d}7")
    elif isinstance(value, dt.datetime):
        marker = dt.datetime.fromtimestamp(3_000_000_000 + int(nonce, 16) % 10**8 * 10 + len(slots), dt.UTC)
    else:
        return value
    slots[_value_text(marker)] = slot
    return marker


def _value_text(value: Any) -> str:
    """How `value` reads in the translated SQL (a time: its seconds inside toDateTime(..., 'UTC'))."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return str(math.floor(aware.timestamp()))
    return str(literal(value).sql(dialect="clickhouse"))


def _marker_regex(marker: str) -> str:
    escaped = re.escape(marker)
    return escaped if marker.startswith("'") else rf"(?<![\w.]){escaped}(?![\w.])"


def _param(params: Params, slot: int | str) -> Any:
    return params[str(slot)] if isinstance(params, dict) else params[int(slot)]


def _shape(params: Params) -> tuple[Any, ...] | None:
    """What of `params` the key holds: the kind of each marked value, every other value itself; None
    when a value cannot be part of a key."""
    if len(params) > _MOST_VALUES:
        return None
    items = sorted(params.items()) if isinstance(params, dict) else list(enumerate(params))
    shape: list[Any] = []
    for name, value in items:
        if isinstance(value, str):
            shape.append((name, "s"))
        elif isinstance(value, float) and math.isfinite(value):
            shape.append((name, "f"))
        elif isinstance(value, dt.datetime):
            shape.append((name, "t"))
        elif value is None or isinstance(value, bool | dt.date) or (isinstance(value, int) and abs(value) <= _SMALL):
            shape.append((name, type(value).__name__, value))
        else:  # ids in a list, an hour number: values of one call, whose template would not be used again
            return None
    return tuple(shape)
