"""`Content-Encoding` undone in a stream, stopping as soon as the output passes a byte limit.

A compressed body is tiny on the wire and can expand a thousandfold (a gzip of zeros), so the body
size limit alone bounds nothing: the output is produced a chunk at a time and refused the moment it
grows past `max_bytes`, holding at most a few MiB of it meanwhile.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

__all__ = ["MAX_DECOMPRESSED_BYTES", "DecompressedTooLarge", "InvalidCompressedBody", "decompress_body"]

# The default of the server's max_decompressed_bytes setting (the same as its max_body_bytes): a
# compressed body may expand to no more than a plain body may be.
MAX_DECOMPRESSED_BYTES = 50 * 1024 * 1024

# Output produced per step, and how much of it is kept before a body counts as large (see `_inflate`).
_STEP_BYTES = 1 << 20
_KEEP_BYTES = 8 << 20
_GZIP = 16 + zlib.MAX_WBITS


class InvalidCompressedBody(ValueError):
    """The body is not valid data in its declared encoding, or the encoding is not supported."""


class DecompressedTooLarge(ValueError):
    """The body expands past the limit; `limit` is that limit in bytes."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit

    def __reduce__(self) -> tuple[type[DecompressedTooLarge], tuple[str, int]]:
        # Raised in decode worker processes too: keep `limit` when pickled back to the server.
        return (type(self), (str(self), self.limit))


def decompress_body(body: bytes, encoding: str | None, max_bytes: int) -> bytes | bytearray:
    """`body` with its `Content-Encoding` (gzip, x-gzip, deflate, identity) undone.

    Identity bodies come back as they are (their size is the body limit's business). Raises
    DecompressedTooLarge past `max_bytes` of output, InvalidCompressedBody for data that is not
    valid in its encoding, truncated, or in an encoding this server does not read.
    """
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc in ("gzip", "x-gzip"):
        wbits = _GZIP
    elif enc == "deflate":
        # HTTP's deflate is zlib-wrapped (first byte 0x78), but some clients send raw deflate: read both.
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        raise InvalidCompressedBody(f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or identity")
    try:
        return _inflate(body, wbits, enc, max_bytes)
    except zlib.error as exc:
        raise InvalidCompressedBody(f"body is not valid {enc} data: {exc}") from None


def _inflate(body: bytes, wbits: int, enc: str, max_bytes: int) -> bytes | bytearray:
    # Output is kept while it is small (nearly every body). Past _KEEP_BYTES it is only counted, and a
    # body that turns out to fit the limit is expanded a second time straight into a buffer of its exact
    # size: a body that does not fit (a bomb) never costs more than _KEEP_BYTES of memory, whatever the
    # limit and however many arrive at once, and one that fits is held once, not in pieces and joined.
    kept: list[bytes] | None = []
    size = 0
    for chunk in _chunks(body, wbits, enc):
        size += len(chunk)
        if size > max_bytes:
            raise DecompressedTooLarge(
                f"decompressed body is larger than the {max_bytes}-byte limit (setting max_decompressed_bytes)",
                max_bytes,
            )
        if kept is not None:
            if size <= _KEEP_BYTES:
                kept.append(chunk)
            else:
                kept = None
    if kept is not None:
        return b"".join(kept)
    out = bytearray(size)
    with memoryview(out) as view:
        at = 0
        for chunk in _chunks(body, wbits, enc):
            view[at : at + len(chunk)] = chunk
            at += len(chunk)
    return out


def _chunks(body: bytes, wbits: int, enc: str) -> Iterator[bytes]:
    """The decompressed body, _STEP_BYTES at a time. Raises zlib.error or InvalidCompressedBody."""
    pending = body
    while True:
        stream = zlib.decompressobj(wbits=wbits)
        while not stream.eof:
            chunk = stream.decompress(pending, _STEP_BYTES)
            pending = stream.unconsumed_tail
            if not chunk and not pending:
                break  # all input read and nothing more to give: a stream cut short
            yield chunk
        if not stream.eof:
            raise InvalidCompressedBody(f"{enc} body is truncated")
        # gzip allows several members one after another (`cat a.gz b.gz`); deflate has one stream.
        pending = stream.unused_data
        if not pending or wbits != _GZIP:
            return
