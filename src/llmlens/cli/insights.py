"""`llmlens insights [--range 7d] [--format json]`: what to change in the app and what it saves, ranked.

With `--url` (or a server found on the default port) the findings come from the server's
`/api/v1/insights`; with `--data`/`--store` they are computed here, by the same code, on the store.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import CliError, Target, add_target_options, resolve_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--range",
        default="7d",
        help="how far back: 1h, 24h, 7d, 30d, 90d or any duration like 14d or 2w (default 7d)",
    )
    parser.add_argument("--since", help="start of the window instead of --range: 30m, 12h, 7d, ISO 8601, epoch s")
    parser.add_argument("--kind", action="append", help="only these finding kinds (repeat, or comma-separated)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_target_options(parser)


def _params(args: argparse.Namespace) -> dict[str, str]:
    """The API's window parameters, checked here with the server's own parser."""
    from llmlens.query import WindowError, parse_window, utc_now

    from ._times import time_option

    now = utc_now()
    params: dict[str, str] = {}
    if args.since:
        params["from"] = time_option(args.since, "--since", now=now).isoformat() + "Z"
    else:
        params["range"] = args.range
    try:
        parse_window(params.get("range"), params.get("from"), None, now=now)
    except WindowError as exc:
        raise CliError(str(exc).replace("range must", "--range must", 1)) from None
    return params


def _kinds(args: argparse.Namespace) -> list[str]:
    from llmlens.insights import KINDS

    wanted = [k.strip() for value in args.kind or () for k in value.split(",") if k.strip()]
    unknown = sorted(set(wanted) - set(KINDS))
    if unknown:
        raise CliError(f"--kind must be one of {', '.join(KINDS)}, got {', '.join(unknown)}")
    return wanted


def _fetch(target: Target, params: dict[str, str], kinds: list[str]) -> dict[str, Any]:
    if target.url:
        query: dict[str, Any] = dict(params)
        if target.project:
            query["project"] = target.project
        if kinds:
            query["kind"] = ",".join(kinds)
        doc: dict[str, Any] = target.get("/api/v1/insights", query, timeout=300)
        return doc
    from llmlens.insights import compute_insights
    from llmlens.pricing import PriceBook, PriceFileError
    from llmlens.proxy import CachedFeatures, GatewayConfig
    from llmlens.query import parse_window, utc_now
    from llmlens.server._jsonable import jsonable

    settings = target.settings
    project = target.project or settings.project
    try:
        prices = PriceBook.load(settings.price_file)
        ttl = GatewayConfig.from_config(settings.gateway).cache_ttl_s
    except (PriceFileError, ValueError) as exc:
        raise CliError(str(exc)) from None
    window = parse_window(params.get("range"), params.get("from"), None, now=utc_now())
    store = target.open_store()
    try:
        report = compute_insights(store, project, window, prices=prices, cache_ttl_s=ttl, kinds=kinds or None)
    finally:
        store.close()
    doc = jsonable(report.to_dict())
    doc["status"] = "fresh"
    try:
        switches = CachedFeatures.in_data_dir(settings.data_dir)
    except ValueError:
        switches = CachedFeatures()
    for insight in doc["insights"]:
        action = insight.get("action")
        if action and action["kind"] == "enable_cache":
            action["done"] = switches.enabled(project, insight["scope"].get("feature"))
    result: dict[str, Any] = doc
    return result


def run(args: argparse.Namespace) -> int:
    params = _params(args)
    kinds = _kinds(args)
    target = resolve_target(args)
    doc = _fetch(target, params, kinds)
    if args.format == "json":
        print(json.dumps(doc, indent=2))
        return 0
    if doc.get("status") == "computing":
        print("the server is still computing the findings for this range; run again in a few seconds", file=sys.stderr)
        return 0
    _print(doc)
    return 0


def _usd(value: Any) -> str:
    if value is None:
        return "—"
    v = float(value)
    return "$0" if v == 0 else (f"${v:,.2f}" if abs(v) >= 1 else f"${v:.4f}")


def _ms(value: Any) -> str:
    if value is None:
        return "—"
    v = float(value)
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"


def _print(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    examined = doc.get("examined") or {}
    where = f"project {doc.get('project')}, {examined.get('calls', 0):,} LLM calls examined"
    if examined.get("sampled"):
        where += f" (the most recent part of the range, from {str(examined.get('start'))[:16]})"
    table = Table(title=f"Insights — {where}", title_justify="left", header_style="bold")
    for name, justify in (
        ("#", "right"),
        ("kind", "left"),
        ("finding", "left"),
        ("$ / month", "right"),
        ("per trace", "right"),
        ("calls", "right"),
        ("confidence", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for n, i in enumerate(doc["insights"], 1):
        table.add_row(
            str(n),
            i["kind"],
            i["title"],
            _usd(i["saving_usd_per_month"]),
            _ms(i["saving_ms_per_trace"]),
            f"{i['calls_affected']:,}",
            i["confidence"],
        )
    console.print(table)
    if not doc["insights"]:
        console.print("Nothing to change in this range: none of the checks found a saving.")
    for n, i in enumerate(doc["insights"], 1):
        examples = ", ".join(i["example_trace_ids"][:3]) or "none"
        console.print(f"[bold]{n}. {i['kind']}[/bold]: {i['summary']} Examples: {examples}")
        action = i.get("action")
        if action and action.get("command"):
            console.print(f"   try: {action['command']}")
    for e in doc.get("errors") or []:
        console.print(f"[red]the {e['kind']} check failed: {e['error']}[/red]")
