"""Keyset page cursors of the trace list: where a page starts, in which sort, and in which direction.

A cursor names the last row of a page (`after`: the next page) or the first (`before`: the page before).
The newest-first cursors of earlier versions, `time|trace_id`, still read as `after` in `-time`.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from ._trace_filters import DEFAULT_SORT, SORTS

_VERSION = "v2"


class CursorError(ValueError):
    """A pagination cursor that was not made by `encode_cursor`, or that belongs to another sort."""


@dataclass(frozen=True, slots=True)
class Cursor:
    sort: str  # e.g. -time, cost
    value: dt.datetime | float  # the row's sort value: its time, or its (coalesced) number
    trace_id: str
    before: bool = False  # the page before this row, instead of the one after it
    since: dt.datetime | None = None  # a sort by value over the roots from this time on (see trace_list)


def encode_cursor(cursor: Cursor) -> str:
    if cursor.sort == DEFAULT_SORT and not cursor.before and isinstance(cursor.value, dt.datetime):
        text = f"{cursor.value.isoformat()}|{cursor.trace_id}"  # the format older clients hold
    else:
        value = cursor.value.isoformat() if isinstance(cursor.value, dt.datetime) else repr(float(cursor.value))
        direction = "before" if cursor.before else "after"
        since = cursor.since.isoformat() if cursor.since else ""
        text = f"{_VERSION}|{cursor.sort}|{direction}|{value}|{cursor.trace_id}|{since}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_time(text: str) -> dt.datetime:
    """Naive UTC, like the stored times (a cursor written by hand may carry a zone)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def decode_cursor(text: str, sort: str) -> Cursor:
    """The cursor, checked against the page's sort (a cursor of another sort would page wrongly)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        parts = raw.split("|")
        if len(parts) == 2:
            cursor = Cursor(DEFAULT_SORT, cursor_time(parts[0]), parts[1])
        elif len(parts) == 6 and parts[0] == _VERSION and parts[1] in SORTS and parts[2] in ("after", "before"):
            key = parts[1].lstrip("-")
            value: dt.datetime | float = cursor_time(parts[3]) if key == "time" else float(parts[3])
            since = cursor_time(parts[5]) if parts[5] else None
            cursor = Cursor(parts[1], value, parts[4], before=parts[2] == "before", since=since)
        else:
            raise ValueError(text)
    except (ValueError, UnicodeDecodeError):
        raise CursorError(f"cursor {text!r} is not a cursor from a previous page") from None
    if not cursor.trace_id:
        raise CursorError(f"cursor {text!r} is not a cursor from a previous page")
    if cursor.sort != sort:
        raise CursorError(f"cursor {text!r} pages sort={cursor.sort}, not sort={sort}; drop the cursor to start over")
    return cursor
