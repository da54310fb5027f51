"""`llmlens experiment run DATASET --variant model=A --variant model=B --evaluator groundedness`: run an
experiment on a server, wait for it, print its table, and exit 1 when a variant is significantly worse than
the baseline (the first `--variant`, or `--baseline NAME`), so that it can gate a CI job.
`llmlens experiment show ID` prints the table of an experiment already run.

Exit codes: 0 no variant significantly worse; 1 one is; 2 the experiment could not run or finish.
The server sends the calls, with its upstreams and keys: the command needs one (`--url`, `$LLMLENS_URL`,
or a server on the default port).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ._common import CliError, Target, add_target_options, resolve_target

WORSE_EXIT = 1
FAILED_EXIT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run an experiment on a dataset and print its table")
    add_target_options(run)
    run.add_argument("dataset", help="the dataset's name (made or filled first with --from-filter)")
    run.add_argument(
        "--variant",
        action="append",
        default=[],
        required=True,
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="model, template_version, temperature, max_tokens, name (repeatable; the first is the baseline)",
    )
    run.add_argument(
        "--evaluator",
        action="append",
        default=[],
        help="a judge template (groundedness, helpfulness, ...), a check (json_valid, regex:...) or module:function",
    )
    run.add_argument("--baseline", help="the variant (by name) the others are compared with (default: the first)")
    run.add_argument("--name", help="the experiment's name")
    run.add_argument(
        "--max-cost", type=float, default=5.0, help="stop sending calls past this many dollars (default 5)"
    )
    run.add_argument("--concurrency", type=int, default=4, help="calls in flight at once (default 4)")
    run.add_argument(
        "--from-filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="first add to the dataset the stored calls these trace-list filters pick (feature, feedback, score, "
        "range, limit, ...)",
    )
    run.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for it to finish (default 1800)")
    run.add_argument("--format", choices=["table", "json"], default="table")
    show = sub.add_parser("show", help="print the table of an experiment")
    add_target_options(show)
    show.add_argument("experiment_id")
    show.add_argument("--format", choices=["table", "json"], default="table")


def _server(args: argparse.Namespace) -> Target:
    target = resolve_target(args)
    if not target.url:
        raise CliError(
            "experiments run on a server (it sends the calls with its upstreams and keys): start one with "
            "`llmlens serve` and pass --url",
            FAILED_EXIT,
        )
    return target


def _pairs(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--from-filter must be KEY=VALUE, got {pair!r}", FAILED_EXIT)
        out[key.strip()] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    if args.action == "show":
        target = _server(args)
        doc = _get(target, args.experiment_id)
        return _report(doc, args.format)
    target = _server(args)
    dataset: Any = args.dataset
    if args.from_filter:
        dataset = {"name": args.dataset, "filter": _pairs(args.from_filter)}
    payload: dict[str, Any] = {
        "dataset": dataset,
        "variants": args.variant,
        "evaluators": args.evaluator,
        "max_cost_usd": args.max_cost,
        "concurrency": args.concurrency,
    }
    if args.baseline:
        payload["baseline"] = args.baseline
    if args.name:
        payload["name"] = args.name
    try:
        started = target.post("/api/v1/experiments", payload, timeout=120)
    except CliError as exc:
        raise CliError(str(exc), FAILED_EXIT) from None
    ident = started["id"]
    if args.format == "table":
        print(f"experiment {ident} started: {target.url}{started['url']}", file=sys.stderr)
    deadline = time.monotonic() + args.timeout
    doc = _get(target, ident)
    while not doc.get("finished"):
        if time.monotonic() > deadline:
            raise CliError(
                f"experiment {ident} did not finish in {args.timeout:g} s: {target.url}{started['url']}", FAILED_EXIT
            )
        time.sleep(1.0)
        doc = _get(target, ident)
    return _report(doc, args.format)


def _get(target: Target, ident: str) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = target.get(f"/api/v1/experiments/{ident}", timeout=120)
    except CliError as exc:
        raise CliError(str(exc), FAILED_EXIT) from None
    return doc


def _report(doc: dict[str, Any], fmt: str) -> int:
    results = doc.get("results") or {}
    if fmt == "json":
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)
    if doc.get("status") in ("failed", "interrupted"):
        print(f"experiment {doc.get('id')} {doc.get('status')}: {doc.get('error')}", file=sys.stderr)
        return FAILED_EXIT
    worse = results.get("worse") or []
    if worse:
        print(f"significantly worse than the baseline {doc.get('baseline')}: {', '.join(worse)}", file=sys.stderr)
        return WORSE_EXIT
    return 0


def _num(value: Any, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def print_table(doc: dict[str, Any]) -> None:
    """The page's variants table: per variant each score's mean [95 % interval], its win rate and paired test
    against the baseline, cost and latency."""
    from rich.console import Console
    from rich.table import Table

    results = doc.get("results") or {}
    names: list[str] = results.get("score_names") or []
    table = Table(
        title=f"{doc.get('name')} · {doc.get('status')} · dataset {doc.get('dataset')} v{doc.get('dataset_version')}"
    )
    for column in (
        "variant",
        "calls",
        "errors",
        *[f"{n} mean [95 %]" for n in names],
        *[f"{n} vs baseline" for n in names],
    ):
        table.add_column(column, overflow="fold")
    for column in ("cost $", "per item $", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    for v in results.get("variants") or []:
        scores = {s["name"]: s for s in v.get("scores") or []}
        means = [
            f"{_num(s.get('mean'))} [{_num(s.get('ci_low'), 2)}-{_num(s.get('ci_high'), 2)}] n={s.get('n')}"
            if (s := scores.get(n))
            else ""
            for n in names
        ]
        versus = [
            ""
            if v.get("baseline") or not (s := scores.get(n))
            else f"win {_num(s.get('win_rate'), 2)}; p={_num(s.get('p_value'), 4)}{' WORSE' if s.get('worse') else ''}"
            for n in names
        ]
        label = v["name"] + (" (baseline)" if v.get("baseline") else "")
        table.add_row(
            label,
            str(v.get("calls")),
            str(v.get("errors")),
            *means,
            *versus,
            _num(v.get("cost_usd"), 6),
            _num(v.get("cost_per_item_usd"), 6),
            _num(v.get("latency_p50_ms"), 0),
            _num(v.get("latency_p95_ms"), 0),
            style="red" if v.get("worse") else None,
        )
    Console(file=sys.stdout, width=max(120, Console().width)).print(table)
    if doc.get("error"):
        print(doc["error"])
