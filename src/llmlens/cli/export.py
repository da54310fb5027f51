"""`llmlens export`: one of the article's views over a time window to Parquet, JSON Lines or CSV."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from pathlib import Path

from ._common import CliError, Target, add_target_options, resolve_target
from ._times import SINCE_HELP, time_option

_KINDS = ("llm", "tool", "retrieval", "feedback", "spans")
_FORMATS = ("parquet", "jsonl", "csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="7d", help=f"start: {SINCE_HELP} (default: 7d)")
    parser.add_argument("--until", default="now", help=f"end (exclusive): {SINCE_HELP}, or now (default)")
    parser.add_argument("--format", choices=_FORMATS, default="parquet")
    parser.add_argument(
        "--kind",
        choices=_KINDS,
        default="llm",
        help="llm -> llm_logs, tool -> tool_logs, retrieval -> retrieval_logs, feedback -> feedback_events, "
        "spans -> every span (default: llm)",
    )
    parser.add_argument("--out", help="file to write ('-' for standard output; default: <view>.<format>)")
    add_target_options(parser)


def run(args: argparse.Namespace) -> int:
    from llmlens.export import EXTENSIONS, export_kind

    kind = export_kind(args.kind)
    out = args.out or f"{kind.view}.{EXTENSIONS[args.format]}"
    if out == "-" and args.format == "parquet":
        raise CliError("Parquet is binary: give --out FILE")
    from llmlens.query import utc_now

    now = utc_now()
    # Read here whichever way the rows come, so a bad time is refused before any request is made.
    since, until = time_option(args.since, "--since", now=now), time_option(args.until, "--until", now=now)
    if since >= until:
        raise CliError("--since must be before --until")
    target = resolve_target(args)
    rows = _via_server(target, args, out) if target.url else _via_store(target, args, out, since, until)
    where = "standard output" if out == "-" else out
    print(f"llmlens export: {rows} {kind.view} rows written to {where}", file=sys.stderr)
    return 0


def _via_server(target: Target, args: argparse.Namespace, out: str) -> str:
    import httpx

    assert target.url is not None
    params = {"kind": args.kind, "since": args.since, "until": args.until, "format": args.format}
    if target.project:
        params["project"] = target.project
    url = target.url.rstrip("/") + "/api/v1/export"
    try:
        with httpx.stream("GET", url, params=params, headers=target.headers(), timeout=600) as response:
            if response.status_code >= 400:
                response.read()
                try:
                    message = response.json().get("error")
                except ValueError:
                    message = response.text[:300]
                raise CliError(f"server answered {response.status_code}: {message}")
            rows = str(response.headers.get("x-llmlens-rows", "?"))
            if out == "-":
                for chunk in response.iter_bytes():
                    sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            else:
                from llmlens._private_files import open_private

                tmp = Path(out + ".part")
                with open(open_private(tmp), "wb") as fh:  # exported rows are user data: 0600
                    for chunk in response.iter_bytes():
                        fh.write(chunk)
                tmp.replace(out)
            return rows
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {target.url}: {exc}") from None


def _via_store(target: Target, args: argparse.Namespace, out: str, since: dt.datetime, until: dt.datetime) -> str:
    import tempfile

    from llmlens.export import ExportError, ExportSpec, export_kind, export_to_file

    try:
        spec = ExportSpec(export_kind(args.kind), target.project or target.settings.project, since, until, args.format)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    store = target.open_store()
    try:
        if out != "-":
            return str(export_to_file(store, spec, Path(out)))
        with tempfile.TemporaryDirectory(prefix="llmlens-export-") as tmp:
            path = Path(tmp) / f"export.{args.format}"
            rows = export_to_file(store, spec, path)
            with path.open("rb") as fh:
                shutil.copyfileobj(fh, sys.stdout.buffer)
            sys.stdout.flush()
            return str(rows)
    except ExportError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
