"""Scores in DuckDB: one transaction registers new score names, refuses mismatched types, inserts the rest."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np

from llmlens.model import Score

from .._columns import SCORE_COLUMNS
from .._protocol import ScoreWriteResult

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)

_CASTS = {"timestamp": 'make_timestamp(b."{col}"::BIGINT)', "json": 'b."{col}"::JSON'}
_SELECT = ", ".join(_CASTS.get(kind, 'b."{col}"').format(col=col) for col, kind, _ in SCORE_COLUMNS)
_INSERT = (
    f"INSERT INTO store.scores SELECT {_SELECT}, now()::TIMESTAMP FROM batch b "
    "WHERE NOT EXISTS (SELECT 1 FROM store.scores s WHERE s.project = b.project AND s.score_id = b.score_id)"
)


def _arrays(scores: Sequence[Score]) -> dict[str, np.ndarray[Any, Any]]:
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for col, kind, attr in SCORE_COLUMNS:
        values = [getattr(s, attr) for s in scores]
        if kind == "json":
            values = [_JSON.encode(v) if v else None for v in values]
        arrays[col] = np.array(values, dtype=object)
    return arrays


def registered_types(con: duckdb.DuckDBPyConnection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(project, name) -> data type, for the keys already registered."""
    if not keys:
        return {}
    wanted = {  # noqa: F841 - read by DuckDB's replacement scan
        "project": np.array([p for p, _ in keys], dtype=object),
        "name": np.array([n for _, n in keys], dtype=object),
    }
    rows = con.execute(
        "SELECT n.project, n.name, n.data_type FROM store.score_names n "
        "JOIN wanted w ON w.project = n.project AND w.name = n.name"
    ).fetchall()
    return {(str(p), str(n)): str(t) for p, n, t in rows}


def write_scores(con: duckdb.DuckDBPyConnection, scores: Sequence[Score]) -> ScoreWriteResult:
    """Run inside the caller's transaction (it holds the store's write lock)."""
    known = registered_types(con, {(s.project, s.name) for s in scores})
    new_names: dict[tuple[str, str], str] = {}
    conflicts: dict[int, str] = {}
    accepted: dict[tuple[str, str], Score] = {}
    for position, score in enumerate(scores):
        key = (score.project, score.name)
        data_type = known.get(key) or new_names.get(key)
        if data_type is None:
            new_names[key] = score.data_type
        elif data_type != score.data_type:
            conflicts[position] = data_type
            continue
        accepted.setdefault((score.project, score.score_id), score)
    if new_names:
        names = {  # noqa: F841 - read by DuckDB's replacement scan
            "project": np.array([p for p, _ in new_names], dtype=object),
            "name": np.array([n for _, n in new_names], dtype=object),
            "data_type": np.array(list(new_names.values()), dtype=object),
        }
        con.execute(
            "INSERT INTO store.score_names SELECT project, name, data_type, ? FROM names ON CONFLICT DO NOTHING",
            [dt.datetime.now(dt.UTC).replace(tzinfo=None)],
        )
    written = 0
    if accepted:
        batch = _arrays(list(accepted.values()))  # noqa: F841 - read by DuckDB's replacement scan
        row = con.execute(_INSERT).fetchone()
        written = int(row[0]) if row else 0
    return ScoreWriteResult(written=written, duplicate=len(scores) - len(conflicts) - written, type_conflicts=conflicts)


def score_names(cur: duckdb.DuckDBPyConnection, project: str) -> dict[str, str]:
    rows = cur.execute(
        "SELECT name, data_type FROM store.score_names WHERE project = ? ORDER BY name", [project]
    ).fetchall()
    return {str(n): str(t) for n, t in rows}
