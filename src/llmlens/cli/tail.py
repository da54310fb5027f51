"""`llmlens tail`: a live stream of LLM calls, polled from the server (or a store) every second."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import deque
from typing import Any

from ._common import CliError, Target, add_target_options, resolve_target
from ._times import SINCE_HELP, time_option

_COLUMNS: tuple[tuple[str, int, str], ...] = (
    ("time", 19, "left"),
    ("model", 22, "left"),
    ("feature", 16, "left"),
    ("user", 16, "left"),
    ("status", 6, "left"),
    ("latency", 9, "right"),
    ("tokens", 11, "right"),
    ("cost", 9, "right"),
    ("response", 40, "left"),
)
# Spans can arrive a little after their start time: each poll looks back this far and skips seen ids.
_LOOKBACK = dt.timedelta(seconds=120)
_PAGE = 500
_SEEN = 20_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", default="5m", help=f"first show calls from this time on: {SINCE_HELP} (default 5m; 0 for none)"
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    parser.add_argument("--model", help="only this model")
    parser.add_argument("--feature", help="only this feature")
    parser.add_argument("--user", help="only this user id")
    parser.add_argument("--errors", action="store_true", help="only failed calls")
    parser.add_argument("--limit", type=int, help="stop after this many calls")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="json: one JSON object a line")
    add_target_options(parser)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def build_query(low: dt.datetime, args: argparse.Namespace) -> str:
    conditions = [f"timestamp >= TIMESTAMP {_literal(low.isoformat(sep=' '))}"]
    for column, value in (("model", args.model), ("feature", args.feature), ("user_id", args.user)):
        if value:
            conditions.append(f"{column} = {_literal(value)}")
    if args.errors:
        conditions.append("status = 'error'")
    return (
        "SELECT timestamp, span_id, trace_id, model, feature, user_id, status, error_type, latency_ms, "
        "prompt_tokens, completion_tokens, cost_usd, left(response, 200) AS response FROM llm_logs "
        f"WHERE {' AND '.join(conditions)} ORDER BY timestamp LIMIT {_PAGE}"
    )


class _Source:
    """Runs the poll query through the server's SQL API or on a store kept open between polls."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.store = None if target.url else target.open_store()

    def rows(self, query: str) -> list[dict[str, Any]]:
        if self.store is None:
            return self.target.sql(query).dicts()
        from llmlens.store import SqlFailed, SqlRejected

        try:
            result = self.store.user_sql(query, project=self.target.project or self.target.settings.project)
        except (SqlRejected, SqlFailed) as exc:
            raise CliError(str(exc)) from None
        return result.dicts()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime.fromisoformat(str(value).replace("Z", "")).replace(tzinfo=None)


def _cells(row: dict[str, Any]) -> list[str]:
    tokens = [row.get("prompt_tokens"), row.get("completion_tokens")]
    cost = row.get("cost_usd")
    latency = row.get("latency_ms")
    status = "error" if row.get("status") == "error" else "ok"
    response = (row.get("response") or row.get("error_type") or "").replace("\n", " ")
    return [
        _time(row["timestamp"]).isoformat(sep=" ")[:19],
        row.get("model") or "—",
        row.get("feature") or "—",
        row.get("user_id") or "—",
        status,
        "—" if latency is None else (f"{latency / 1000:.2f} s" if latency >= 1000 else f"{latency:.0f} ms"),
        "/".join("—" if t is None else str(t) for t in tokens),
        "—" if cost is None else f"${float(cost):.4f}",
        response,
    ]


class _Printer:
    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.header_done = False
        from rich.console import Console

        self.console = Console(soft_wrap=False)

    def print(self, rows: list[dict[str, Any]]) -> None:
        if self.fmt == "json":
            from llmlens.server._jsonable import jsonable

            for row in rows:
                print(json.dumps(jsonable(row)), flush=True)
            return
        from rich import box
        from rich.table import Table

        table = Table(
            box=box.SIMPLE_HEAD if not self.header_done else None,
            show_header=not self.header_done,
            pad_edge=False,
            header_style="bold",
        )
        for name, width, justify in _COLUMNS:
            table.add_column(name, width=width, no_wrap=True, overflow="ellipsis", justify=justify)  # type: ignore[arg-type]
        for row in rows:
            table.add_row(*_cells(row), style="red" if row.get("status") == "error" else None)
        self.console.print(table)
        self.header_done = True


def run(args: argparse.Namespace) -> int:
    from llmlens.query import utc_now

    now = utc_now()
    # `0` here means "only calls from now on", not the epoch second 0 as elsewhere.
    low = now if args.since.strip() in ("0", "0s") else time_option(args.since, "--since", now=now)
    if args.interval <= 0:
        raise CliError("--interval must be positive")
    source = _Source(resolve_target(args))
    printer = _Printer(args.format)
    seen: deque[str] = deque(maxlen=_SEEN)
    seen_set: set[str] = set()
    shown = 0
    watching = False
    try:
        while True:
            page = source.rows(build_query(low, args))
            if not watching:
                # On stderr in both formats, once the first look succeeded: from here on every call
                # stamped at or after `low` is shown (scripts and tests wait for this line).
                print(
                    f"Watching for LLM calls from {low.isoformat(sep=' ')[:19]} UTC on (Ctrl-C to stop)",
                    file=sys.stderr,
                )
                sys.stderr.flush()
                watching = True
            if len(page) >= _PAGE:  # a full page: move past it even if its rows were all seen
                low = max(low, max(_time(r["timestamp"]) for r in page))
            rows = [r for r in page if r["span_id"] not in seen_set]
            if args.limit is not None:
                rows = rows[: args.limit - shown]
            if rows:
                printer.print(rows)
                shown += len(rows)
                for r in rows:
                    if len(seen) == seen.maxlen:
                        seen_set.discard(seen[0])
                    seen.append(r["span_id"])
                    seen_set.add(r["span_id"])
                newest = max(_time(r["timestamp"]) for r in rows)
                low = max(low, newest - _LOOKBACK)
            if args.limit is not None and shown >= args.limit:
                return 0
            time.sleep(args.interval)
    finally:
        source.close()
