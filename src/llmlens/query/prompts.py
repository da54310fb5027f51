"""Prompt templates and their versions: before/after comparison with significance tests, what changed
from one version to the next (prompt tokens, cost per call, the template's text), prompt-length
distribution over time, and outliers (the article's long and expensive prompts)."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store
from llmlens.store.rollups._page_tables import FEEDBACK, TEMPLATE_SKETCH, TEMPLATES

from ._call_feedback import page_rollups
from ._common import Scope, TimeChart, bucket_expr, epoch_s, num, opt, rows, time_chart
from ._id_lookup import time_ranges
from ._page_rollups import page_aggregate, page_quantiles
from ._prompt_template import DiffLine, template_diff
from ._version_samples import PromptSample, TemplateText, version_samples
from .feedback import window_feedback
from .stats import Proportion, ProportionTest, two_proportion_test, wilson

# The article's outlier thresholds: `prompt_tokens > 10000 OR cost_usd > 1.00`.
OUTLIER_MIN_TOKENS = 10_000
OUTLIER_MIN_COST_USD = 1.00
OUTLIER_LIMIT = 50
# A version whose average prompt tokens or cost per call moved this much (30 %) from the version before
# is flagged: a template change that leaks context or drops the cache shows as a jump here.
LARGE_CHANGE = 0.3
_EPOCH = dt.datetime(1970, 1, 1)


@dataclass(slots=True)
class Change:
    """Relative change from one version to another (1.0: doubled); `large` when either moved LARGE_CHANGE."""

    prompt_tokens: float | None
    cost_per_call: float | None
    large: bool


def change_between(
    tokens_before: float | None, tokens_after: float | None, cost_before: float | None, cost_after: float | None
) -> Change:
    tokens, cost = _relative(tokens_before, tokens_after), _relative(cost_before, cost_after)
    return Change(tokens, cost, any(c is not None and abs(c) >= LARGE_CHANGE for c in (tokens, cost)))


def _relative(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before <= 0:
        return None
    return after / before - 1


@dataclass(slots=True)
class TemplateVersion:
    template_id: str
    template_version: str
    calls: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    avg_prompt_tokens: float | None
    cost_usd: float
    error_rate: float
    cost_per_call_usd: float | None = None  # over its priced calls
    change: Change | None = None  # from the version before it (in rollout order)


@dataclass(slots=True)
class Template:
    template_id: str
    calls: int
    versions: list[TemplateVersion]


@dataclass(slots=True)
class VersionStats:
    template_version: str
    rollout: dt.datetime  # first call seen with this version
    calls: int
    avg_prompt_tokens: float | None
    avg_completion_tokens: float | None
    cost_usd: float
    cost_per_call_usd: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    errors: Proportion
    satisfaction: Proportion  # share of feedback events that are thumbs up (the article's definition)
    last_seen: dt.datetime | None = None
    previous_version: str | None = None
    change: Change | None = None  # from `previous_version`
    sample: PromptSample | None = None  # a recent call's filled prompt
    template: TemplateText | None = None  # the template's text, recorded or recovered from the calls


@dataclass(slots=True)
class VersionComparison:
    template_id: str
    versions: list[VersionStats]
    a: str | None
    b: str | None
    satisfaction_test: ProportionTest | None
    error_rate_test: ProportionTest | None
    prompt_length: TimeChart
    rollouts: list[dict[str, object]] = field(default_factory=list)
    change: Change | None = None  # from a to b
    template_diff: list[DiffLine] = field(default_factory=list)  # the template's text, a to b


@dataclass(slots=True)
class PromptOutlier:
    trace_id: str
    span_id: str
    timestamp: dt.datetime
    template_id: str | None
    template_version: str | None
    model: str | None
    prompt_tokens: int | None
    cost_usd: float | None
    prompt_preview: str


_VERSION = ("template_version", "COALESCE(template_version, '(none)')")
_TEMPLATE_MEASURES = (
    "calls",
    "first_at",
    "last_at",
    "prompt_tokens",
    "prompt_tokens_n",
    "completion_tokens",
    "completion_tokens_n",
    "cost_usd",
    "priced",
    "errors",
)


def _ratio(total: Any, count: Any) -> float | None:
    return num(total) / int(count) if count else None


def _template_rows(store: Store, scope: Scope) -> list[dict[str, Any]]:
    """Per template and version: the columns of the raw query in `templates`, from the template rollup."""
    w = scope.window
    found = page_aggregate(
        store,
        TEMPLATES,
        scope.project,
        w.start,
        w.end,
        measures=_TEMPLATE_MEASURES,
        groups=[("template_id", "template_id"), _VERSION],
        where="template_id IS NOT NULL",
    )
    out = [
        {
            "template_id": r["template_id"],
            "template_version": r["template_version"],
            "calls": r["calls"],
            "first_seen": r["first_at"],
            "last_seen": r["last_at"],
            "avg_prompt_tokens": _ratio(r["prompt_tokens"], r["prompt_tokens_n"]),
            "cost_usd": r["cost_usd"],
            "priced": r["priced"],
            "error_rate": int(r["errors"]) / int(r["calls"]) if r["calls"] else None,
        }
        for r in found
    ]
    return sorted(out, key=lambda r: (r["template_id"], r["first_seen"]))


def templates(store: Store, scope: Scope) -> list[Template]:
    recs = (
        _template_rows(store, scope)
        if page_rollups(store)
        else rows(
            store,
            "SELECT template_id, COALESCE(template_version, '(none)') AS template_version, COUNT(*) AS calls, "
            "MIN(timestamp) AS first_seen, MAX(timestamp) AS last_seen, AVG(prompt_tokens) AS avg_prompt_tokens, "
            "SUM(cost_usd) AS cost_usd, COUNT(cost_usd) AS priced, "
            "AVG(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate "
            f"FROM spans WHERE {scope.where()} AND kind = 'llm' AND template_id IS NOT NULL "
            "GROUP BY template_id, COALESCE(template_version, '(none)') ORDER BY template_id, first_seen",
            scope.params(),
        )
    )
    by_id: dict[str, Template] = {}
    for r in recs:
        tid = str(r["template_id"])
        t = by_id.setdefault(tid, Template(tid, 0, []))
        t.calls += int(r["calls"])
        version = TemplateVersion(
            template_id=tid,
            template_version=str(r["template_version"]),
            calls=int(r["calls"]),
            first_seen=r["first_seen"],
            last_seen=r["last_seen"],
            avg_prompt_tokens=opt(r["avg_prompt_tokens"], 1),
            cost_usd=num(r["cost_usd"]),
            error_rate=num(r["error_rate"]),
            cost_per_call_usd=num(r["cost_usd"]) / int(r["priced"]) if r["priced"] else None,
        )
        if t.versions:  # rows come in rollout order
            before = t.versions[-1]
            version.change = change_between(
                before.avg_prompt_tokens, version.avg_prompt_tokens, before.cost_per_call_usd, version.cost_per_call_usd
            )
        t.versions.append(version)
    return sorted(by_id.values(), key=lambda t: -t.calls)


def prompt_length_by_template(store: Store, scope: Scope) -> TimeChart:
    """Average prompt tokens per bucket, one series per template (the article's drift plot)."""
    w = scope.window
    if page_rollups(store):
        recs = [
            {
                "bucket": r["bucket"],
                "template_id": r["template_id"],
                "avg_tokens": _ratio(r["positive_prompt_tokens"], r["positive_prompts"]),
            }
            for r in page_aggregate(
                store,
                TEMPLATES,
                scope.project,
                w.start,
                w.end,
                measures=("positive_prompt_tokens", "positive_prompts"),
                groups=[("template_id", "COALESCE(template_id, '(none)')")],
                unit=w.bucket,
            )
            if r["positive_prompts"]
        ]
        return time_chart(w, recs, series_key="template_id", value_key="avg_tokens", fill=None, unit="tokens")
    bucket = bucket_expr(scope.window)
    recs = rows(
        store,
        f"SELECT {bucket} AS bucket, COALESCE(template_id, '(none)') AS template_id, "
        f"AVG(prompt_tokens) AS avg_tokens FROM spans WHERE {scope.where()} AND kind = 'llm' "
        f"AND prompt_tokens > 0 GROUP BY {bucket}, COALESCE(template_id, '(none)')",
        scope.params(),
    )
    return time_chart(scope.window, recs, series_key="template_id", value_key="avg_tokens", fill=None, unit="tokens")


def outliers(
    store: Store,
    scope: Scope,
    *,
    min_tokens: int = OUTLIER_MIN_TOKENS,
    min_cost_usd: float = OUTLIER_MIN_COST_USD,
    limit: int = OUTLIER_LIMIT,
) -> list[PromptOutlier]:
    where, params = scope.where(), scope.params()
    if page_rollups(store):
        # Only the hours whose largest prompt or cost passes a threshold can hold an outlier.
        w = scope.window
        hours = [
            r["bucket"]
            for r in page_aggregate(
                store,
                TEMPLATES,
                scope.project,
                w.start,
                w.end,
                measures=("max_prompt_tokens", "max_cost_usd"),
                unit="hour",
            )
            if num(r["max_prompt_tokens"], -1) > min_tokens or num(r["max_cost_usd"], -1) > min_cost_usd
        ]
        if not hours:
            return []
        ranges = time_ranges([int((h - _EPOCH).total_seconds() // 3600) for h in hours])
        in_hours = " OR ".join("(timestamp >= ? AND timestamp < ?)" for _ in ranges)
        where = f"{where} AND ({in_hours})"
        params = [*params, *(t for pair in ranges for t in pair)]
    recs = rows(
        store,
        "SELECT trace_id, span_id, timestamp, template_id, template_version, model, prompt_tokens, cost_usd, "
        "substr(prompt, 1, 160) AS preview FROM spans "
        f"WHERE {where} AND kind = 'llm' AND (prompt_tokens > ? OR cost_usd > ?) "
        f"ORDER BY cost_usd DESC NULLS LAST, prompt_tokens DESC LIMIT {int(limit)}",
        [*params, min_tokens, min_cost_usd],
    )
    return [
        PromptOutlier(
            trace_id=str(r["trace_id"]),
            span_id=str(r["span_id"]),
            timestamp=r["timestamp"],
            template_id=r["template_id"],
            template_version=r["template_version"],
            model=r["model"],
            prompt_tokens=r["prompt_tokens"],
            cost_usd=opt(r["cost_usd"]),
            prompt_preview=str(r["preview"] or ""),
        )
        for r in recs
    ]


def _version_calls_from_rollups(store: Store, scope: Scope, template_id: str) -> list[dict[str, Any]]:
    """Per version of `template_id`: the columns of the raw query in `_version_rows`, from the template rollups."""
    w = scope.window
    version = [("v", _VERSION[1])]
    found = page_aggregate(
        store, TEMPLATES, scope.project, w.start, w.end, measures=_TEMPLATE_MEASURES, groups=version,
        where="template_id = ?", params=[template_id],
    )  # fmt: skip
    latency = {
        r["v"]: r
        for r in page_quantiles(
            store, TEMPLATE_SKETCH, scope.project, w.start, w.end, metric="latency_ms",
            qs={"p50": 0.5, "p95": 0.95}, groups=version, where="template_id = ?", params=[template_id],
        )
    }  # fmt: skip
    out = [
        {
            "v": r["v"],
            "calls": r["calls"],
            "rollout": r["first_at"],
            "last_seen": r["last_at"],
            "pt": _ratio(r["prompt_tokens"], r["prompt_tokens_n"]),
            "ct": _ratio(r["completion_tokens"], r["completion_tokens_n"]),
            "cost": r["cost_usd"],
            "priced": r["priced"],
            "p50": latency.get(r["v"], {}).get("p50"),
            "p95": latency.get(r["v"], {}).get("p95"),
            "errors": r["errors"],
        }
        for r in found
    ]
    return sorted(out, key=lambda r: r["rollout"])


def _version_feedback(store: Store, scope: Scope, template_id: str) -> dict[str, tuple[int, int]]:
    """Per version: (thumbs up, feedback events) on its calls in the window."""
    if page_rollups(store):
        w = scope.window
        counts: dict[str, list[int]] = {}
        for r in page_aggregate(
            store,
            FEEDBACK,
            scope.project,
            w.start,
            w.end,
            measures=("n",),
            groups=[("v", _VERSION[1]), ("feedback_type", "feedback_type")],
            where="template_id = ?",
            params=[template_id],
        ):
            pair = counts.setdefault(str(r["v"]), [0, 0])
            pair[0] += int(r["n"]) if r["feedback_type"] == "thumbs_up" else 0
            pair[1] += int(r["n"])
        return {v: (ups, n) for v, (ups, n) in counts.items()}
    # The calls on the left of the join, the feedback narrowed as on the Feedback page (ClickHouse holds the
    # right side in memory: the whole feedback table took 1.6 s of the page at 7 d over 10M calls).
    feedback, feedback_params = window_feedback(scope, "message_id, feedback_type")
    return {
        str(r["v"]): (int(num(r["ups"])), int(r["n"]))
        for r in rows(
            store,
            "SELECT COALESCE(s.template_version, '(none)') AS v, COUNT(*) AS n, "
            "SUM(CASE WHEN f.feedback_type = 'thumbs_up' THEN 1 ELSE 0 END) AS ups "
            "FROM (SELECT message_id, template_version FROM spans "
            f"WHERE {scope.where()} AND kind = 'llm' AND template_id = ?) s "
            f"JOIN ({feedback}) f ON f.message_id = s.message_id "
            "GROUP BY COALESCE(s.template_version, '(none)')",
            [*scope.params(), template_id, *feedback_params],
        )
    }


def _version_rows(store: Store, scope: Scope, template_id: str) -> list[VersionStats]:
    calls = (
        _version_calls_from_rollups(store, scope, template_id)
        if page_rollups(store)
        else rows(
            store,
            "SELECT COALESCE(template_version, '(none)') AS v, COUNT(*) AS calls, MIN(timestamp) AS rollout, "
            "MAX(timestamp) AS last_seen, "
            "AVG(prompt_tokens) AS pt, AVG(completion_tokens) AS ct, SUM(cost_usd) AS cost, COUNT(cost_usd) AS priced, "
            "quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.95) AS p95, "
            "SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors "
            f"FROM spans WHERE {scope.where()} AND kind = 'llm' AND template_id = ? "
            "GROUP BY COALESCE(template_version, '(none)') ORDER BY rollout",
            [*scope.params(), template_id],
        )
    )
    feedback = _version_feedback(store, scope, template_id)
    out = []
    for r in calls:
        v = str(r["v"])
        ups, n = feedback.get(v, (0, 0))
        n_calls = int(r["calls"])
        out.append(
            VersionStats(
                template_version=v,
                rollout=r["rollout"],
                calls=n_calls,
                avg_prompt_tokens=opt(r["pt"], 1),
                avg_completion_tokens=opt(r["ct"], 1),
                cost_usd=num(r["cost"]),
                cost_per_call_usd=num(r["cost"]) / int(r["priced"]) if r["priced"] else None,
                latency_p50_ms=opt(r["p50"], 1),
                latency_p95_ms=opt(r["p95"], 1),
                errors=wilson(int(num(r["errors"])), n_calls),
                satisfaction=wilson(ups, n),
                last_seen=r["last_seen"],
            )
        )
    for before, after in itertools.pairwise(out):
        after.previous_version = before.template_version
        after.change = change_between(
            before.avg_prompt_tokens, after.avg_prompt_tokens, before.cost_per_call_usd, after.cost_per_call_usd
        )
    return out


def _length_rows(store: Store, scope: Scope, template_id: str) -> list[dict[str, Any]]:
    """Per time bucket: average, p50 and p95 prompt tokens of the template's calls that had a prompt."""
    w = scope.window
    if page_rollups(store):
        quantiles = {
            r["bucket"]: r
            for r in page_quantiles(
                store, TEMPLATE_SKETCH, scope.project, w.start, w.end, metric="prompt_tokens",
                qs={"p50": 0.5, "p95": 0.95}, where="template_id = ?", params=[template_id], unit=w.bucket,
            )
        }  # fmt: skip
        return [
            {
                "bucket": r["bucket"],
                "avg_tokens": _ratio(r["positive_prompt_tokens"], r["positive_prompts"]),
                "p50": quantiles.get(r["bucket"], {}).get("p50"),
                "p95": quantiles.get(r["bucket"], {}).get("p95"),
            }
            for r in page_aggregate(
                store,
                TEMPLATES,
                scope.project,
                w.start,
                w.end,
                measures=("positive_prompt_tokens", "positive_prompts"),
                where="template_id = ?",
                params=[template_id],
                unit=w.bucket,
            )
            if r["positive_prompts"]
        ]
    bucket = bucket_expr(w)
    return rows(
        store,
        f"SELECT {bucket} AS bucket, AVG(prompt_tokens) AS avg_tokens, quantile_cont(prompt_tokens, 0.5) AS p50, "
        "quantile_cont(prompt_tokens, 0.95) AS p95 "
        f"FROM spans WHERE {scope.where()} AND kind = 'llm' AND template_id = ? AND prompt_tokens > 0 "
        f"GROUP BY {bucket}",
        [*scope.params(), template_id],
    )


def prompt_versions(
    store: Store, scope: Scope, template_id: str, *, a: str | None = None, b: str | None = None
) -> VersionComparison:
    """Compare version `a` (default: the one before the newest) with `b` (default: the newest)."""
    versions = _version_rows(store, scope, template_id)
    for v in versions:
        v.sample, v.template = version_samples(store, scope, template_id, v.template_version, v.last_seen)
    names = [v.template_version for v in versions]
    b = b if b in names else (names[-1] if names else None)
    a = a if a in names and a != b else next((n for n in reversed(names) if n != b), None)
    by_name = {v.template_version: v for v in versions}
    sat_test = err_test = change = None
    diff: list[DiffLine] = []
    if a is not None and b is not None:
        va, vb = by_name[a], by_name[b]
        change = change_between(va.avg_prompt_tokens, vb.avg_prompt_tokens, va.cost_per_call_usd, vb.cost_per_call_usd)
        if va.template is not None and vb.template is not None:
            diff = template_diff(va.template.text, vb.template.text)
        sat_test = two_proportion_test(
            va.satisfaction.successes, va.satisfaction.n, vb.satisfaction.successes, vb.satisfaction.n, "satisfaction"
        )
        err_test = two_proportion_test(va.errors.successes, va.errors.n, vb.errors.successes, vb.errors.n, "error rate")
    length_rows = _length_rows(store, scope, template_id)
    chart = time_chart(scope.window, [], series_key=None, value_key="avg", fill=None, unit="tokens")
    for key, name in (("avg_tokens", "average"), ("p50", "p50"), ("p95", "p95")):
        chart.add_series(time_chart(scope.window, length_rows, series_key=None, value_key=key, fill=None, name=name))
    rollouts: list[dict[str, object]] = [
        {"x": epoch_s(v.rollout), "label": v.template_version}
        for v in versions
        if v.rollout > scope.window.start + dt.timedelta(minutes=5)
    ]
    chart.markers = rollouts
    return VersionComparison(
        template_id=template_id,
        versions=versions,
        a=a,
        b=b,
        satisfaction_test=sat_test,
        error_rate_test=err_test,
        prompt_length=chart,
        rollouts=rollouts,
        change=change,
        template_diff=diff,
    )
