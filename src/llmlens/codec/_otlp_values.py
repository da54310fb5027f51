"""OTLP AnyValue / KeyValue / id decoding for both wire forms, clipping absurd values with a note."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

# Limits on one attribute value. Beyond them the value is clipped or dropped and a note says why.
MAX_STRING_CHARS = 1_000_000
MAX_DEPTH = 16
MAX_ITEMS = 10_000


class IdError(ValueError):
    """A trace or span id that is not a valid W3C id."""


def hex_id_from_bytes(raw: bytes, size: int, what: str) -> str:
    if len(raw) != size:
        raise IdError(f"{what} must be {size} bytes, got {len(raw)}")
    if raw.count(0) == size:  # all zero (a C loop; any() walks the bytes in Python)
        raise IdError(f"{what} is all zero")
    return raw.hex()


def hex_id_from_json(value: Any, size: int, what: str) -> str:
    """OTLP/JSON ids are lowercase hex; base64 (the generic protobuf JSON mapping) is accepted too."""
    if not isinstance(value, str):
        raise IdError(f"{what} must be a hex string, got {type(value).__name__}")
    text = value.strip()
    if len(text) == size * 2:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise IdError(f"{what} is not hex: {value[:64]!r}") from None
    else:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise IdError(f"{what} must be {size * 2} hex digits, got {value[:64]!r}") from None
    return hex_id_from_bytes(raw, size, what)


def optional_parent_from_json(value: Any, notes: list[str]) -> str | None:
    if value in (None, ""):
        return None
    try:
        return hex_id_from_json(value, 8, "parentSpanId")
    except IdError as exc:
        notes.append(f"{exc}: parent dropped")
        return None


def optional_parent_from_bytes(raw: bytes, notes: list[str]) -> str | None:
    if not raw:
        return None
    try:
        return hex_id_from_bytes(raw, 8, "parent_span_id")
    except IdError as exc:
        notes.append(f"{exc}: parent dropped")
        return None


def _clip_str(value: str, key: str, notes: list[str]) -> str:
    if len(value) > MAX_STRING_CHARS:
        notes.append(f"{key}: string of {len(value)} chars clipped to {MAX_STRING_CHARS}")
        return value[:MAX_STRING_CHARS]
    return value


_DROP = object()


def _finite(x: float, key: str, notes: list[str]) -> Any:
    if math.isfinite(x):
        return x
    notes.append(f"{key}: non-finite number {x!r} dropped")
    return _DROP


# -- protobuf ---------------------------------------------------------------------------------


def proto_value(v: Any, key: str, notes: list[str], depth: int = 0) -> Any:
    """An `AnyValue` message -> a plain Python value, or `_DROP`."""
    which = v.WhichOneof("value")
    if which == "string_value":
        s: str = v.string_value
        return _clip_str(s, key, notes) if len(s) > MAX_STRING_CHARS else s
    if which == "int_value":
        return int(v.int_value)
    if which == "bool_value":
        return bool(v.bool_value)
    if which == "double_value":
        return _finite(float(v.double_value), key, notes)
    if which is None:
        return None
    if depth >= MAX_DEPTH:
        notes.append(f"{key}: nested deeper than {MAX_DEPTH} levels, dropped")
        return _DROP
    if which == "array_value":
        values = v.array_value.values
        if len(values) > MAX_ITEMS:
            notes.append(f"{key}: array of {len(values)} items clipped to {MAX_ITEMS}")
            values = values[:MAX_ITEMS]
        out = [proto_value(item, key, notes, depth + 1) for item in values]
        return [x for x in out if x is not _DROP]
    if which == "kvlist_value":
        return proto_attributes(v.kvlist_value.values, notes, depth + 1, prefix=key + ".")
    if which == "bytes_value":
        raw: bytes = v.bytes_value
        return _clip_str(base64.b64encode(raw).decode("ascii"), key, notes)
    return None


def proto_attributes(kvs: Any, notes: list[str], depth: int = 0, prefix: str = "") -> dict[str, Any]:
    """Repeated `KeyValue` -> dict. A later duplicate key wins, as in the SDKs."""
    if len(kvs) > MAX_ITEMS:
        notes.append(f"{prefix or 'attributes'}: {len(kvs)} keys clipped to {MAX_ITEMS}")
        kvs = kvs[:MAX_ITEMS]
    out: dict[str, Any] = {}
    for kv in kvs:
        any_value = kv.value  # unset: an empty AnyValue, which reads as None like an unset value
        which = any_value.WhichOneof("value")
        # Scalars are most attributes: taken here, without a call and a key built for notes never written.
        if which == "string_value":
            text: str = any_value.string_value
            if len(text) <= MAX_STRING_CHARS:
                out[kv.key] = text
                continue
        elif which == "int_value":
            out[kv.key] = int(any_value.int_value)
            continue
        elif which == "bool_value":
            out[kv.key] = bool(any_value.bool_value)
            continue
        elif which is None:
            out[kv.key] = None
            continue
        key = kv.key
        value = proto_value(any_value, prefix + key, notes, depth)
        if value is not _DROP:
            out[key] = value
    return out


# -- OTLP/JSON --------------------------------------------------------------------------------


def json_value(v: Any, key: str, notes: list[str], depth: int = 0) -> Any:
    """An OTLP/JSON AnyValue object (`{"stringValue": ...}`, camel or snake case) -> a Python value."""
    if not isinstance(v, dict) or not v:
        return None
    for name, item in v.items():
        if name in ("stringValue", "string_value"):
            if isinstance(item, str):
                return _clip_str(item, key, notes) if len(item) > MAX_STRING_CHARS else item
            notes.append(f"{key}: stringValue is not a string, dropped")
            return _DROP
        if name in ("intValue", "int_value"):
            return _json_int(item, key, notes)
        if name in ("boolValue", "bool_value"):
            if isinstance(item, bool):
                return item
            notes.append(f"{key}: boolValue is not a boolean, dropped")
            return _DROP
        if name in ("doubleValue", "double_value"):
            return _json_double(item, key, notes)
        if name in ("arrayValue", "array_value", "kvlistValue", "kvlist_value"):
            if depth >= MAX_DEPTH:
                notes.append(f"{key}: nested deeper than {MAX_DEPTH} levels, dropped")
                return _DROP
            values = item.get("values") if isinstance(item, dict) else None
            if values is None:
                values = []
            if not isinstance(values, list):
                notes.append(f"{key}: {name}.values is not a list, dropped")
                return _DROP
            if name.startswith("array"):
                if len(values) > MAX_ITEMS:
                    notes.append(f"{key}: array of {len(values)} items clipped to {MAX_ITEMS}")
                    values = values[:MAX_ITEMS]
                out = [json_value(x, key, notes, depth + 1) for x in values]
                return [x for x in out if x is not _DROP]
            return json_attributes(values, notes, depth + 1, prefix=key + ".")
        if name in ("bytesValue", "bytes_value"):
            if isinstance(item, str):
                return _clip_str(item, key, notes)
            notes.append(f"{key}: bytesValue is not a string, dropped")
            return _DROP
    return None


def _json_int(item: Any, key: str, notes: list[str]) -> Any:
    if isinstance(item, int) and not isinstance(item, bool):
        return item
    if isinstance(item, str):
        try:
            return int(item.strip())
        except ValueError:
            pass
    if isinstance(item, float) and math.isfinite(item) and item == int(item):
        return int(item)
    notes.append(f"{key}: intValue {str(item)[:40]!r} is not an integer, dropped")
    return _DROP


def _json_double(item: Any, key: str, notes: list[str]) -> Any:
    if isinstance(item, int | float) and not isinstance(item, bool):
        return _finite(float(item), key, notes)
    if isinstance(item, str):
        try:
            return _finite(float(item), key, notes)
        except ValueError:
            pass
    notes.append(f"{key}: doubleValue {str(item)[:40]!r} is not a number, dropped")
    return _DROP


def json_attributes(kvs: Any, notes: list[str], depth: int = 0, prefix: str = "") -> dict[str, Any]:
    """A JSON list of `{key, value}` -> dict; malformed entries are skipped with a note."""
    if not isinstance(kvs, list):
        if kvs is not None:
            notes.append(f"{prefix or 'attributes'}: not a list, dropped")
        return {}
    if len(kvs) > MAX_ITEMS:
        notes.append(f"{prefix or 'attributes'}: {len(kvs)} keys clipped to {MAX_ITEMS}")
        kvs = kvs[:MAX_ITEMS]
    out: dict[str, Any] = {}
    for kv in kvs:
        key = kv.get("key") if isinstance(kv, dict) else None
        if not isinstance(key, str):
            notes.append(f"{prefix or 'attributes'}: entry without a string key dropped")
            continue
        value = json_value(kv.get("value"), prefix + key, notes, depth)
        if value is not _DROP:
            out[key] = value
    return out


def json_uint64(value: Any, what: str) -> int:
    """OTLP/JSON 64-bit integers: decimal strings or plain numbers."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got a boolean")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and math.isfinite(value):
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            raise ValueError(f"{what} must be an integer, got {value[:40]!r}") from None
    else:
        raise ValueError(f"{what} must be an integer, got {type(value).__name__}")
    if not 0 <= result < 2**64:
        raise ValueError(f"{what} is out of range: {result}")
    return result


def get(d: dict[str, Any], camel: str, snake: str) -> Any:
    """A field by its OTLP/JSON lowerCamelCase name, or the proto snake_case name."""
    value = d.get(camel)
    return d.get(snake) if value is None else value
