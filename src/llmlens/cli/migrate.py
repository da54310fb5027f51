"""`llmlens migrate --from duckdb://... --to clickhouse://...`: copy every span and feedback between stores.

Rows are read in pages ordered by time and written through the destination's `write`, which skips
what it already holds: an interrupted migration can simply be run again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import CliError

if TYPE_CHECKING:
    from llmlens.model import Feedback, Span
    from llmlens.store import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, help="store to read: duckdb://PATH or clickhouse://...")
    parser.add_argument("--to", dest="dest", required=True, help="store to write: clickhouse://... or duckdb://PATH")
    parser.add_argument("--batch", type=int, default=50_000, help="rows per page and write (default 50000)")


def _micros(value: Any) -> int:
    if not isinstance(value, dt.datetime):
        return int(str(value))
    moment: dt.datetime = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _record_fields(row: dict[str, Any], columns: tuple[tuple[str, str, str], ...]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for col, kind, attr in columns:
        value = row.get(col)
        if kind == "timestamp":
            # ClickHouse keeps the exact microseconds beside a whole-second `timestamp` on 18.16.
            value = int(row["timestamp_us"]) if row.get("timestamp_us") is not None else _micros(value)
        elif kind == "json":
            value = json.loads(value) if isinstance(value, str) else value
            if attr in ("metadata", "attributes") and value is None:
                value = {}
        elif kind == "bool" and value is not None:
            value = bool(value)
        fields[attr] = value
    return fields


def _pages(store: Store, relation: str, order: str, batch: int) -> Iterator[list[dict[str, Any]]]:
    offset = 0
    while True:
        page = store.query(f"SELECT * FROM {relation} ORDER BY {order} LIMIT {batch} OFFSET {offset}").dicts()
        if not page:
            return
        yield page
        offset += len(page)


def _spans(store: Store, batch: int) -> Iterator[list[Span]]:
    from llmlens.model import Span
    from llmlens.store import SPAN_COLUMNS

    for page in _pages(store, "spans", "timestamp, project, span_id", batch):
        yield [Span(**_record_fields(r, SPAN_COLUMNS)) for r in page]


def _feedback(store: Store, batch: int) -> Iterator[list[Feedback]]:
    from llmlens.model import Feedback
    from llmlens.store import FEEDBACK_COLUMNS

    for page in _pages(store, "store.feedback", "timestamp, project, feedback_id", batch):
        yield [Feedback(**_record_fields(r, FEEDBACK_COLUMNS)) for r in page]


def run(args: argparse.Namespace) -> int:
    from llmlens.store import open_store

    if args.source == args.dest:
        raise CliError("--from and --to name the same store")
    if args.batch <= 0:
        raise CliError("--batch must be a positive number of rows")
    try:
        source = open_store(args.source, Path("."), read_only=True)
    except Exception as exc:
        raise CliError(f"cannot open --from {args.source}: {exc}") from None
    try:
        dest = open_store(args.dest, Path("."))
    except Exception as exc:
        source.close()
        raise CliError(f"cannot open --to {args.dest}: {exc}") from None
    started = time.monotonic()
    copied = {"spans": 0, "feedback": 0, "already there": 0}
    try:
        for spans in _spans(source, args.batch):
            result = dest.write(spans, [])
            copied["spans"] += result.spans_written
            copied["already there"] += result.spans_duplicate
            print(f"spans: {copied['spans']} copied", flush=True)
        for feedback in _feedback(source, args.batch):
            result = dest.write([], feedback)
            copied["feedback"] += result.feedback_written
            copied["already there"] += result.feedback_duplicate
    finally:
        source.close()
        dest.close()
    elapsed = time.monotonic() - started
    print(
        f"migrated {copied['spans']} spans and {copied['feedback']} feedback events "
        f"({copied['already there']} already there) from {source.url} to {dest.url} in {elapsed:.1f} s"
    )
    return 0
