"""`llmlens alerts check [--data DIR | --url URL]`: evaluate every rule once, print what would fire with
its attribution, exit 1 when something fires (for cron users). Changes no state, sends nothing."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import CliError, Target, add_target_options, resolve_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")
    check = sub.add_parser("check", help="evaluate every alert rule once; exit 1 when one fires")
    add_target_options(check)
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--all", action="store_true", help="also show the rules that do not fire")


def _local_check(target: Target) -> dict[str, Any]:
    from llmlens.alerts import AlertEngine, AlertHistory, RuleError
    from llmlens.server._jsonable import jsonable

    store = target.open_store(read_only=True)
    try:
        engine = AlertEngine(store, target.settings, history=AlertHistory(store))
        try:
            result = engine.evaluate_all(project=target.project)
        except RuleError as exc:
            raise CliError(str(exc)) from None
        doc: dict[str, Any] = jsonable(
            {
                "at": result.at,
                "firing": [e.to_dict() for e in result.firing],
                "evaluations": [e.to_dict() for e in result.evaluations],
                "errors": result.errors,
            }
        )
        return doc
    finally:
        store.close()


def _print(doc: dict[str, Any], show_all: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    shown = doc["evaluations"] if show_all else doc["firing"]
    if not doc["firing"]:
        console.print(f"[green]nothing fires[/green] ({len(doc['evaluations'])} rule evaluations at {doc['at']})")
    for e in shown:
        colour = "red" if e["firing"] else "green"
        state = "FIRING" if e["firing"] else "ok"
        if not e["firing"] and not e.get("enough_samples", True):
            # Too few calls to judge is not "ok": say how many there were of how many it needs.
            colour, state = "yellow", f"not enough data ({e['sample_size']} of {e.get('samples_needed', '?')})"
        console.print(f"[bold {colour}]{state}[/] [bold]{e['rule']}[/] ({e['project']}): {e['message']}")
        attribution = e.get("attribution") or {}
        drivers = attribution.get("drivers") or {}
        if drivers:
            table = Table(show_header=True, header_style="bold")
            for col in ("dimension", "value", "now", "usual", "share of growth"):
                table.add_column(col)
            for dimension, entries in drivers.items():
                for d in entries[:3]:
                    table.add_row(
                        dimension,
                        str(d["name"]),
                        f"${d['current_usd']:.4f}",
                        f"${d['baseline_usd']:.4f}",
                        f"{(d.get('share') or 0):.0%}",
                    )
            console.print(table)
        links = e.get("links") or {}
        if links.get("traces"):
            console.print(f"  traces: {links['traces']}")
    for err in doc.get("errors", []):
        console.print(f"[yellow]rule {err['rule']} failed on {err['project']}: {err['error']}[/yellow]")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "alerts_command", None) != "check":
        raise CliError("say what to do: llmlens alerts check [--data DIR | --url URL]", exit_code=2)
    target = resolve_target(args)
    if target.url:
        params = f"?dry_run=1&project={target.project}" if target.project else "?dry_run=1"
        doc = target.post(f"/api/v1/alerts/evaluate{params}", {})
    else:
        doc = _local_check(target)
    if args.format == "json":
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        _print(doc, args.all)
    return 1 if doc["firing"] else 0
