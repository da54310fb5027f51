"""Why an alert fires: what drove a cost spike, which template's prompts grew, which errors and
models, which tools, with links to the traces behind it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from llmlens.store import Store

from ._sql import Range, as_float, ranges_clause, rows, scope_clause
from .rules import RuleSpec, Scope

_TEMPLATE = "CASE WHEN template_id IS NULL THEN NULL ELSE concat(template_id, '@', coalesce(template_version, '')) END"
# Dimension -> (SQL expression over llm_logs, the trace-list filter it maps to).
COST_DIMENSIONS: dict[str, str] = {
    "user": "user_id",
    "feature": "feature",
    "model": "model",
    "template": _TEMPLATE,
}
_FILTER_PARAM = {"user": "user_id", "feature": "feature", "model": "model", "template": "template"}
_TOP = 5
_NONE = "(none)"


def _in_window(window: Range) -> tuple[str, list[Any]]:
    return "timestamp >= ? AND timestamp < ?", [window[0], window[1]]


def cost_drivers(
    store: Store, project: str, scope: Scope, current: Range, baseline: Sequence[Range], windows: float
) -> dict[str, Any]:
    """Per user/feature/model/template version: spend now against its usual spend per window, the
    excess, and its share of the growth of that dimension (what grew sums to 100%)."""
    scope_sql, scope_params = scope_clause(scope)
    cur_sql, cur_params = _in_window(current)
    base_sql, base_params = ranges_clause(baseline)
    drivers: dict[str, list[dict[str, Any]]] = {}
    totals = {"current": 0.0, "baseline": 0.0}
    for dimension, expr in COST_DIMENSIONS.items():
        found = rows(
            store,
            f"SELECT {expr} AS name, "
            f"sum(CASE WHEN {cur_sql} THEN cost_usd ELSE 0 END) AS current_usd, "
            f"sum(CASE WHEN {base_sql} THEN cost_usd ELSE 0 END) AS baseline_usd "
            f"FROM spans WHERE kind = 'llm' AND project = ? AND (({cur_sql}) OR {base_sql}){scope_sql} GROUP BY {expr}",
            [*cur_params, *base_params, project, *cur_params, *base_params, *scope_params],
        )
        entries: list[dict[str, Any]] = []
        for row in found:
            now_usd = as_float(row["current_usd"])
            usual = as_float(row["baseline_usd"]) / windows if windows else 0.0
            entries.append({"name": row["name"] or _NONE, "current_usd": now_usd, "baseline_usd": usual})
        if dimension == "user":
            totals["current"] = sum(e["current_usd"] for e in entries)
            totals["baseline"] = sum(e["baseline_usd"] for e in entries)
        drivers[dimension] = entries
    excess = totals["current"] - totals["baseline"]
    top: list[dict[str, Any]] = []
    for dimension, entries in drivers.items():
        for entry in entries:
            entry["excess_usd"] = entry["current_usd"] - entry["baseline_usd"]
        # Share of the growth in this dimension: the values that grew sum to 100%.
        grown_total = sum(e["excess_usd"] for e in entries if e["excess_usd"] > 0)
        usual_total = sum(e["baseline_usd"] for e in entries)
        for entry in entries:
            entry["share"] = entry["excess_usd"] / grown_total if entry["excess_usd"] > 0 else 0.0
            # Lift: share of the growth over share of the usual spend. A user who usually spends
            # nothing and drives the growth has a huge lift; a dimension with one value has lift 1.
            usual_share = entry["baseline_usd"] / usual_total if usual_total > 0 else 0.0
            entry["lift"] = min(entry["share"] / usual_share, 1000.0) if usual_share > 0 else 1000.0
        grown = sorted((e for e in entries if e["excess_usd"] > 0), key=lambda e: -e["excess_usd"])[:_TOP]
        drivers[dimension] = grown
        if grown:
            top.append({"dimension": dimension, **grown[0]})
    # The most telling driver explains much of the growth and little of the usual spend: one user
    # who normally spends nothing beats the only template, which "explains" every spike.
    top.sort(key=lambda e: -e["share"] * e["lift"])
    result: dict[str, Any] = {
        "current_usd": totals["current"],
        "baseline_usd": totals["baseline"],
        "excess_usd": excess,
        "drivers": drivers,
        "top": top,
    }
    if top:
        lead = top[0]
        expr = COST_DIMENSIONS[lead["dimension"]]
        value_sql = f"{expr} IS NULL" if lead["name"] == _NONE else f"{expr} = ?"
        value_params = [] if lead["name"] == _NONE else [lead["name"]]
        result["trace_ids"] = [
            r["trace_id"]
            for r in rows(
                store,
                f"SELECT trace_id, sum(cost_usd) AS spend FROM spans WHERE kind = 'llm' AND project = ? AND {cur_sql} "
                f"AND {value_sql}{scope_sql} GROUP BY trace_id ORDER BY spend DESC LIMIT {_TOP}",
                [project, *cur_params, *value_params, *scope_params],
            )
        ]
        result["filter"] = {_FILTER_PARAM[lead["dimension"]]: lead["name"]}
    return result


def error_breakdown(store: Store, project: str, scope: Scope, current: Range) -> dict[str, Any]:
    """Errors by type (share of all errors) and by model and feature (their error rates)."""
    scope_sql, scope_params = scope_clause(scope)
    cur_sql, cur_params = _in_window(current)
    where = f"project = ? AND {cur_sql}{scope_sql}"
    params = [project, *cur_params, *scope_params]
    by_type = rows(
        store,
        f"SELECT coalesce(error_type, 'other') AS name, count(*) AS errors, max(error_message) AS example "
        f"FROM spans WHERE kind = 'llm' AND {where} AND status = 'error' GROUP BY coalesce(error_type, 'other') "
        f"ORDER BY errors DESC LIMIT {_TOP}",
        params,
    )
    total = sum(int(r["errors"]) for r in by_type) or 1
    for r in by_type:
        r["share"] = int(r["errors"]) / total
    by_group: dict[str, list[dict[str, Any]]] = {}
    for dimension in ("model", "feature"):
        found = rows(
            store,
            f"SELECT {dimension} AS name, count(*) AS calls, "
            f"sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors FROM spans WHERE kind = 'llm' AND {where} "
            f"GROUP BY {dimension} ORDER BY errors DESC LIMIT {_TOP}",
            params,
        )
        by_group[dimension] = [
            {
                "name": r["name"] or _NONE,
                "calls": int(r["calls"]),
                "errors": int(r["errors"]),
                "error_rate": int(r["errors"]) / int(r["calls"]),
                "share": int(r["errors"]) / total,
            }
            for r in found
            if int(r["errors"]) > 0
        ]
    traces = rows(
        store,
        f"SELECT trace_id FROM spans WHERE kind = 'llm' AND {where} AND status = 'error' "
        f"ORDER BY timestamp DESC LIMIT {_TOP}",
        params,
    )
    return {
        "errors": sum(int(r["errors"]) for r in by_type),
        "by_error_type": [
            {"name": r["name"], "errors": int(r["errors"]), "share": r["share"], "example": r["example"]}
            for r in by_type
        ],
        "by_model": by_group["model"],
        "by_feature": by_group["feature"],
        "trace_ids": [r["trace_id"] for r in traces],
        "filter": {"status": "error"},
    }


def latency_breakdown(
    store: Store, project: str, scope: Scope, current: Range, baseline: Sequence[Range]
) -> dict[str, Any]:
    """p95 by model and feature now and in the baseline; the slowest traces."""
    scope_sql, scope_params = scope_clause(scope)
    cur_sql, cur_params = _in_window(current)
    base_sql, base_params = ranges_clause(baseline)
    result: dict[str, Any] = {}
    for dimension in ("model", "feature"):
        now_rows = rows(
            store,
            f"SELECT {dimension} AS name, count(*) AS calls, quantile_cont(latency_ms, 0.95) AS p95 "
            f"FROM spans WHERE kind = 'llm' AND project = ? AND {cur_sql}{scope_sql} GROUP BY {dimension}",
            [project, *cur_params, *scope_params],
        )
        before = {
            r["name"]: r["p95"]
            for r in rows(
                store,
                f"SELECT {dimension} AS name, quantile_cont(latency_ms, 0.95) AS p95 "
                f"FROM spans WHERE kind = 'llm' AND project = ? AND {base_sql}{scope_sql} GROUP BY {dimension}",
                [project, *base_params, *scope_params],
            )
        }
        entries: list[dict[str, Any]] = [
            {
                "name": r["name"] or _NONE,
                "calls": int(r["calls"]),
                "p95_ms": as_float(r["p95"]),
                "baseline_p95_ms": None if before.get(r["name"]) is None else float(before[r["name"]]),
            }
            for r in now_rows
        ]
        for e in entries:
            e["change"] = e["p95_ms"] / e["baseline_p95_ms"] - 1 if e["baseline_p95_ms"] else None
        entries.sort(key=lambda e: -e["p95_ms"])
        result[f"by_{dimension}"] = entries[:_TOP]
    slow = rows(
        store,
        f"SELECT trace_id FROM spans WHERE kind = 'llm' AND project = ? AND {cur_sql}{scope_sql} "
        f"ORDER BY latency_ms DESC LIMIT {_TOP}",
        [project, *cur_params, *scope_params],
    )
    result["trace_ids"] = [r["trace_id"] for r in slow]
    if result["by_model"]:
        result["filter"] = {"model": result["by_model"][0]["name"]}
    return result


def prompt_growth(
    store: Store,
    project: str,
    scope: Scope,
    current: Range,
    baseline: Sequence[Range],
    group_by: str,
    *,
    min_samples: int = 0,
) -> dict[str, Any]:
    """Average prompt tokens per template (or feature) now and in the baseline, and the change."""
    # "none": one group; `project` is constant here and groups portably where a literal might not.
    expr = {"template": "template_id", "feature": "feature", "none": "project"}[group_by]
    scope_sql, scope_params = scope_clause(scope)
    cur_sql, cur_params = _in_window(current)
    base_sql, base_params = ranges_clause(baseline)
    tokens = "CASE WHEN status = 'error' THEN NULL ELSE prompt_tokens END"
    found = rows(
        store,
        f"SELECT {expr} AS name, "
        f"sum(CASE WHEN {cur_sql} THEN 1 ELSE 0 END) AS calls, "
        f"avg(CASE WHEN {cur_sql} THEN {tokens} END) AS current_avg, "
        f"sum(CASE WHEN {base_sql} THEN 1 ELSE 0 END) AS baseline_calls, "
        f"avg(CASE WHEN {base_sql} THEN {tokens} END) AS baseline_avg "
        f"FROM spans WHERE kind = 'llm' AND project = ? AND (({cur_sql}) OR {base_sql}){scope_sql} GROUP BY {expr}",
        [*cur_params, *cur_params, *base_params, *base_params, project, *cur_params, *base_params, *scope_params],
    )
    groups: list[dict[str, Any]] = []
    for r in found:
        if group_by != "none" and r["name"] is None:
            continue
        now_avg, before = r["current_avg"], r["baseline_avg"]
        change = None
        if now_avg is not None and before and int(r["baseline_calls"]) >= min_samples:
            change = float(now_avg) / float(before) - 1.0
        groups.append(
            {
                "name": "all" if group_by == "none" else r["name"],
                "calls": int(r["calls"]),
                "current_avg": None if now_avg is None else float(now_avg),
                "baseline_calls": int(r["baseline_calls"]),
                "baseline_avg": None if before is None else float(before),
                "change": change,
            }
        )
    groups.sort(key=lambda g: -abs(g["change"] or 0.0))
    return {"groups": groups, "group_by": group_by}


def template_versions(
    store: Store, project: str, scope: Scope, current: Range, baseline: Range, drifted: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """For each drifted template: its versions in the window, their prompt size, and which are new."""
    result: list[dict[str, Any]] = []
    scope_sql, scope_params = scope_clause(scope)
    for group in drifted:
        template = group["name"]
        before = rows(
            store,
            "SELECT template_version AS v, count(*) AS n FROM spans "
            "WHERE kind = 'llm' AND project = ? AND template_id = ? "
            f"AND timestamp >= ? AND timestamp < ?{scope_sql} GROUP BY template_version ORDER BY n DESC",
            [project, template, baseline[0], baseline[1], *scope_params],
        )
        seen_before = {r["v"] for r in before}
        usual = before[0]["v"] if before else None
        found = rows(
            store,
            "SELECT template_version AS version, count(*) AS calls, "
            "avg(CASE WHEN status = 'error' THEN NULL ELSE prompt_tokens END) AS avg_tokens, "
            "min(timestamp) AS first_seen FROM spans WHERE kind = 'llm' AND project = ? AND template_id = ? "
            f"AND timestamp >= ? AND timestamp < ?{scope_sql} GROUP BY template_version ORDER BY calls DESC",
            [project, template, current[0], current[1], *scope_params],
        )
        for r in found:
            avg = as_float(r["avg_tokens"])
            base = group["baseline_avg"]
            result.append(
                {
                    "template": template,
                    "version": r["version"],
                    "calls": int(r["calls"]),
                    "current_avg": avg,
                    "baseline_avg": base,
                    "change": avg / base - 1.0 if base else None,
                    "new": r["version"] not in seen_before,
                    "previous_version": usual,
                    "first_seen": r["first_seen"],
                }
            )
    result.sort(key=lambda v: (not v["new"], -abs(v["change"] or 0.0)))
    return result


def tool_drops(store: Store, project: str, scope: Scope, current: Range, baseline: Range) -> list[dict[str, Any]]:
    """Success rate per tool now and before, and the most common errors now."""
    scope_sql, scope_params = scope_clause(scope, view="tool_logs")
    ok = "CASE WHEN success THEN 1.0 ELSE 0.0 END"
    found = rows(
        store,
        "SELECT tool_name AS tool, "
        "sum(CASE WHEN timestamp >= ? THEN 1 ELSE 0 END) AS calls, "
        f"avg(CASE WHEN timestamp >= ? THEN {ok} END) AS current_rate, "
        "sum(CASE WHEN timestamp < ? THEN 1 ELSE 0 END) AS baseline_calls, "
        f"avg(CASE WHEN timestamp < ? THEN {ok} END) AS baseline_rate "
        f"FROM tool_logs WHERE project = ? AND timestamp >= ? AND timestamp < ?{scope_sql} GROUP BY tool_name",
        [current[0], current[0], current[0], current[0], project, baseline[0], current[1], *scope_params],
    )
    result = []
    for r in found:
        if not int(r["calls"]):
            continue
        now_rate = as_float(r["current_rate"])
        before = None if r["baseline_rate"] is None else float(r["baseline_rate"])
        errors = rows(
            store,
            "SELECT error, count(*) AS n FROM tool_logs WHERE project = ? AND tool_name = ? AND timestamp >= ? "
            f"AND timestamp < ? AND NOT success{scope_sql} GROUP BY error ORDER BY n DESC LIMIT 3",
            [project, r["tool"], current[0], current[1], *scope_params],
        )
        result.append(
            {
                "tool": r["tool"],
                "calls": int(r["calls"]),
                "current_rate": now_rate,
                "baseline_calls": int(r["baseline_calls"]),
                "baseline_rate": before,
                "drop": (before - now_rate) if before is not None else 0.0,
                "top_errors": [{"error": e["error"], "count": int(e["n"])} for e in errors],
            }
        )
    result.sort(key=lambda t: -t["drop"])
    return result


def _iso(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat() + "Z"


_TRACE_FILTERS = ("model", "feature", "user_id", "status")  # what the UI's trace list filters on


def links(base_url: str, project: str, rule: RuleSpec, window: Range, found: dict[str, Any]) -> dict[str, Any]:
    """URLs of the UI's trace list filtered to what the alert is about, of example traces, and of the
    page that explains it (the template's versions, the tools)."""
    base = base_url.rstrip("/")
    sticky: dict[str, str] = {"from": _iso(window[0]), "to": _iso(window[1])}
    if project != "default":
        sticky["project"] = project
    params = dict(sticky)
    scope = rule.scope
    for key, value in (("model", scope.model), ("feature", scope.feature), ("user_id", scope.user)):
        if value:
            params[key] = value
    for key, value in (found.get("filter") or {}).items():
        if key in _TRACE_FILTERS and value != _NONE:
            params.setdefault(key, str(value))
    result: dict[str, Any] = {
        "traces": f"{base}/traces?{urlencode(params)}",
        "examples": [f"{base}/traces/{quote(str(t))}" for t in found.get("trace_ids", [])],
        "alerts": f"{base}/alerts" + (f"?project={quote(project)}" if project != "default" else ""),
    }
    versions = found.get("versions") or []
    if rule.type == "prompt_drift" and versions:
        lead = versions[0]
        compare = {**sticky, "b": str(lead["version"])}
        previous = lead.get("previous_version")
        if previous:
            compare["a"] = str(previous)
        result["prompt"] = f"{base}/prompts/{quote(str(lead['template']))}?{urlencode(compare)}"
    if rule.type == "tool_success":
        result["tools"] = f"{base}/tools?{urlencode(sticky)}"
    return result


def headline(rule_type: str, found: dict[str, Any]) -> str:
    """One line naming what drove the alert, for messages and Slack."""
    if rule_type == "cost_spike" and found.get("top"):
        parts = [
            f"{d['dimension']} {d['name']} (+${d['excess_usd']:,.2f}, {d['share']:.0%} of the {d['dimension']} growth)"
            for d in found["top"][:3]
            if d.get("share") is not None
        ]
        return "driven by " + ", ".join(parts) if parts else ""
    if rule_type == "error_rate" and found.get("by_error_type"):
        types = ", ".join(f"{e['name']} {e['share']:.0%}" for e in found["by_error_type"][:3])
        models = ", ".join(f"{m['name']} {m['error_rate']:.0%} failed" for m in found.get("by_model", [])[:2])
        return f"errors: {types}" + (f"; models: {models}" if models else "")
    if rule_type == "latency_p95" and found.get("by_model"):
        return "slowest: " + ", ".join(f"{m['name']} p95 {m['p95_ms']:,.0f} ms" for m in found["by_model"][:3])
    if rule_type == "prompt_drift":
        versions = found.get("versions") or []
        if versions:
            v = versions[0]
            tag = "new version " if v["new"] else "version "
            change = f" ({v['change']:+.0%})" if v.get("change") is not None else ""
            return f"{tag}{v['template']}@{v['version']}: {v['current_avg']:,.0f} tokens{change}"
        groups = found.get("groups") or []
        if groups and groups[0].get("change") is not None:
            return f"{found.get('group_by', 'group')} {groups[0]['name']} {groups[0]['change']:+.0%}"
    return ""
