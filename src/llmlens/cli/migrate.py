"""`llmlens migrate --from duckdb://... --to clickhouse://...`: copy spans, feedback and scores between stores;
`llmlens migrate --store clickhouse://...`: bring a ClickHouse database made by an older llmlens up to date;
with `--cluster NAME` (or `?cluster=NAME` in the URL), create the schema spread over that ClickHouse cluster.

Rows are read in pages ordered by time and written through the destination's `write`, which skips
what it already holds: an interrupted migration can simply be run again. Alert rules made through the
API come along; from a DuckDB file to ClickHouse, so does the state of the file's data folder (projects,
keys, users, budgets, gateway cache switches: `llmlens.state`).
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
    from llmlens.model import Feedback, Score, Span
    from llmlens.state import ImportReport
    from llmlens.store import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", help="store to read: duckdb://PATH or clickhouse://...")
    parser.add_argument("--to", dest="dest", help="store to write: clickhouse://... or duckdb://PATH")
    parser.add_argument(
        "--store",
        help="instead of copying: bring this ClickHouse database's schema up to date (stop its servers first)",
    )
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        help="with --store: create (or update) the schema on every node of this cluster of the ClickHouse "
        "configuration, replicated and sharded; the servers then use --store URL?cluster=NAME",
    )
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


def _scores(store: Store, batch: int) -> Iterator[list[Score]]:
    """Stored scores (thumbs stay feedback); none from a store made before scores existed."""
    from llmlens.model import Score
    from llmlens.store import SCORE_COLUMNS

    try:
        store.query("SELECT COUNT(*) FROM store.scores")
    except Exception:  # no scores table: a store from before scores, opened read-only (not migrated)
        return
    for page in _pages(store, "store.scores", "timestamp, project, score_id", batch):
        yield [Score(**_record_fields(r, SCORE_COLUMNS)) for r in page]


def _copy_alert_rules(source: Store, dest: Store) -> int:
    """Rules made (or deleted) through the API that `dest` lacks or has an older change of."""
    present = {rule.name: rule.updated_at for rule in dest.alert_rules()}
    newer = [rule for rule in source.alert_rules() if rule.name not in present or present[rule.name] < rule.updated_at]
    for rule in newer:
        dest.save_alert_rule(rule.name, rule.spec, rule.updated_at)
    return len(newer)


def _import_state(source_url: str, dest_url: str) -> ImportReport | None:
    """Moving a DuckDB file to ClickHouse: its data folder's keys, users, budgets and cache switches go into
    the shared state too (once: `llmlens serve` on that folder and store will not import them again)."""
    from llmlens.auth import StateUnavailable
    from llmlens.proxy import settings_files_in
    from llmlens.state import StateBackend, import_data_dir, shared_state_url

    if not source_url.startswith("duckdb://") or shared_state_url(dest_url) is None:
        return None
    data_dir = Path(source_url.removeprefix("duckdb://")).parent
    backend = StateBackend(data_dir, dest_url)
    try:
        return import_data_dir(backend, settings_files_in(data_dir))
    except (ValueError, StateUnavailable) as exc:
        raise CliError(f"the data was copied, but not the state of {data_dir}: {exc}") from None
    finally:
        backend.close()


def _with_cluster(url: str, cluster: str | None) -> str:
    """`url` naming `cluster` (`?cluster=NAME`), checked against a cluster the URL may name already."""
    if cluster is None:
        return url
    from urllib.parse import parse_qs, urlsplit

    named = parse_qs(urlsplit(url).query).get("cluster", [None])[0]
    if named is not None and named != cluster:
        raise CliError(f"--cluster {cluster} and the URL's ?cluster={named} name different clusters")
    if named is not None:
        return url
    return f"{url}{'&' if '?' in url else '?'}cluster={cluster}"


def _upgrade_schema(url: str, cluster: str | None) -> int:
    """Bring a ClickHouse database made by an older llmlens up to date (its rollups filled from its spans);
    on a cluster, create what is missing on every node, the shared state's tables too."""
    from llmlens.store import open_store

    if not url.startswith("clickhouse://"):
        raise CliError(
            f"--store takes a clickhouse:// URL (a DuckDB file is brought up to date when opened), not {url!r}"
        )
    url = _with_cluster(url, cluster)
    started = time.monotonic()
    try:
        store = open_store(url, Path("."), upgrade=True)
    except Exception as exc:
        raise CliError(f"cannot migrate {_shown(url)}: {exc}") from None
    found, current = getattr(store, "schema_found", None), getattr(store, "schema_version", None)
    store.close()
    if "cluster=" in url:
        _prepare_shared_state(url)
    if found == current:
        print(f"{store.url}: already up to date (schema version {current})")
    else:
        print(f"{store.url}: schema version {found} brought up to date in {time.monotonic() - started:.1f} s")
    return 0


def _shown(url: str) -> str:
    """`url` without its password."""
    import re

    return re.sub(r"//([^:@/]*):[^@/]*@", r"//\1@", url)


def _prepare_shared_state(url: str) -> None:
    """The shared state's tables, replicated on every node (a server makes them on one server by itself)."""
    from llmlens.auth import StateUnavailable
    from llmlens.state._clickhouse import StateConnection

    connection = StateConnection(url)
    try:
        connection.prepare()
    except StateUnavailable as exc:
        raise CliError(f"the data schema was made, but not the shared state's tables: {exc}") from None
    finally:
        connection.close()


def run(args: argparse.Namespace) -> int:
    from llmlens.store import open_store

    if args.store is not None:
        return _upgrade_schema(args.store, args.cluster)
    if args.cluster is not None:
        raise CliError("--cluster goes with --store: llmlens migrate --store clickhouse://... --cluster NAME")
    if not args.source or not args.dest:
        raise CliError(
            "give --from and --to to copy between stores, or --store to bring a ClickHouse schema up to date"
        )
    if args.source == args.dest:
        raise CliError("--from and --to name the same store")
    if args.batch <= 0:
        raise CliError("--batch must be a positive number of rows")
    try:
        source = open_store(args.source, Path("."), read_only=True)
    except Exception as exc:
        raise CliError(f"cannot open --from {args.source}: {exc}") from None
    try:
        dest = open_store(args.dest, Path("."), upgrade=True)  # copying into it is a migration too
    except Exception as exc:
        source.close()
        raise CliError(f"cannot open --to {args.dest}: {exc}") from None
    started = time.monotonic()
    copied = {"spans": 0, "feedback": 0, "scores": 0, "already there": 0, "refused": 0}
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
        for scores in _scores(source, args.batch):
            written = dest.write_scores(scores)
            copied["scores"] += written.written
            copied["already there"] += written.duplicate
            copied["refused"] += len(written.type_conflicts)
        rules = _copy_alert_rules(source, dest)
    finally:
        source.close()
        dest.close()
    state = _import_state(args.source, args.dest)
    elapsed = time.monotonic() - started
    print(
        f"migrated {copied['spans']} spans and {copied['feedback']} feedback events "
        f"({copied['already there']} already there) from {source.url} to {dest.url} in {elapsed:.1f} s"
    )
    if copied["scores"] or copied["refused"]:
        refused = f" ({copied['refused']} refused: their name has another type there)" if copied["refused"] else ""
        print(f"migrated {copied['scores']} scores{refused}")
    if rules:
        print(f"migrated {rules} alert rules made through the API")
    if state is not None:
        print(state.summary())
    return 0
