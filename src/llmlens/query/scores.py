"""Scores beside the other dashboards: mean, count and 95 % interval of each score name on the LLM calls
of the window, by feature, model, template version, user tier and latency bucket; the scores of one trace.

Counts what the `scores` view gives (stored scores and thumbs as `user_feedback`) on the calls it names: from
the score and feedback rollups where the store keeps them (DuckDB), else joined to the window's calls by
span id. Booleans get a Wilson interval; numbers a normal one (mean ± 1.96 standard errors, from 2 scores on);
categories are counted only.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store
from llmlens.store.rollups import LATENCY_HISTOGRAM_EDGES_MS
from llmlens.store.rollups._page_tables import (
    FEEDBACK,
    FEEDBACK_USERS,
    SCORE_USERS,
    SCORES,
    SPEED_SQL,
    USER_MODELS,
)

from ._call_feedback import page_rollups, score_order
from ._call_feedback import stored_trace_scores as stored_trace_scores  # the trace page reads them early
from ._common import Scope, grouped_two_ways, num, opt, rows
from ._id_lookup import rows_by_id
from ._page_rollups import page_aggregate
from ._rollup import aggregate, rollups_enabled, user_spend
from .budgets import Budgets
from .stats import Z_95, wilson

SPEED_BUCKETS = ("fast", "medium", "slow")
_NONE = "(none)"


@dataclass(slots=True)
class ScoreCell:
    """One score name over one group of calls."""

    name: str
    count: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    # count / the group's calls: how many calls have this score (for inferred signals, their rate)
    per_call: float | None = None


@dataclass(slots=True)
class ScoreRow:
    key: str
    calls_scored: int  # scores of any name in this group
    scores: list[ScoreCell]  # one per `ScoreColumns.names`, in that order
    calls: int = 0  # LLM calls in this group (scored or not)


@dataclass(slots=True)
class ScoreColumns:
    names: list[str] = field(default_factory=list)
    data_types: dict[str, str] = field(default_factory=dict)
    calls: int = 0  # LLM calls in the window
    overall: list[ScoreCell] = field(default_factory=list)
    by_feature: list[ScoreRow] = field(default_factory=list)
    by_model: list[ScoreRow] = field(default_factory=list)
    by_template_version: list[ScoreRow] = field(default_factory=list)
    by_user_tier: list[ScoreRow] = field(default_factory=list)
    by_speed: list[ScoreRow] = field(default_factory=list)


@dataclass(slots=True)
class _Sums:
    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, n: int, total: Any, squares: Any) -> None:
        self.n += n
        self.total += opt(total) or 0.0
        self.squares += opt(squares) or 0.0


def _cell(name: str, data_type: str, sums: _Sums | None, calls: int) -> ScoreCell:
    if sums is None or sums.n == 0:
        return ScoreCell(name, 0, None, None, None, 0.0 if calls else None)
    n = sums.n
    per_call = n / calls if calls else None
    if data_type == "categorical":
        return ScoreCell(name, n, None, None, None, per_call)
    mean = sums.total / n
    if data_type == "boolean":
        interval = wilson(round(sums.total), n)
        return ScoreCell(name, n, mean, interval.ci_low, interval.ci_high, per_call)
    if n < 2:
        return ScoreCell(name, n, mean, None, None, per_call)
    variance = max(0.0, (sums.squares - n * mean * mean) / (n - 1))
    half = Z_95 * math.sqrt(variance / n)
    return ScoreCell(name, n, mean, mean - half, mean + half, per_call)


_CALLS = (
    "SELECT span_id, message_id, feature, model, template_id, template_version, latency_ms, user_id, "
    "json_extract_string(metadata, '$.tier') AS tier FROM spans WHERE {where} AND kind = 'llm'{extra}"
)
# The window's calls joined to their scores once, each joined row counted both by the page's dimensions
# and by user (`per_user`; the tier needs the budgets' user table, in Python).
_SCORED_CALLS = f"""
SELECT sc.name AS name, sc.data_type AS data_type, sc.value AS value,
  COALESCE(s.feature, '(none)') AS feature, COALESCE(s.model, '(none)') AS model,
  COALESCE(s.template_id, '') AS template_id, COALESCE(s.template_version, '') AS template_version,
  {SPEED_SQL.replace("latency_ms", "s.latency_ms")} AS speed, s.user_id AS user_id, s.tier AS tier
FROM ({{calls}}) s JOIN ({{sc}}) sc ON sc.span_id = s.span_id
"""
_BOTH_WAYS = grouped_two_ways(
    _SCORED_CALLS,
    shared=["name"],
    first=["data_type", "feature", "model", "template_id", "template_version", "speed"],
    second=["user_id"],
    flag="per_user",
    values=["value", "tier"],
    aggregates="MAX(tier) AS tier, COUNT(*) AS n, SUM(value) AS total, SUM(value * value) AS squares",
)


def _rows(
    groups: dict[str, dict[str, _Sums]], calls: dict[str, int], names: list[str], types: dict[str, str]
) -> list[ScoreRow]:
    out = [
        ScoreRow(
            key,
            sum(s.n for s in by_name.values()),
            [_cell(n, types[n], by_name.get(n), calls.get(key, 0)) for n in names],
            calls.get(key, 0),
        )
        for key, by_name in groups.items()
    ]
    return sorted(out, key=lambda r: (-r.calls_scored, r.key))


def score_columns(store: Store, scope: Scope, budgets: Budgets, *, model: str | None = None) -> ScoreColumns:
    """Scores of the calls made in the window (optionally of one model)."""
    extra = " AND model = ?" if model else ""
    rolled_up = page_rollups(store) and rollups_enabled(store)
    calls = _CALLS.format(where=scope.where(), extra=extra)
    call_params = [*scope.params(), *([model] if model else [])]
    if rolled_up:
        # Stored scores from the score rollups, plus those sent with only a message id (placed on its first
        # call here); thumbs from the feedback rollups.
        placed, placed_by_user = _unplaced(store, scope, model)
        grouped = [*_stored(store, scope, model), *placed, *_thumbs(store, scope, model)]
        stored_by_user = _stored_by_user(store, scope, model)
        if placed_by_user:  # rows of a user and name in both: one row, as if grouped at once
            stored_by_user = _per_user([*stored_by_user, *placed_by_user])
        by_user = [*stored_by_user, *_thumbs_by_user(store, scope, model)]
    else:
        # The calls come first: ClickHouse keeps the right side of a join in memory, and the scores are fewer.
        scored_sql, scored_params = _scored_spans(calls, call_params, scope)
        both = rows(store, _BOTH_WAYS.format(sc=scored_sql, calls=calls), [*call_params, *scored_params])
        grouped = [r for r in both if not r["per_user"]]
        by_user = [r for r in both if r["per_user"]]
    if not grouped:
        return ScoreColumns()
    types: dict[str, str] = {}
    overall: dict[str, _Sums] = defaultdict(_Sums)
    dims: dict[str, dict[str, dict[str, _Sums]]] = {
        d: defaultdict(lambda: defaultdict(_Sums)) for d in ("feature", "model", "version", "speed", "tier")
    }
    for r in grouped:
        name, n = str(r["name"]), int(r["n"])
        types.setdefault(name, str(r["data_type"]))
        args = (n, r["total"], r["squares"])
        overall[name].add(*args)
        dims["feature"][str(r["feature"])][name].add(*args)
        dims["model"][str(r["model"])][name].add(*args)
        dims["speed"][str(r["speed"])][name].add(*args)
        if r["template_id"]:
            dims["version"][f"{r['template_id']}@{r['template_version'] or _NONE}"][name].add(*args)
    for r in by_user:
        dims["tier"][_tier(budgets, r)][str(r["name"])].add(int(r["n"]), r["total"], r["squares"])
    counts = (
        _rolled_up_counts(store, scope, model, budgets, calls, call_params)
        if rollups_enabled(store)
        else _call_counts(store, calls, call_params, budgets)
    )
    names = sorted(types, key=lambda n: (-overall[n].n, n))
    speed = {row.key: row for row in _rows(dims["speed"], counts["speed"], names, types)}
    total = sum(counts["feature"].values())
    return ScoreColumns(
        names=names,
        data_types={n: types[n] for n in names},
        calls=total,
        overall=[_cell(n, types[n], overall[n], total) for n in names],
        by_feature=_rows(dims["feature"], counts["feature"], names, types),
        by_model=_rows(dims["model"], counts["model"], names, types),
        by_template_version=sorted(_rows(dims["version"], counts["version"], names, types), key=lambda r: r.key),
        by_user_tier=_rows(dims["tier"], counts["tier"], names, types),
        by_speed=[speed[k] for k in SPEED_BUCKETS if k in speed],
    )


_THUMBS = "feedback_type IN ('thumbs_up', 'thumbs_down')"
# What the `scores` view gives the score columns (span_id, name, data_type, value), without building the
# view (whose lookups carry every column of every score and thumb; at 10M calls ClickHouse ran out of
# memory on it): stored scores on their own span, else on their message's first call; thumbs on theirs.
# A message's first call is sought among all its calls; for a day of calls, only for their messages
# (at 10M calls on ClickHouse, 2.4 s -> 0.8 s; over a week or a month the set of messages costs more time
# or memory than it saves: 7 d 4.0 s / 0.9 GiB without, 3.4 s / 1.2 GiB with; 30 d 3.7 s / 0.9 GiB without,
# 8.8 s / 2.6 GiB with).
_NARROWED_UP_TO = dt.timedelta(days=1)
_NARROWED = " AND message_id IN (SELECT message_id FROM ({calls}) w)"
_FIRST_CALL = (
    "SELECT message_id, MIN(span_id) AS span_id FROM store.spans WHERE project = ? AND kind = 'llm' "
    "AND message_id IN ({messages}) GROUP BY message_id"
)
_UNPLACED = "FROM store.scores WHERE project = ? AND span_id IS NULL AND message_id IS NOT NULL"
_RATED = f"FROM store.feedback WHERE project = ? AND {_THUMBS}{{narrowed}}"
_SCORED_SPANS = f"""
SELECT span_id, name, data_type, value FROM store.scores WHERE project = ? AND span_id IS NOT NULL
UNION ALL
SELECT f.span_id AS span_id, u.name AS name, u.data_type AS data_type, u.value AS value
FROM (SELECT message_id, name, data_type, value {_UNPLACED}) u
JOIN ({_FIRST_CALL.format(messages=f"SELECT message_id {_UNPLACED}")}) f ON f.message_id = u.message_id
UNION ALL
SELECT f.span_id AS span_id, 'user_feedback' AS name, 'boolean' AS data_type,
  CASE WHEN fb.feedback_type = 'thumbs_up' THEN 1.0 ELSE 0.0 END AS value
FROM (SELECT message_id, feedback_type {_RATED}) fb
JOIN ({_FIRST_CALL.format(messages=f"SELECT message_id {_RATED}")}) f ON f.message_id = fb.message_id
"""


def _scored_spans(calls: str, call_params: list[Any], scope: Scope) -> tuple[str, list[Any]]:
    """`_SCORED_SPANS` over the window's `calls`, with its parameters in order."""
    narrowed = scope.window.end - scope.window.start <= _NARROWED_UP_TO
    template = _SCORED_SPANS.replace("{narrowed}", _NARROWED if narrowed else "")
    params: list[Any] = []
    for i, piece in enumerate(template.split("{calls}")):
        params += [*(call_params if i else []), *[scope.project] * piece.count("?")]
    return template.replace("{calls}", calls), params


_DIMENSIONS = [
    ("feature", "COALESCE(feature, '(none)')"),
    ("model", "COALESCE(model, '(none)')"),
    ("template_id", "COALESCE(template_id, '')"),
    ("template_version", "COALESCE(template_version, '')"),
]


def _stored(store: Store, scope: Scope, model: str | None) -> list[dict[str, Any]]:
    """Stored scores on the window's calls by name and dimension, from the score rollup."""
    w = scope.window
    return page_aggregate(
        store, SCORES, scope.project, w.start, w.end, measures=("n", "total", "squares"),
        groups=[("name", "name"), ("data_type", "data_type"), *_DIMENSIONS, ("speed", "speed")],
        where="model = ?" if model else "TRUE", params=[model] if model else [],
    )  # fmt: skip


def _stored_by_user(store: Store, scope: Scope, model: str | None) -> list[dict[str, Any]]:
    """Stored scores on the window's calls by name and user of the call, from the score rollup."""
    w = scope.window
    return page_aggregate(
        store, SCORE_USERS, scope.project, w.start, w.end, measures=("n", "total", "squares", "tier"),
        groups=[("name", "name"), ("user_id", "user_id")], where="model = ?" if model else "TRUE",
        params=[model] if model else [],
    )  # fmt: skip


def _per_user(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one score name and user merged into one: the tier is the highest of their calls' (one tier
    per user and name, as when every scored call is grouped at once)."""
    merged: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in found:
        key = (r["name"], r["user_id"])
        if key not in merged:
            merged[key] = dict(r)
            continue
        m = merged[key]
        m["n"] = int(m["n"]) + int(r["n"])
        for column in ("total", "squares"):
            if r[column] is not None:
                m[column] = r[column] if m[column] is None else m[column] + r[column]
        if r["tier"] is not None and (m["tier"] is None or r["tier"] > m["tier"]):
            m["tier"] = r["tier"]
    return list(merged.values())


_UNPLACED_SCORES = (
    "SELECT message_id, name, data_type, value FROM store.scores "
    "WHERE project = ? AND span_id IS NULL AND message_id IS NOT NULL"
)
_FIRST_CALL_COLUMNS = (
    "message_id, span_id, timestamp, feature, model, template_id, template_version, user_id, "
    f"json_extract_string(metadata, '$.tier') AS tier, {SPEED_SQL} AS speed"
)
# Messages up to this many are looked up through the id map; more are joined with the calls instead.
_LOOKED_UP_AT_MOST = 256
_CALLS_OF_UNPLACED = (
    f"SELECT {_FIRST_CALL_COLUMNS} FROM store.spans WHERE project = ? AND kind = 'llm' AND message_id IN "
    "(SELECT message_id FROM store.scores WHERE project = ? AND span_id IS NULL AND message_id IS NOT NULL)"
)


def _unplaced(store: Store, scope: Scope, model: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scores sent with only a message id, on their message's first call (its LLM span with the smallest
    span id) when that call is in the window: one row per score, as the score rollups' rows by dimension
    and by user give them."""
    found = rows(store, _UNPLACED_SCORES, [scope.project])
    if not found:
        return [], []
    first: dict[str, dict[str, Any]] = {}
    messages = [str(f["message_id"]) for f in found]
    calls = (
        rows_by_id(store, scope.project, "message_id", messages, _FIRST_CALL_COLUMNS, where="kind = 'llm'")
        if len(set(messages)) <= _LOOKED_UP_AT_MOST
        else rows(store, _CALLS_OF_UNPLACED, [scope.project, scope.project])
    )
    for c in calls:
        message = str(c["message_id"])
        if message not in first or str(c["span_id"]) < str(first[message]["span_id"]):
            first[message] = c
    w = scope.window
    grouped: list[dict[str, Any]] = []
    by_user: list[dict[str, Any]] = []
    for f in found:
        call = first.get(str(f["message_id"]))
        if call is None or not w.start <= call["timestamp"] < w.end or (model and call["model"] != model):
            continue
        value = opt(f["value"])
        sums = {"n": 1, "total": value, "squares": None if value is None else value * value}
        grouped.append(
            {
                "name": f["name"], "data_type": f["data_type"], "feature": call["feature"] or _NONE,
                "model": call["model"] or _NONE, "template_id": call["template_id"] or "",
                "template_version": call["template_version"] or "", "speed": call["speed"], **sums,
            }
        )  # fmt: skip
        by_user.append({"name": f["name"], "user_id": call["user_id"], "tier": call["tier"], **sums})
    return grouped, by_user


def _thumbs(store: Store, scope: Scope, model: str | None) -> list[dict[str, Any]]:
    """Thumbs on the window's calls as `user_feedback` rows by dimension (1 up, 0 down), from the feedback
    rollup: each event counted once, on the call the `scores` view names (its message's first call)."""
    w = scope.window
    where = f"first_call = 'yes' AND {_THUMBS}" + (" AND model = ?" if model else "")
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for r in page_aggregate(
        store, FEEDBACK, scope.project, w.start, w.end, measures=("n",),
        groups=[*_DIMENSIONS, ("speed", "speed"), ("feedback_type", "feedback_type")], where=where,
        params=[model] if model else [],
    ):  # fmt: skip
        key = (*(r[k] for k, _ in _DIMENSIONS), r["speed"])
        sums[key][0] += int(r["n"])
        sums[key][1] += int(r["n"]) if r["feedback_type"] == "thumbs_up" else 0
    names = [k for k, _ in _DIMENSIONS] + ["speed"]
    return [
        {"name": "user_feedback", "data_type": "boolean", **dict(zip(names, key, strict=True)), "n": n, "total": up,
         "squares": up}
        for key, (n, up) in sums.items()
    ]  # fmt: skip


def _thumbs_by_user(store: Store, scope: Scope, model: str | None) -> list[dict[str, Any]]:
    """Thumbs on the window's calls per user of the call, as `user_feedback` rows by user."""
    w = scope.window
    return [
        {"name": "user_feedback", "user_id": r["user_id"], "tier": r["tier"], "n": r["n"], "total": r["ups"],
         "squares": r["ups"]}
        for r in page_aggregate(
            store, FEEDBACK_USERS, scope.project, w.start, w.end, measures=("n", "ups", "tier"),
            groups=[("user_id", "user_id")], where="model = ?" if model else "TRUE", params=[model] if model else [],
        )
    ]  # fmt: skip


def _speeds(r: dict[str, Any]) -> dict[str, int]:
    """Calls per speed bucket (fast < 1 s, medium < 3 s, slow: the rest, unknown latency too) from the
    latency histogram of a rollup row."""
    bins = [int(num(r[f"latency_bin_{i}"])) for i in range(len(LATENCY_HISTOGRAM_EDGES_MS) + 1)]
    fast = sum(bins[: _EDGE_INDEX[1000.0] + 1])
    medium = sum(bins[_EDGE_INDEX[1000.0] + 1 : _EDGE_INDEX[3000.0] + 1])
    return {"fast": fast, "medium": medium, "slow": int(r["calls"]) - fast - medium}


_EDGE_INDEX = {float(edge): i for i, edge in enumerate(LATENCY_HISTOGRAM_EDGES_MS)}


def _rolled_up_counts(
    store: Store, scope: Scope, model: str | None, budgets: Budgets, calls: str, call_params: list[Any]
) -> dict[str, dict[str, int]]:
    """What `_call_counts` gives, from the main rollup (the speed buckets are unions of its latency bins)
    and the calls per user (`_calls_per_user`)."""
    w = scope.window
    counts: dict[str, dict[str, int]] = {d: defaultdict(int) for d in ("feature", "model", "version", "speed", "tier")}
    bins = [f"latency_bin_{i}" for i in range(len(LATENCY_HISTOGRAM_EDGES_MS) + 1)]
    where = "kind = 'llm'" + (" AND model = ?" if model else "")
    for r in aggregate(
        store, scope.project, w.start, w.end, measures=("calls", *bins), groups=_DIMENSIONS, where=where,
        params=[model] if model else [],
    ):  # fmt: skip
        n = int(r["calls"])
        counts["feature"][str(r["feature"])] += n
        counts["model"][str(r["model"])] += n
        if r["template_id"]:
            counts["version"][f"{r['template_id']}@{r['template_version'] or _NONE}"] += n
        for speed, calls_at in _speeds(r).items():
            if calls_at:
                counts["speed"][speed] += calls_at
    for r in _calls_per_user(store, scope, model, calls, call_params):
        counts["tier"][_tier(budgets, r)] += int(r["calls"])
    return counts


_UNNAMED_USERS = "SELECT MAX(s.tier) AS tier, COUNT(*) AS calls FROM ({calls}) s WHERE s.user_id IS NULL"


def _calls_per_user(
    store: Store, scope: Scope, model: str | None, calls: str, call_params: list[Any]
) -> list[dict[str, Any]]:
    """The window's LLM calls per user (user_id, tier, calls): from the per-user rollup by model with the
    page rollups; else from the daily user table, which has no model and leaves out calls without a user
    (read from the calls, with the calls of one model)."""
    w = scope.window
    if page_rollups(store):
        return page_aggregate(
            store, USER_MODELS, scope.project, w.start, w.end, measures=("calls", "tier"),
            groups=[("user_id", "user_id")], where="model = ?" if model else "TRUE", params=[model] if model else [],
        )  # fmt: skip
    if model:
        return rows(store, _CALLS_BY_USER.format(calls=calls), call_params)
    named = user_spend(store, scope.project, w.start, w.end)
    unnamed = [{"user_id": None, **r} for r in rows(store, _UNNAMED_USERS.format(calls=calls), call_params)]
    return [*named, *(r for r in unnamed if r["calls"])]


def _tier(budgets: Budgets, r: dict[str, Any]) -> str:
    user = str(r["user_id"]) if r["user_id"] is not None else None
    return budgets.tier_of(user, r["tier"]) or _NONE


_CALL_COUNTS = """
SELECT COALESCE(s.feature, '(none)') AS feature, COALESCE(s.model, '(none)') AS model,
  COALESCE(s.template_id, '') AS template_id, COALESCE(s.template_version, '') AS template_version,
  CASE WHEN s.latency_ms < 1000 THEN 'fast' WHEN s.latency_ms < 3000 THEN 'medium' ELSE 'slow' END AS speed,
  COUNT(*) AS n
FROM ({calls}) s
GROUP BY COALESCE(s.feature, '(none)'), COALESCE(s.model, '(none)'), COALESCE(s.template_id, ''),
  COALESCE(s.template_version, ''),
  CASE WHEN s.latency_ms < 1000 THEN 'fast' WHEN s.latency_ms < 3000 THEN 'medium' ELSE 'slow' END
"""
_CALLS_BY_USER = (
    "SELECT s.user_id AS user_id, MAX(s.tier) AS tier, COUNT(*) AS calls FROM ({calls}) s GROUP BY s.user_id"
)


def _call_counts(store: Store, calls: str, params: list[Any], budgets: Budgets) -> dict[str, dict[str, int]]:
    """LLM calls per group of each breakdown (scored or not): what `per_call` divides by."""
    counts: dict[str, dict[str, int]] = {d: defaultdict(int) for d in ("feature", "model", "version", "speed", "tier")}
    for r in rows(store, _CALL_COUNTS.format(calls=calls), params):
        n = int(r["n"])
        counts["feature"][str(r["feature"])] += n
        counts["model"][str(r["model"])] += n
        counts["speed"][str(r["speed"])] += n
        if r["template_id"]:
            counts["version"][f"{r['template_id']}@{r['template_version'] or _NONE}"] += n
    for r in rows(store, _CALLS_BY_USER.format(calls=calls), params):
        counts["tier"][_tier(budgets, r)] += int(r["calls"])
    return counts


def trace_scores(
    store: Store,
    project: str,
    trace_id: str,
    *,
    thumbs: list[dict[str, Any]],
    stored: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every score on the spans of one trace, oldest first: the stored ones (read here unless given, as
    `stored_trace_scores` gives them) and `thumbs`, the trace's thumbs as `scores` rows, read with its
    feedback (`_call_feedback.py`)."""
    if stored is None:
        stored = stored_trace_scores(store, project, trace_id)
    return sorted([*stored, *thumbs], key=score_order)
