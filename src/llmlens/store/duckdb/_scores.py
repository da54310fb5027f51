"""Scores in DuckDB: one transaction registers new score names, refuses mismatched types, inserts the rest."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import duckdb

from llmlens.model import Score

from .._columns import SCORE_COLUMNS
from .._protocol import ScoreWriteResult
from ._batch_columns import select_list, stage, staged_types

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)

_STAGED = staged_types(SCORE_COLUMNS)
_INSERT = (
    f"INSERT INTO store.scores SELECT {select_list(SCORE_COLUMNS)}, ?::TIMESTAMP FROM score_batch b "
    "WHERE NOT EXISTS (SELECT 1 FROM store.scores s WHERE s.project = b.project AND s.score_id = b.score_id)"
)


def _rows(scores: Sequence[Score]) -> list[tuple[Any, ...]]:
    encode = _JSON.encode
    kinds = [kind for _, kind, _ in SCORE_COLUMNS]
    return [
        tuple(
            (encode(v) if v else None) if kind == "json" else v
            for kind, v in zip(kinds, (getattr(s, attr) for _, _, attr in SCORE_COLUMNS), strict=True)
        )
        for s in scores
    ]


def registered_types(con: duckdb.DuckDBPyConnection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(project, name) -> data type, for the keys already registered."""
    if not keys:
        return {}
    stage(con, "wanted_score_names", [("project", "VARCHAR"), ("name", "VARCHAR")], keys)
    rows = con.execute(
        "SELECT n.project, n.name, n.data_type FROM store.score_names n "
        "JOIN wanted_score_names w ON w.project = n.project AND w.name = n.name"
    ).fetchall()
    return {(str(p), str(n)): str(t) for p, n, t in rows}


def write_scores(con: duckdb.DuckDBPyConnection, scores: Sequence[Score], stamp: dt.datetime) -> ScoreWriteResult:
    """Run inside the caller's transaction (it holds the store's write lock); the scores are stamped with
    `stamp` (their `ingested_at`, which `_write_indexes.py` catches up by)."""
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
        stage(
            con,
            "new_score_names",
            [("project", "VARCHAR"), ("name", "VARCHAR"), ("data_type", "VARCHAR")],
            [(p, n, t) for (p, n), t in new_names.items()],
        )
        con.execute(
            "INSERT INTO store.score_names SELECT project, name, data_type, ? FROM new_score_names "
            "ON CONFLICT DO NOTHING",
            [dt.datetime.now(dt.UTC).replace(tzinfo=None)],
        )
    written = 0
    if accepted:
        stage(con, "score_batch", _STAGED, _rows(list(accepted.values())))
        row = con.execute(_INSERT, [stamp]).fetchone()
        written = int(row[0]) if row else 0
    return ScoreWriteResult(written=written, duplicate=len(scores) - len(conflicts) - written, type_conflicts=conflicts)


def score_names(cur: duckdb.DuckDBPyConnection, project: str) -> dict[str, str]:
    rows = cur.execute(
        "SELECT name, data_type FROM store.score_names WHERE project = ? ORDER BY name", [project]
    ).fetchall()
    return {str(n): str(t) for n, t in rows}
