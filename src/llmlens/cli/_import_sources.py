"""What `llmlens import --from langfuse|phoenix` reads: export files -> native events, each with its line.

Every record becomes a native event (`codec/span_events.py`) sent like a native import's, so rejects come
back by line (for Parquet and single-document JSON: by record number), and re-importing a file stores
nothing twice: span ids come from the source's ids.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import CliError

if TYPE_CHECKING:
    from llmlens.model import Span

SOURCES = ("native", "langfuse", "phoenix")
# CSV cells may hold whole prompts and responses.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


@dataclass(slots=True)
class SourceEvents:
    """The events of one file, each with the line (or record number) it came from, and what was refused."""

    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    unit: str = "line"  # what the numbers count: lines, or records of a file with no lines to speak of


def _text(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
                return handle.read()
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except (gzip.BadGzipFile, EOFError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


def _stem_suffix(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1].lower() if suffixes else ""


def _json_records(text: str, sink: SourceEvents) -> Iterator[tuple[int, Any]]:
    """A JSON array (one record per element) or JSON Lines (one per line)."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            doc = json.loads(stripped)
        except ValueError as exc:
            raise CliError(f"not a JSON array of records: {exc}") from None
        sink.unit = "record"
        yield from enumerate(doc, 1)
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except ValueError as exc:
            sink.rejected.append((lineno, f"not JSON: {exc}"))


def _csv_records(text: str) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    start = 2  # the header is line 1; a record may span lines (newlines inside quoted cells)
    for row in reader:
        yield start, {k: v for k, v in row.items() if k is not None and v != ""}
        start = reader.line_num + 1


def langfuse_events(paths: list[Path]) -> list[SourceEvents]:
    """Langfuse exports (JSON Lines, JSON or CSV) of observations, traces and scores, one result per file.

    The files are read together: a trace record lends its user, session and tags to the observations of
    its trace, and Langfuse's blob-storage export writes traces and observations to separate files.
    """
    from llmlens.codec.langfuse_export import (
        RECORD_OBSERVATION,
        RECORD_SCORE,
        ExportRecordError,
        TraceContext,
        observation_span_data,
        record_kind,
        score_event,
        trace_context,
    )
    from llmlens.codec.span_events import event_from_span, inherit_trace_context
    from llmlens.conventions import span_from_otlp

    outs: list[SourceEvents] = []
    files: list[list[tuple[int, Any]]] = []
    for path in paths:
        out = SourceEvents()
        text = _text(path)
        files.append(list(_csv_records(text) if _stem_suffix(path) == ".csv" else _json_records(text, out)))
        outs.append(out)
    contexts: dict[str, TraceContext] = {}
    kinds: dict[tuple[int, int], str] = {}
    for position, records in enumerate(files):
        for number, record in records:
            try:
                if not isinstance(record, dict):
                    raise ExportRecordError(f"a record must be a JSON object, got {type(record).__name__}")
                kinds[position, number] = record_kind(record)
                if kinds[position, number] not in (RECORD_OBSERVATION, RECORD_SCORE):
                    trace_id, context = trace_context(record)
                    contexts[trace_id] = context
            except ExportRecordError as exc:
                outs[position].rejected.append((number, str(exc)))
    spans: list[tuple[int, int, Span]] = []
    for position, records in enumerate(files):
        for number, record in records:
            kind = kinds.get((position, number))
            try:
                if kind == RECORD_OBSERVATION:
                    data = observation_span_data(record)
                    inherited = contexts.get(data.trace_id)
                    if inherited is not None:
                        data.attributes = {**inherited.attributes, **data.attributes}
                    spans.append((position, number, span_from_otlp(data)))
                elif kind == RECORD_SCORE:
                    outs[position].events.append((number, score_event(record)))
            except ExportRecordError as exc:
                outs[position].rejected.append((number, str(exc)))
    inherit_trace_context([span for _, _, span in spans])
    for position, number, span in spans:
        outs[position].events.append((number, event_from_span(span)))
    for out in outs:
        out.events.sort(key=lambda pair: pair[0])
    return outs


def phoenix_events(path: Path) -> SourceEvents:
    """Phoenix's spans dataframe saved as Parquet, or OTLP JSON (one export request, or one per line)."""
    if _stem_suffix(path) == ".parquet":
        return _phoenix_parquet(path)
    return _otlp_json(path)


def _phoenix_parquet(path: Path) -> SourceEvents:
    from llmlens.codec.phoenix_export import PhoenixRowError, phoenix_span_data
    from llmlens.codec.span_events import event_from_span, inherit_trace_context
    from llmlens.conventions import span_from_otlp

    out = SourceEvents(unit="record")
    spans = []
    for number, row in _parquet_rows(path):
        try:
            spans.append((number, span_from_otlp(phoenix_span_data(row))))
        except PhoenixRowError as exc:
            out.rejected.append((number, str(exc)))
    inherit_trace_context([span for _, span in spans])
    out.events = [(number, event_from_span(span)) for number, span in spans]
    return out


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a Parquet file as dicts, read with DuckDB (the server's own dependency: no pyarrow needed).

    Timestamps are read as epoch nanoseconds, so no time-zone library is needed to read them.
    """
    import duckdb

    if not path.is_file():
        raise CliError(f"cannot read {path}: no such file")
    con = duckdb.connect()
    try:
        source = "read_parquet(?)"
        described = con.execute(f"DESCRIBE SELECT * FROM {source}", [str(path)]).fetchall()
        columns = []
        for name, column_type, *_ in described:
            quoted = '"' + str(name).replace('"', '""') + '"'
            if str(column_type).upper().startswith("TIMESTAMP"):
                columns.append(f"epoch_ns({quoted}::TIMESTAMPTZ) AS {quoted}")
            else:
                columns.append(quoted)
        cursor = con.execute(f"SELECT {', '.join(columns)} FROM {source}", [str(path)])
        names = [d[0] for d in cursor.description or []]
        number = 0
        while batch := cursor.fetchmany(1000):
            for values in batch:
                number += 1
                yield number, dict(zip(names, values, strict=True))
    except duckdb.Error as exc:
        raise CliError(f"cannot read {path} as Parquet: {exc}") from None
    finally:
        con.close()


def _otlp_json(path: Path) -> SourceEvents:
    from llmlens.codec.otlp import OtlpDecodeError, decode_traces
    from llmlens.codec.span_events import event_from_span, inherit_trace_context

    out = SourceEvents()
    text = _text(path)
    stripped = text.strip()
    spans: list[tuple[int, Span]] = []
    documents: list[tuple[int, str]]
    if stripped.startswith("{") and "\n{" not in stripped:
        documents = [(1, stripped)]
    else:
        documents = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    for number, document in documents:
        try:
            decoded = decode_traces(document.encode(), "application/json", None)
        except OtlpDecodeError as exc:
            out.rejected.append((number, f"not an OTLP JSON export request: {exc}"))
            continue
        spans.extend((number, span) for span in decoded.spans)
        out.rejected.extend(
            (number, reason if reason.startswith("span ") else f"span {index}: {reason}")
            for index, reason in decoded.rejected
        )
    inherit_trace_context([span for _, span in spans])
    out.events = [(number, event_from_span(span)) for number, span in spans]
    return out


def source_events(source: str, paths: list[Path]) -> list[SourceEvents]:
    """The events of each file, in the order given."""
    if source == "langfuse":
        return langfuse_events(paths)
    if source == "phoenix":
        return [phoenix_events(path) for path in paths]
    raise CliError(f"unknown source {source!r}: one of {', '.join(SOURCES)}")
