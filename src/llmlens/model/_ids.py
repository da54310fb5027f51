"""W3C trace-context ids: 32 hex digits for traces, 16 for spans."""

from __future__ import annotations

import os
import re

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def is_trace_id(value: str) -> bool:
    return bool(_TRACE_ID.match(value)) and value != _INVALID_TRACE


def is_span_id(value: str) -> bool:
    return bool(_SPAN_ID.match(value)) and value != _INVALID_SPAN


def normalize_trace_id(value: str) -> str:
    """Lower-case a trace id, accepting UUID-style dashes; raise ValueError if it is not one."""
    v = value.strip().lower().replace("-", "")
    if not is_trace_id(v):
        raise ValueError(f"not a W3C trace id (32 hex digits, not all zero): {value!r}")
    return v


def normalize_span_id(value: str) -> str:
    v = value.strip().lower()
    if not is_span_id(v):
        raise ValueError(f"not a W3C span id (16 hex digits, not all zero): {value!r}")
    return v


def span_id_from_text(text: str) -> str:
    """A stable span id derived from any caller-chosen id (e.g. a message id that is not hex)."""
    import hashlib

    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def trace_id_from_text(text: str) -> str:
    import hashlib

    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
