"""`llmlens import FILE...`: the article's JSON log lines (with or without a logging prefix)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import CliError, Target, add_target_options, resolve_target

_BATCH = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="log files: one JSON object per line ('-' for stdin)")
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
        return decoded.rejected

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
        for path in args.files:
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
