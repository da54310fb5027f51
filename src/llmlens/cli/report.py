"""`llmlens report cost|latency|tools`: the dashboards' numbers as tables in the terminal.

With `--url` the numbers come from the server's `/api/v1/<page>` (the dashboards' JSON twins); with
`--data` from the same `llmlens.query` functions run on the store here.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from typing import Any

from ._common import Target, add_target_options, resolve_target

_SECTIONS = ("cost", "latency", "tools")
_COST_BY = ("model", "user", "feature", "template")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", choices=_SECTIONS, help="which report")
    parser.add_argument(
        "--window",
        default="7d",
        help="how far back: a duration (1h, 24h, 7d, 14d, 2w) or a start time (ISO 8601, epoch seconds) (default 7d)",
    )
    parser.add_argument("--by", choices=_COST_BY, default="model", help="cost report: group by (default model)")
    parser.add_argument("--model", help="latency report: only this model")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_target_options(parser)


def _window_params(window: str, now: dt.datetime) -> tuple[dict[str, str], str]:
    """The API's window parameters for `--window`, and how the report titles name it."""
    from llmlens.query import is_duration

    from ._times import window_option

    if is_duration(window):
        window_option(window, "--window", now=now)  # refuses a zero or overlong duration here, not at the server
        return {"range": window}, f"last {window}"
    start = window_option(window, "--window", now=now).start
    return {"from": start.isoformat() + "Z", "to": now.isoformat() + "Z"}, f"since {start.isoformat(sep=' ')} UTC"


def _fetch(target: Target, report: str, params: dict[str, str], model: str | None) -> dict[str, Any]:
    """The report as the JSON the server's API answers, from the server or computed here."""
    if target.url:
        query = dict(params)
        if target.project:
            query["project"] = target.project
        if model:
            query["model"] = model
        doc: dict[str, Any] = target.get(f"/api/v1/{report}", query)
        return doc
    from llmlens import query as q
    from llmlens.server._jsonable import jsonable

    window = q.parse_window(params.get("range"), params.get("from"), params.get("to"), now=q.utc_now())
    scope = q.Scope(target.project or target.settings.project, window)
    store = target.open_store()
    try:
        result: Any
        if report == "cost":
            budgets = q.budgets_from_settings(target.settings.budgets)
            result = q.cost_report(store, scope, budgets, now=q.utc_now())
        elif report == "latency":
            result = q.latency_report(store, scope, model=model)
        else:
            result = q.tools_report(store, scope)
    finally:
        store.close()
    return {"project": scope.project, report: jsonable(dataclasses.asdict(result))}


def run(args: argparse.Namespace) -> int:
    from llmlens.query import utc_now

    params, label = _window_params(args.window, utc_now())
    target = resolve_target(args)
    doc = _fetch(target, args.report, params, args.model)
    data = doc[args.report]
    if args.format == "json":
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console

    console = Console()
    project = doc.get("project", "")
    if args.report == "cost":
        _print_cost(console, data, args.by, label, project)
    elif args.report == "latency":
        _print_latency(console, data, label, project)
    else:
        _print_tools(console, data, label, project)
    return 0


# -- rendering ---------------------------------------------------------------------------------


def _table(title: str, columns: list[tuple[str, str]]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return table


def _usd(value: Any) -> str:
    from llmlens.server.routes._formatting import usd

    return usd(value)  # the pages' own formatter: the same figure on screen and in the terminal


def _cost(value: Any, unpriced_calls: Any) -> str:
    """A cost that may be unknown: `unpriced` (or `$x + unpriced`) for calls without a price, never $0."""
    from llmlens.server.routes._formatting import cost_or_unpriced

    return cost_or_unpriced(value, unpriced_calls)


def _ms(value: Any) -> str:
    if value is None:
        return "—"
    v = float(value)
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def _num(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{float(value):,.{digits}f}"


def _print_cost(console: Any, data: dict[str, Any], by: str, window: str, project: str) -> None:
    total = float(data.get("total_usd") or 0.0)
    title = f"Cost by {by} — {window}, project {project}"
    if by == "model":
        table = _table(title, [("model", "left"), ("calls", "right"), ("cost", "right"), ("share", "right")])
        for m in data["by_model"]:
            share = float(m["cost_usd"]) / total if total and m["cost_usd"] is not None else None
            table.add_row(m["model"], f"{m['calls']:,}", _cost(m["cost_usd"], m.get("unpriced_calls")), _pct(share))
    elif by == "user":
        table = _table(
            title,
            [
                ("user", "left"),
                ("tier", "left"),
                ("calls", "right"),
                ("cost", "right"),
                ("month to date", "right"),
                ("budget", "right"),
                ("used", "right"),
            ],
        )
        for u in data["top_users"]:
            table.add_row(
                u["user_id"],
                u.get("tier") or "—",
                f"{u['calls']:,}",
                _usd(u["cost_usd"]),
                _usd(u["month_to_date_usd"]),
                _usd(u.get("monthly_budget_usd")),
                _pct(u.get("budget_used")),
            )
    elif by == "feature":
        table = _table(
            title,
            [
                ("feature", "left"),
                ("calls", "right"),
                ("cost", "right"),
                ("per call", "right"),
                ("× cheapest", "right"),
            ],
        )
        for f in data["by_feature"]:
            times = f.get("times_cheapest")
            table.add_row(
                f["feature"],
                f"{f['calls']:,}",
                _cost(f["cost_usd"], f.get("unpriced_calls")),
                _usd(f.get("cost_per_call_usd")),
                "—" if times is None else f"{float(times):.1f}×",
            )
    else:
        table = _table(
            title,
            [("template", "left"), ("version", "left"), ("calls", "right"), ("cost", "right"), ("per call", "right")],
        )
        for t in data["by_template_version"]:
            table.add_row(
                t["template_id"],
                t["template_version"],
                f"{t['calls']:,}",
                _cost(t["cost_usd"], t.get("unpriced_calls")),
                _usd(t.get("cost_per_call_usd")),
            )
    console.print(table)
    unpriced_calls = int(data.get("unpriced_calls") or 0)
    console.print(
        f"Total {_cost(total, unpriced_calls)} over {int(data.get('calls') or 0):,} calls"
        + (f" ({unpriced_calls:,} without a price)." if unpriced_calls else ".")
    )
    month = data.get("month") or {}
    if month.get("projected_usd") is not None:
        console.print(_forecast_line(month), highlight=False)
    unpriced = data.get("unpriced") or []
    if unpriced:
        names = ", ".join(f"{u['model']} ({u['calls']:,} calls)" for u in unpriced)
        console.print(f"[yellow]Unpriced models (cost unknown, not zero): {names}[/yellow]")


def _forecast_line(month: dict[str, Any]) -> str:
    """The month-end forecast as the Overview and Cost pages show it: figure, interval, days of history."""
    days = int(month.get("days_of_history") or 0)
    line = f"Month to date {_usd(month.get('month_to_date_usd'))}; forecast, month end {_usd(month['projected_usd'])}"
    if not days:
        return line + " (0 days of history: no complete day of spend yet, so this is month to date only)."
    interval = round(float(month.get("interval") or 0.0) * 100)
    return (
        f"{line} ({_usd(month.get('low_usd'))} – {_usd(month.get('high_usd'))}, {interval} % interval; "
        f"{days} day{'' if days == 1 else 's'} of history, {month.get('method')})."
    )


def _print_latency(console: Any, data: dict[str, Any], window: str, project: str) -> None:
    table = _table(
        f"Latency by model — {window}, project {project}",
        [
            ("model", "left"),
            ("calls", "right"),
            ("p50", "right"),
            ("p95", "right"),
            ("p99", "right"),
            ("TTFT p50", "right"),
            ("TTFT p95", "right"),
            ("tok/s p50", "right"),
        ],
    )
    for m in data["by_model"]:
        table.add_row(
            m["model"],
            f"{m['calls']:,}",
            _ms(m["p50_ms"]),
            _ms(m["p95_ms"]),
            _ms(m["p99_ms"]),
            _ms(m["ttft_p50_ms"]),
            _ms(m["ttft_p95_ms"]),
            _num(m.get("tokens_per_s_p50")),
        )
    console.print(table)
    slowest = data.get("slowest") or []
    if slowest:
        slow = _table(
            "Slowest calls",
            [("time", "left"), ("model", "left"), ("feature", "left"), ("latency", "right"), ("trace", "left")],
        )
        for s in slowest[:5]:
            slow.add_row(
                s["timestamp"][:19], s.get("model") or "—", s.get("feature") or "—", _ms(s["latency_ms"]), s["trace_id"]
            )
        console.print(slow)


def _print_tools(console: Any, data: dict[str, Any], window: str, project: str) -> None:
    table = _table(
        f"Tools — {window}, project {project}",
        [
            ("tool", "left"),
            ("calls", "right"),
            ("failures", "right"),
            ("success", "right"),
            ("avg", "right"),
            ("p50", "right"),
            ("p95", "right"),
        ],
    )
    for t in data["tools"]:
        rate = t.get("success_rate")
        style = "red" if rate is not None and float(rate) < 0.9 else None
        table.add_row(
            t["tool_name"],
            f"{t['calls']:,}",
            f"{t['failures']:,}",
            _pct(rate),
            _ms(t.get("avg_ms")),
            _ms(t.get("p50_ms")),
            _ms(t.get("p95_ms")),
            style=style,
        )
    console.print(table)
    failures = data.get("failures") or []
    if failures:
        fail = _table("Recent failures", [("tool", "left"), ("time", "left"), ("error", "left")])
        for f in failures[:10]:
            fail.add_row(f["tool_name"], str(f["timestamp"])[:19], (f.get("error") or "")[:100])
        console.print(fail)
    if not data["tools"]:
        print("no tool calls in this window", file=sys.stderr)
