"""`llmlens import FILE...`: the article's JSON log lines (with or without a logging prefix), or another tool's export.

`--from langfuse` reads Langfuse's observation, trace and score exports (JSON Lines, JSON or CSV);
`--from phoenix` reads Phoenix's spans dataframe saved as Parquet, or OTLP JSON. Every source follows
the same rules: a progress bar, rejects listed by line, nothing stored twice when a file is imported again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import CliError, Target, add_target_options, resolve_target

_BATCH = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="log files: one JSON object per line ('-' for stdin)")
    parser.add_argument(
        "--from",
        dest="source",
        choices=("native", "langfuse", "phoenix"),
        default="native",
        help="what the files are: llmlens/article log lines (default), a Langfuse export (JSONL, JSON or CSV), "
        "or a Phoenix export (spans dataframe as Parquet, or OTLP JSON)",
    )
    add_target_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _lines(path: Path) -> list[str]:
    if str(path) == "-":
        return sys.stdin.read().splitlines()
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


class _Sink:
    """Sends batches to a server, or into a store opened here."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._state: Any = None
        if target.url is None:
            from llmlens.server import build_state

            store = target.open_store(read_only=False)
            self._state = build_state(target.settings, store)
            self._state.writer.start()

    def send(self, events: list[dict[str, Any]]) -> list[tuple[int, str]]:
        if self.target.url is not None:
            doc = self.target.post("/api/v1/ingest", {"events": events})
            return [(r["index"], r["error"]) for r in doc["rejected"]]
        from llmlens.codec.native import decode_events

        decoded = decode_events(events, project=self.target.project or self.target.settings.project)
        self._state.pipeline.ingest_sync(decoded.spans, decoded.feedback)
        if not decoded.scores:
            return decoded.rejected
        # `{"type": "score"}` lines: checked against the store's score names, as the server does.
        from llmlens.server.routes.scores import store_scores

        scored = store_scores(self._state, self._state.store, decoded.scores)
        return sorted(decoded.rejected + scored.rejected)

    def close(self) -> None:
        if self._state is not None:
            self._state.writer.stop()
            self._state.store.close()


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from llmlens.codec.native import EventError, event_from_log_line

    target = resolve_target(args)
    sink = _Sink(target)
    accepted = 0
    rejected: list[tuple[str, int, str]] = []
    try:
        if args.source != "native":
            accepted = _import_exports(args, sink, rejected)
        for path in args.files if args.source == "native" else ():
            lines = _lines(path)
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                disable=args.quiet,
                transient=False,
                console=None,
            ) as progress:
                task = progress.add_task(str(path), total=len(lines))
                batch: list[dict[str, Any]] = []
                batch_lines: list[int] = []
                for lineno, line in enumerate(lines, 1):
                    try:
                        event = event_from_log_line(line)
                    except EventError as exc:
                        rejected.append((str(path), lineno, str(exc)))
                        continue
                    if event is None:
                        continue
                    batch.append(event)
                    batch_lines.append(lineno)
                    if len(batch) >= _BATCH:
                        accepted += _flush(sink, batch, batch_lines, str(path), rejected)
                        progress.update(task, completed=lineno)
                        batch, batch_lines = [], []
                if batch:
                    accepted += _flush(sink, batch, batch_lines, str(path), rejected)
                progress.update(task, completed=len(lines))
    finally:
        sink.close()
    print(f"imported {accepted} events; rejected {len(rejected)} lines")
    for path_name, lineno, error in rejected[:200]:
        print(f"  {path_name}:{lineno}: {error}")
    if len(rejected) > 200:
        print(f"  ... and {len(rejected) - 200} more")
    return 0 if not rejected else 1


def _import_exports(args: argparse.Namespace, sink: _Sink, rejected: list[tuple[str, int, str]]) -> int:
    """Another tool's export files: each record mapped to a native event, sent in batches."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ._import_sources import source_events

    accepted = 0
    for path, found in zip(args.files, source_events(args.source, list(args.files)), strict=True):
        where = str(path) if found.unit == "line" else f"{path} record"
        rejected.extend((where, number, error) for number, error in found.rejected)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=args.quiet,
            transient=False,
        ) as progress:
            task = progress.add_task(str(path), total=len(found.events))
            for start in range(0, len(found.events), _BATCH):
                chunk = found.events[start : start + _BATCH]
                accepted += _flush(sink, [e for _, e in chunk], [n for n, _ in chunk], where, rejected)
                progress.update(task, completed=start + len(chunk))
    rejected.sort(key=lambda r: (r[0], r[1]))
    return accepted


def _flush(
    sink: _Sink,
    batch: list[dict[str, Any]],
    lines: list[int],
    path: str,
    rejected: list[tuple[str, int, str]],
) -> int:
    errors = sink.send(batch)
    for index, error in errors:
        rejected.append((path, lines[index], error))
    return len(batch) - len(errors)
