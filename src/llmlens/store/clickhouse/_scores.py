"""Scores in ClickHouse: name registry checks, then an insert of the scores not stored yet.

ClickHouse has no transactions and several servers may share a database: a name's data type is the
one of its earliest registration (`argMin` over `created_us`), re-read after registering, so two
servers that race to create a name with different types agree on which one won.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmlens.model import Score, now_us

from .._columns import SCORE_COLUMNS
from .._protocol import ScoreWriteResult
from ._connection import GuardedClient
from ._schema import SCORE_NAMES_TABLE, SCORES_TABLE

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def _pairs_table(keys: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "name": "_batch",
        "structure": [("project", "String"), ("key", "String")],
        "data": [{"project": p, "key": k} for p, k in keys],
    }


def registered_types(client: GuardedClient, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    if not keys:
        return {}
    rows = client.execute(
        f"SELECT project, name, argMin(data_type, created_us) FROM {SCORE_NAMES_TABLE} "
        "WHERE (project, name) IN _batch GROUP BY project, name",
        external_tables=[_pairs_table(keys)],
    )
    return {(str(p), str(n)): str(t) for p, n, t in rows}


def _insert_columns(scores: Sequence[Score]) -> tuple[list[str], list[list[Any]]]:
    names: list[str] = []
    data: list[list[Any]] = []
    for col, kind, attr in SCORE_COLUMNS:
        values = [getattr(s, attr) for s in scores]
        if kind == "timestamp":
            names.append("timestamp_us")
            data.append([int(v) for v in values])
            continue
        if kind == "json":
            values = [_JSON.encode(v) if v else None for v in values]
        elif kind == "float":
            values = [None if v is None else float(v) for v in values]
        names.append(col)
        data.append(values)
    return names, data


def write_scores(client: GuardedClient, scores: Sequence[Score]) -> ScoreWriteResult:
    """Called with the store's write lock held (one writer per server; other servers may race)."""
    keys = sorted({(s.project, s.name) for s in scores})
    known = registered_types(client, keys)
    new_names: dict[tuple[str, str], str] = {}
    for score in scores:
        key = (score.project, score.name)
        if key not in known and key not in new_names:
            new_names[key] = score.data_type
    if new_names:
        created = now_us()
        client.execute(
            f"INSERT INTO {SCORE_NAMES_TABLE} (project, name, data_type, created_us) VALUES",
            [(p, n, t, created) for (p, n), t in new_names.items()],
        )
        known.update(registered_types(client, list(new_names)))
    conflicts: dict[int, str] = {}
    accepted: dict[tuple[str, str], Score] = {}
    for position, score in enumerate(scores):
        data_type = known.get((score.project, score.name), score.data_type)
        if data_type != score.data_type:
            conflicts[position] = data_type
            continue
        accepted.setdefault((score.project, score.score_id), score)
    written = 0
    if accepted:
        rows = client.execute(
            f"SELECT project, score_id FROM {SCORES_TABLE} WHERE (project, score_id) IN _batch",
            external_tables=[_pairs_table(list(accepted))],
        )
        seen = {(str(p), str(i)) for p, i in rows}
        fresh = [s for key, s in accepted.items() if key not in seen]
        if fresh:
            names, data = _insert_columns(fresh)
            columns = ", ".join(f"`{n}`" for n in names)
            client.execute(f"INSERT INTO {SCORES_TABLE} ({columns}) VALUES", data, columnar=True)
        written = len(fresh)
    return ScoreWriteResult(written=written, duplicate=len(scores) - len(conflicts) - written, type_conflicts=conflicts)


def score_names(client: GuardedClient, project: str) -> dict[str, str]:
    rows = client.execute(
        f"SELECT name, argMin(data_type, created_us) FROM {SCORE_NAMES_TABLE} "
        "WHERE project = %(project)s GROUP BY name ORDER BY name",
        {"project": project},
    )
    return {str(n): str(t) for n, t in rows}
