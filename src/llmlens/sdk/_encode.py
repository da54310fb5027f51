"""One queued event to one JSON line, whatever the app put in it: values JSON cannot hold are replaced
and an event too large to send is shortened, so one odd value never costs the event or its batch."""

from __future__ import annotations

import json
from typing import Any

from ._internal import warn_once

# One batch before gzip. The server refuses bodies over `max_decompressed_bytes` (50 MiB by default)
# with a 413 that would fail every event of the batch, so batches stop growing well before that.
MAX_BATCH_CHARS = 16 * 1024 * 1024
# A longer event is shortened by cutting its long strings to this many characters: the server's own
# default `max_field_chars`, so what it would have kept of them is sent.
SHORTENED_CHARS = 200_000
_MAX_DEPTH = 32
_SEPARATORS = (",", ":")


class EventTooLarge(ValueError):
    """Still over `MAX_BATCH_CHARS` once its long strings were cut (e.g. a list of a million numbers)."""


def json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models (provider SDK objects)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=json_default, separators=_SEPARATORS)


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"[:300]
    except Exception:  # an exception whose own str() fails
        return type(exc).__name__


def _placeholder(value: Any) -> str:
    return f"[not sent: {type(value).__name__} value that cannot be written as JSON]"


def _encodable(value: Any, outer: tuple[int, ...] = ()) -> Any:
    """`value` with each part JSON cannot hold replaced by a placeholder: values whose text cannot be
    had, keys JSON has no form for, a container holding itself, nesting deeper than `_MAX_DEPTH`."""
    if id(value) in outer:
        return "[not sent: a reference back to a containing value]"
    try:
        _dumps(value)
        return value
    except Exception:
        pass
    if len(outer) >= _MAX_DEPTH:
        return f"[not sent: {type(value).__name__} value nested more than {_MAX_DEPTH} deep]"
    inner = (*outer, id(value))
    if isinstance(value, dict):
        return {_encodable_key(k): _encodable(v, inner) for k, v in list(value.items())}
    if isinstance(value, list | tuple):
        return [_encodable(v, inner) for v in list(value)]
    return _placeholder(value)


def _encodable_key(key: Any) -> str | int | float | bool | None:
    if key is None or isinstance(key, str | int | float | bool):
        return key  # type: ignore[no-any-return]
    try:
        return str(key)
    except Exception:
        return _placeholder(key)


def _shortened(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        if len(value) <= SHORTENED_CHARS:
            return value
        # The marker counts in the limit, so the server keeps the string as it comes.
        marker = f"…[cut by the llmlens SDK from {len(value)} chars]"
        return value[: SHORTENED_CHARS - len(marker)] + marker
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _shortened(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_shortened(v, depth + 1) for v in value]
    return value


def event_line(event: dict[str, Any]) -> str:
    """The event as one line of JSON (no newline). Raises `EventTooLarge` when it cannot be made to fit."""
    try:
        line = _dumps(event)
    except Exception as exc:
        warn_once(
            "unencodable-value",
            "llmlens: an event holds a value that cannot be written as JSON (%s); such values are sent as a "
            "placeholder and the rest of the event as usual (reported once)",
            _describe(exc),
        )
        line = _dumps(_encodable(event))
    if len(line) <= MAX_BATCH_CHARS:
        return line
    shortened = _dumps(_shortened(json.loads(line)))
    if len(shortened) > MAX_BATCH_CHARS:
        raise EventTooLarge(f"an event of {len(line)} characters is too large to send even with its long strings cut")
    warn_once(
        "event-shortened",
        "llmlens: an event of %d characters was too large to send whole; its strings over %d characters were cut "
        "(reported once)",
        len(line),
        SHORTENED_CHARS,
    )
    return shortened
