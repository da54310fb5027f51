"""User feedback: satisfaction by feature, template version and model; explicit vs implicit
signals; satisfaction by the article's latency buckets (fast < 1 s, medium < 3 s, slow); and the list of
rated calls, thumbs-down and comments first, each with the trace and span of the call it rates."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store
from llmlens.store.rollups._page_tables import FEEDBACK, FEEDBACK_CALLS

from ._call_feedback import page_rollups
from ._common import Scope, TimeChart, bucket_expr, grouped_two_ways, num, opt, rows, time_chart
from ._page_rollups import page_aggregate
from .stats import Proportion, wilson

EXPLICIT = ("thumbs_up", "thumbs_down")
SPEED_BUCKETS = ("fast", "medium", "slow")
NONE = "(none)"  # the group of calls without a feature, model or template
RATED_CALLS_LIMIT = 25  # rated calls listed on the page: filters narrow the rest


@dataclass(slots=True)
class Satisfaction:
    key: str
    feedback: int
    thumbs_up: int
    thumbs_down: int
    satisfaction: Proportion  # thumbs up / all feedback events, as in the article's query
    # The URL parameters that select the rated calls behind this row: in the trace list (None when it has
    # no filter for them: a latency bucket, calls without the value) and in the list of rated calls.
    traces: dict[str, str] | None = None
    rated: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class FeedbackReport:
    total: int
    by_type: dict[str, int]
    explicit: int
    implicit: int
    by_feature: list[Satisfaction]
    by_template_version: list[Satisfaction]
    by_model: list[Satisfaction]
    by_speed: list[Satisfaction]
    by_type_over_time: TimeChart


# The view `feedback_events` joins spans once more, for a `feature` unused here: reading the feedback
# table itself and only the window's calls halves the work. Each joined row is counted both by group and
# by time bucket (`per_bucket`) in one pass: a two-row CROSS JOIN does the GROUPING SETS ClickHouse 18.16
# lacks. Buckets go by the time of the rated call, like every other figure of the page: the chart adds up
# to the page's total, and a bucket's calls are the traces of that bucket.
_GROUPED_SQL = grouped_two_ways(
    """
    SELECT
      COALESCE(s.feature, '(none)') AS feature,
      COALESCE(s.template_id, '(none)') AS template_id,
      COALESCE(s.template_version, '(none)') AS template_version,
      COALESCE(s.model, '(none)') AS model,
      CASE WHEN s.latency_ms < 1000 THEN 'fast' WHEN s.latency_ms < 3000 THEN 'medium' ELSE 'slow' END AS speed,
      {bucket} AS bucket, f.feedback_type AS feedback_type
    FROM (
      SELECT message_id, timestamp, feature, template_id, template_version, model, latency_ms FROM spans
      WHERE {where} AND kind = 'llm' AND message_id IS NOT NULL
    ) s
    JOIN ({feedback}) f ON f.message_id = s.message_id
    """,
    shared=["feedback_type"],
    first=["feature", "template_id", "template_version", "model", "speed"],
    second=["bucket"],
    flag="per_bucket",
    values=[],
    aggregates="COUNT(*) AS n",
)


def _satisfaction(counts: dict[str, dict[str, int]], dimension: str) -> list[Satisfaction]:
    out = []
    for key, by_type in counts.items():
        total = sum(by_type.values())
        ups = by_type.get("thumbs_up", 0)
        traces, rated = _filters_of(dimension, key)
        out.append(Satisfaction(key, total, ups, by_type.get("thumbs_down", 0), wilson(ups, total), traces, rated))
    return sorted(out, key=lambda s: (s.satisfaction.rate if s.satisfaction.rate is not None else 2.0, s.key))


def _filters_of(dimension: str, key: str) -> tuple[dict[str, str] | None, dict[str, str]]:
    """(trace-list filters, rated-call-list filters) selecting the calls of one group."""
    rated = {{"version": "template", "speed": "speed"}.get(dimension, dimension): key}
    if dimension == "speed" or key == NONE:
        return None, rated
    if dimension == "version":
        template_id, _, version = key.partition("@")
        return (None if version == NONE else {"template_id": template_id, "template_version": version}), rated
    return {dimension: key}, rated


_GROUPS = [
    ("feature", "COALESCE(feature, '(none)')"),
    ("template_id", "COALESCE(template_id, '(none)')"),
    ("template_version", "COALESCE(template_version, '(none)')"),
    ("model", "COALESCE(model, '(none)')"),
    ("speed", "speed"),
    ("feedback_type", "feedback_type"),
]


def _grouped(store: Store, scope: Scope) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(feedback events per group and type, per time bucket and type) on the window's calls."""
    if page_rollups(store):
        # `feedback_calls` and its rollup hold the same join, kept as feedback and calls arrive.
        w = scope.window
        span = (store, FEEDBACK, scope.project, w.start, w.end)
        grouped = page_aggregate(*span, measures=("n",), groups=_GROUPS)
        over_time = page_aggregate(*span, measures=("n",), groups=[("feedback_type", "feedback_type")], unit=w.bucket)
        return grouped, over_time
    # The calls on the left of the join: ClickHouse holds the right side in memory.
    feedback, feedback_params = window_feedback(scope, "message_id, feedback_type")
    bucket = bucket_expr(scope.window, "s.timestamp")
    both = rows(
        store,
        _GROUPED_SQL.format(where=scope.where(), feedback=feedback, bucket=bucket),
        [*scope.params(), *feedback_params],
    )
    grouped = [r for r in both if not r["per_bucket"]]
    over_time = [{k: r[k] for k in ("bucket", "feedback_type", "n")} for r in both if r["per_bucket"]]
    return grouped, over_time


def feedback_report(store: Store, scope: Scope) -> FeedbackReport:
    """Feedback on the LLM calls made in the window (joined on message_id)."""
    grouped, over_time = _grouped(store, scope)
    dims: dict[str, dict[str, dict[str, int]]] = {
        d: defaultdict(lambda: defaultdict(int)) for d in ("feature", "version", "model", "speed")
    }
    by_type: dict[str, int] = defaultdict(int)
    for r in grouped:
        n, kind = int(r["n"]), str(r["feedback_type"])
        by_type[kind] += n
        dims["feature"][str(r["feature"])][kind] += n
        if r["template_id"] != "(none)":
            dims["version"][f"{r['template_id']}@{r['template_version']}"][kind] += n
        dims["model"][str(r["model"])][kind] += n
        dims["speed"][str(r["speed"])][kind] += n
    speed = {s.key: s for s in _satisfaction(dims["speed"], "speed")}
    explicit = sum(n for k, n in by_type.items() if k in EXPLICIT)
    return FeedbackReport(
        total=sum(by_type.values()),
        by_type=dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
        explicit=explicit,
        implicit=sum(by_type.values()) - explicit,
        by_feature=_satisfaction(dims["feature"], "feature"),
        by_template_version=sorted(_satisfaction(dims["version"], "version"), key=lambda s: s.key),
        by_model=_satisfaction(dims["model"], "model"),
        by_speed=[speed[k] for k in SPEED_BUCKETS if k in speed],
        by_type_over_time=time_chart(
            scope.window,
            over_time,
            series_key="feedback_type",
            value_key="n",
            unit="events",
            labels=["thumbs_up", "thumbs_down", "retry", "edit", "abandon"],
        ),
    )


# -- the rated calls ------------------------------------------------------------------------------------


class RatedFilterError(ValueError):
    """A filter of the rated-call list that cannot be used; the message names the parameter."""


@dataclass(frozen=True, slots=True)
class RatedCallFilters:
    """Which rated calls to list: each value as the page's groups name it (`(none)` for calls without it)."""

    feature: str | None = None
    model: str | None = None
    template: str | None = None  # `template_id@template_version`, or a template id alone (every version)
    speed: str | None = None  # fast, medium or slow
    feedback: str | None = None  # a feedback type

    def check(self) -> None:
        if self.speed is not None and self.speed not in SPEED_BUCKETS:
            raise RatedFilterError(f"speed must be one of {', '.join(SPEED_BUCKETS)}, got {self.speed!r}")


@dataclass(slots=True)
class RatedCall:
    """One feedback event with the LLM call it rates."""

    feedback_id: str
    feedback_type: str
    text: str | None  # the user's comment
    rated_at: dt.datetime
    trace_id: str
    span_id: str
    called_at: dt.datetime
    model: str | None
    feature: str | None
    template_id: str | None
    template_version: str | None
    user_id: str | None
    latency_ms: float | None


@dataclass(slots=True)
class RatedCalls:
    calls: list[RatedCall]  # thumbs-down and comments first, then the rest; newest first within each
    total: int  # feedback events matching the filters
    limit: int = RATED_CALLS_LIMIT


_SPEED_SQL = {
    "fast": "latency_ms < 1000",
    "medium": "latency_ms >= 1000 AND latency_ms < 3000",
    "slow": "(latency_ms IS NULL OR latency_ms >= 3000)",  # the report's CASE puts unknown latency there too
}
# A thumbs-down or a comment says what went wrong: those come first.
_CRITICAL = "CASE WHEN f.feedback_type = 'thumbs_down' OR f.feedback_text <> '' THEN 0 ELSE 1 END"


# Up to a week of calls, the feedback read for them is narrowed to their messages first: at 10M calls on
# ClickHouse that took the join from 1,040 ms to 180 ms at 24 h; over a month the set of messages costs
# more than it saves (1,820 ms without, 3,640 ms with).
_NARROWED_UP_TO = dt.timedelta(days=7)


def window_feedback(scope: Scope, columns: str, feedback_type: str | None = None) -> tuple[str, list[Any]]:
    """SELECT `columns` of the project's feedback events (of one type) that may rate the window's LLM calls,
    with its parameters."""
    sql = f"SELECT {columns} FROM store.feedback WHERE project = ?"
    params: list[Any] = [scope.project]
    if feedback_type:
        sql += " AND feedback_type = ?"
        params.append(feedback_type)
    if scope.window.end - scope.window.start <= _NARROWED_UP_TO:
        sql += f" AND message_id IN (SELECT message_id FROM spans WHERE {scope.where()} AND kind = 'llm')"
        params += scope.params()
    return sql, params


def _rated_parts(scope: Scope, filters: RatedCallFilters) -> tuple[str, list[Any]]:
    """FROM ... JOIN ... of the feedback events matching `filters` on the window's LLM calls."""
    filters.check()
    columns = "feedback_id, message_id, feedback_type, feedback_text, timestamp"
    feedback, feedback_params = window_feedback(scope, columns, filters.feedback)
    call_where, call_params = [scope.where(), "kind = 'llm'", "message_id IS NOT NULL"], scope.params()
    for column, value in (("feature", filters.feature), ("model", filters.model)):
        if value:
            call_where.append(f"COALESCE({column}, '{NONE}') = ?")
            call_params.append(value)
    if filters.template:
        template_id, at, version = filters.template.partition("@")
        call_where.append(f"COALESCE(template_id, '{NONE}') = ?")
        call_params.append(template_id)
        if at:
            call_where.append(f"COALESCE(template_version, '{NONE}') = ?")
            call_params.append(version)
    if filters.speed:
        call_where.append(_SPEED_SQL[filters.speed])
    # The calls first: ClickHouse holds the right side of a join in memory, and a month of calls can
    # outgrow it where the feedback on them does not.
    sql = (
        "FROM (SELECT message_id, trace_id, span_id, timestamp, model, feature, template_id, template_version, "
        f"user_id, latency_ms FROM spans WHERE {' AND '.join(call_where)}) s "
        f"JOIN ({feedback}) f ON f.message_id = s.message_id"
    )
    return sql, [*call_params, *feedback_params]


_RATED_ORDER = "ORDER BY critical, rated_at DESC, feedback_id"


def _rated_filters(filters: RatedCallFilters) -> tuple[list[str], list[Any], list[str], list[Any]]:
    """(conditions, params) on feedback_calls rows, and on the feedback rollup's keys, for `filters`."""
    rows_where: list[str] = []
    keys_where: list[str] = []
    args: list[Any] = []
    for column, value in (("feature", filters.feature), ("model", filters.model)):
        if value:
            rows_where.append(f"COALESCE({column}, '{NONE}') = ?")
            args.append(value)
    if filters.template:
        template_id, at, version = filters.template.partition("@")
        rows_where.append(f"COALESCE(template_id, '{NONE}') = ?")
        args.append(template_id)
        if at:
            rows_where.append(f"COALESCE(template_version, '{NONE}') = ?")
            args.append(version)
    keys_where = list(rows_where)
    key_args = list(args)
    if filters.speed:
        rows_where.append(_SPEED_SQL[filters.speed])
        keys_where.append("speed = ?")
        key_args.append(filters.speed)
    if filters.feedback:
        rows_where.append("feedback_type = ?")
        args.append(filters.feedback)
        keys_where.append("feedback_type = ?")
        key_args.append(filters.feedback)
    return rows_where, args, keys_where, key_args


def _rated_from_rollups(
    store: Store, scope: Scope, filters: RatedCallFilters, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The rated calls from `feedback_calls`: read from a recent slice of feedback times that widens until it
    holds `limit` critical events (those are then the window's newest), their count from the rollup."""
    filters.check()
    rows_where, args, keys_where, key_args = _rated_filters(filters)
    w = scope.window
    counted = page_aggregate(
        store,
        FEEDBACK,
        scope.project,
        w.start,
        w.end,
        measures=("n",),
        where=" AND ".join(keys_where) or "TRUE",
        params=key_args,
    )
    total = int(num(counted[0]["n"])) if counted else 0
    where = " AND ".join(["project = ?", "called_at >= ?", "called_at < ?", *rows_where])
    select = (
        "SELECT feedback_id, feedback_type, feedback_text, rated_at, trace_id, span_id, called_at, model, feature, "
        f"template_id, template_version, user_id, latency_ms, {_CRITICAL.replace('f.', '')} AS critical "
        f"FROM {FEEDBACK_CALLS} WHERE {where}"
    )
    found: list[dict[str, Any]] = []
    for since in [*_rated_slices(w.end), None]:
        in_slice = "" if since is None else " AND rated_at >= ?"
        found = rows(
            store,
            f"{select}{in_slice} {_RATED_ORDER} LIMIT {int(limit)}",
            [scope.project, w.start, w.end, *args, *([since] if since is not None else [])],
        )
        if sum(1 for r in found if r["critical"] == 0) >= limit or len(found) >= total:
            break
    return found, total


def _rated_slices(end: dt.datetime) -> list[dt.datetime]:
    """Starts of ever wider slices of feedback time before `end`: an hour, then 4x wider, up to 3 months."""
    return [end - dt.timedelta(hours=4**i) for i in range(6)]


def rated_calls(store: Store, scope: Scope, filters: RatedCallFilters, *, limit: int = RATED_CALLS_LIMIT) -> RatedCalls:
    """The feedback events on the window's LLM calls that match `filters`, each with the call it rates."""
    if page_rollups(store):
        found, count = _rated_from_rollups(store, scope, filters, limit)
    else:
        source, params = _rated_parts(scope, filters)
        found = rows(
            store,
            "SELECT f.feedback_id AS feedback_id, f.feedback_type AS feedback_type, "
            "f.feedback_text AS feedback_text, f.timestamp AS rated_at, s.trace_id AS trace_id, "
            "s.span_id AS span_id, s.timestamp AS called_at, s.model AS model, s.feature AS feature, "
            "s.template_id AS template_id, s.template_version AS template_version, s.user_id AS user_id, "
            f"s.latency_ms AS latency_ms, {_CRITICAL} AS critical {source} {_RATED_ORDER} LIMIT {int(limit)}",
            params,
        )
        total = rows(store, f"SELECT COUNT(*) AS n {source}", params)
        count = int(total[0]["n"]) if total else 0
    return RatedCalls(
        calls=[
            RatedCall(
                feedback_id=str(r["feedback_id"]),
                feedback_type=str(r["feedback_type"]),
                text=r["feedback_text"] or None,
                rated_at=r["rated_at"],
                trace_id=str(r["trace_id"]),
                span_id=str(r["span_id"]),
                called_at=r["called_at"],
                model=r["model"],
                feature=r["feature"],
                template_id=r["template_id"],
                template_version=r["template_version"],
                user_id=r["user_id"],
                latency_ms=opt(r["latency_ms"], 1),
            )
            for r in found
        ],
        total=count,
        limit=limit,
    )
