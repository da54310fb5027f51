"""The pieces behind the hostile-body limits (tests/security/test_hostile_bodies.py has them through a
server): streamed decompression, JSON text parsed without RecursionError or the digit limit, values cut
at a nesting depth, and numbers read as timestamps in the right unit."""

from __future__ import annotations

import gzip
import math
import zlib

import pytest

from llmlens.codec.compressed import DecompressedTooLarge, InvalidCompressedBody, decompress_body
from llmlens.codec.json_text import JsonTooDeep, loads_untrusted
from llmlens.model import DEPTH_MARKER, MAX_JSON_DEPTH, Span, bounded_json, drop_out_of_range_numbers, us_to_iso
from llmlens.model import parse_timestamp_us as ts


def test_decompress_body_reads_every_form_and_refuses_past_the_limit() -> None:
    text = b"llmlens " * 1000
    assert decompress_body(gzip.compress(text), "gzip", 10_000) == text
    assert decompress_body(gzip.compress(b"a") + gzip.compress(b"b"), "x-gzip", 10) == b"ab"  # two members
    assert decompress_body(zlib.compress(text), "deflate", 10_000) == text
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decompress_body(raw.compress(text) + raw.flush(), "Deflate", 10_000) == text
    assert decompress_body(b"as sent", None, 1) == b"as sent"  # identity: not this function's limit
    assert len(decompress_body(gzip.compress(text), "gzip", len(text))) == len(text)  # the limit itself is fine
    with pytest.raises(DecompressedTooLarge, match="7999-byte limit") as caught:
        decompress_body(gzip.compress(text), "gzip", len(text) - 1)
    assert caught.value.limit == len(text) - 1
    for bad, message in ((gzip.compress(text)[:-20], "truncated"), (b"not gzip", "not valid gzip")):
        with pytest.raises(InvalidCompressedBody, match=message):
            decompress_body(bad, "gzip", 10_000)
    with pytest.raises(InvalidCompressedBody, match="unsupported Content-Encoding 'br'"):
        decompress_body(b"x", "br", 10)


def test_a_body_larger_than_what_is_kept_at_first_comes_back_whole() -> None:
    # Past 8 MiB the output is only counted, then expanded again into a buffer of its size.
    data = bytes(range(256)) * (40 * 1024 + 7)  # ~10 MiB
    assert decompress_body(gzip.compress(data, 1), "gzip", 11 << 20) == data
    with pytest.raises(DecompressedTooLarge):
        decompress_body(gzip.compress(data, 1), "gzip", 9 << 20)


def test_loads_untrusted_names_depth_and_keeps_huge_integers_as_digits() -> None:
    with pytest.raises(JsonTooDeep, match=f"deeper than {MAX_JSON_DEPTH} levels"):
        loads_untrusted("[" * 100_000 + "]" * 100_000)
    digits = "9" * 5000
    assert loads_untrusted(f'{{"n": {digits}, "m": -{digits}, "k": 12}}') == {"n": digits, "m": "-" + digits, "k": 12}
    with pytest.raises(ValueError, match="Expecting"):
        loads_untrusted("[1,")


def _nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def _levels(value: object) -> tuple[int, object]:
    n = 0
    while isinstance(value, dict):
        value, n = value["a"], n + 1
    return n, value


def test_bounded_json_cuts_below_the_depth_and_names_non_finite_numbers() -> None:
    kept = _nested(MAX_JSON_DEPTH)
    assert bounded_json(kept) is kept  # nothing to change: the same object, not a copy
    assert _levels(bounded_json(_nested(MAX_JSON_DEPTH + 1))) == (MAX_JSON_DEPTH, DEPTH_MARKER)
    assert _levels(bounded_json(_nested(5000))) == (MAX_JSON_DEPTH, DEPTH_MARKER)
    original = {"x": [1, 2.5, math.nan, {"y": -math.inf}], "z": "s"}
    assert bounded_json(original) == {"x": [1, 2.5, "NaN", {"y": "-Infinity"}], "z": "s"}
    assert math.isnan(original["x"][2])  # type: ignore[index]


def test_out_of_range_numbers_are_cleared_from_a_span() -> None:
    span = Span(trace_id="a" * 32, span_id="b" * 16, latency_ms=math.inf, ttft_ms=12.0, temperature=-1.0)
    span.cost_usd, span.prompt_tokens, span.completion_tokens = math.nan, 2**63, 7
    drop_out_of_range_numbers(span)
    assert (span.latency_ms, span.ttft_ms, span.temperature, span.cost_usd) == (None, 12.0, None, None)
    assert (span.prompt_tokens, span.completion_tokens) == (None, 7)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (253402300799, "9999-12-31T23:59:59Z"),
        (253402300799.25, "9999-12-31T23:59:59.250000Z"),
        (253402300800, "1978-01-11T21:31:40.800000Z"),
        (1767225600123.5, "2026-01-01T00:00:00.123500Z"),
        (1767225600123456789, "2026-01-01T00:00:00.123456Z"),  # exact: no float in the way
        (1.7672256e18, "2026-01-01T00:00:00Z"),
        ("1767225600123456789", "2026-01-01T00:00:00.123456Z"),
        (2**64 - 1, "2554-07-21T23:34:33.709551Z"),
    ],
)
def test_timestamps_in_each_unit(sent: object, stored: str) -> None:
    assert us_to_iso(ts(sent)) == stored


@pytest.mark.parametrize(
    "sent",
    [2**64, 1e20, pytest.param(10**5000, id="5000-digits"), -1, math.nan, math.inf, "9" * 30, "10000-01-01", True],
)
def test_timestamps_out_of_range(sent: object) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        ts(sent)
