"""The DuckDB store's span insert names only the columns a batch fills, converted from numpy columns in one
statement; what it stores must be, field by field, what a plain insert of every column of every span
stores. Checked on every captured OTLP trace fixture (ours and the shared set), decoded and put through
the content transforms as the server does, batch by batch, plus batches mixing kinds and a lone span."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
from tests.otlp._fixtures import OWN_FIXTURES, SHARED_FIXTURES, Payload, payloads

from llmlens.codec.otlp import decode_traces
from llmlens.ingest import content_transforms
from llmlens.model import Span
from llmlens.pricing import PriceBook
from llmlens.redaction import Redactor
from llmlens.store import SPAN_COLUMNS
from llmlens.store.duckdb import DuckDBStore

_EPOCH = dt.datetime(1970, 1, 1)
_TRANSFORMS, _ = content_transforms(Redactor.from_config({}), 200_000)
_PRICES = PriceBook.load(None)


def _trace_payloads() -> list[Payload]:
    found = [p for root in (OWN_FIXTURES, SHARED_FIXTURES) for p in payloads(root) if p.signal == "traces"]
    assert found, "no OTLP trace fixtures: they are part of the repository"
    return found


def _spans(payload: Payload) -> list[Span]:
    decoded = decode_traces(
        payload.path.read_bytes(), payload.expected["content_type"], payload.expected.get("content_encoding")
    )
    for span in decoded.spans:
        _PRICES.price_span(span)
        for transform in _TRANSFORMS:
            transform(span)
    return decoded.spans


def _reference_value(span: Span, col: str, kind: str, attr: str) -> Any:
    value = getattr(span, attr)
    if kind == "timestamp":
        return _EPOCH + dt.timedelta(microseconds=value)
    if kind == "json":
        if col == "attributes" and not value:
            return None
        return None if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return value


def _insert_one_by_one(db: Path, spans: list[Span]) -> None:
    """Every column of every span bound as a parameter: no numpy, no column left out."""
    names = ", ".join(f'"{col}"' for col, _, _ in SPAN_COLUMNS)
    marks = ", ".join("?::JSON" if kind == "json" else "?" for _, kind, _ in SPAN_COLUMNS)
    with duckdb.connect(str(db)) as con:
        for span in spans:
            row = [_reference_value(span, col, kind, attr) for col, kind, attr in SPAN_COLUMNS]
            con.execute(f"INSERT INTO store.spans ({names}) VALUES ({marks})", row)


def _stored(db: Path) -> list[dict[str, Any]]:
    names = ", ".join(f'"{col}"' for col, _, _ in SPAN_COLUMNS)
    kinds = {col: kind for col, kind, _ in SPAN_COLUMNS}
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(f"SELECT {names} FROM store.spans ORDER BY project, span_id").fetchall()
    out = []
    for row in rows:
        record = dict(zip((col for col, _, _ in SPAN_COLUMNS), row, strict=True))
        for col, value in record.items():
            if kinds[col] == "json" and value is not None:
                record[col] = json.loads(value)  # compared as values: the text form is not the point here
        out.append(record)
    return out


def _both_ways(tmp_path: Path, batches: list[list[Span]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    fast, plain = tmp_path / "fast.duckdb", tmp_path / "plain.duckdb"
    store = DuckDBStore(fast)
    for batch in batches:
        store.write(batch, [])
    store.close()
    DuckDBStore(plain).close()  # the same schema, empty
    _insert_one_by_one(plain, [span for batch in batches for span in batch])
    return _stored(fast), _stored(plain)


def _assert_same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        differing = {col: (g[col], w[col]) for col in w if g[col] != w[col]}
        assert not differing, f"span {w['span_id']}: stored vs plain insert {differing}"


def test_each_fixture_batch_is_stored_as_a_plain_insert_of_every_column_stores_it(tmp_path: Path) -> None:
    batches = []
    for payload in _trace_payloads():
        spans = _spans(payload)
        assert spans, f"{payload.name} decoded to no span"
        batches.append(spans)  # one commit per fixture, as one export request is
    got, want = _both_ways(tmp_path, batches)
    _assert_same(got, want)


def test_mixed_batches_and_a_lone_span_are_stored_as_plain_inserts_store_them(tmp_path: Path) -> None:
    every = [span for payload in _trace_payloads() for span in _spans(payload)]
    # One batch of everything (columns filled by some spans only), then single spans (most columns empty).
    batches = [every[: len(every) // 2], *[[span] for span in every[len(every) // 2 :]]]
    got, want = _both_ways(tmp_path, batches)
    _assert_same(got, want)
    filled = {col for record in want for col, value in record.items() if value is not None}
    empty_somewhere = {col for record in want for col, value in record.items() if value is None}
    assert len(filled & empty_somewhere) > 20, "the fixtures exercise too few partly-filled columns to prove much"
