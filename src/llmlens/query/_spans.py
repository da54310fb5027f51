"""Reading whole spans back for the debugging views: JSON columns parsed, times as datetimes."""

from __future__ import annotations

import json
from typing import Any

from llmlens.store import SPAN_COLUMNS, Store

from ._common import rows

JSON_COLUMNS = frozenset(col for col, kind, _ in SPAN_COLUMNS if kind == "json")
SPAN_SELECT = ", ".join(col for col, _, _ in SPAN_COLUMNS)
# Roles that start a line of a prompt flattened to text (`role: content`, by the codecs and conventions).
_ROLES = ("system", "user", "assistant", "tool", "developer", "function")


def parse_json_columns(record: dict[str, Any]) -> dict[str, Any]:
    for col in JSON_COLUMNS:
        value = record.get(col)
        if isinstance(value, str):
            try:
                record[col] = json.loads(value)
            except json.JSONDecodeError:
                pass
    return record


def read_spans(store: Store, where: str, params: list[Any], order: str = "timestamp, span_id") -> list[dict[str, Any]]:
    """Every stored column of the matching spans (trusted `where`, bound `params`)."""
    return [
        parse_json_columns(r)
        for r in rows(store, f"SELECT {SPAN_SELECT} FROM spans WHERE {where} ORDER BY {order}", params)
    ]


def message_text(messages: Any, role: str) -> str | None:
    """The last message of `role` in a chat message list, as text."""
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == role:
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return None


def first_user_message(prompt: str | None) -> str | None:
    """The first user message of a prompt flattened as `role: text` lines, else the prompt's first line."""
    if not prompt:
        return None
    lines = prompt.splitlines()
    starts = tuple(f"{role}: " for role in _ROLES)
    if not lines[0].startswith(starts):
        return lines[0].strip() or None
    for i, line in enumerate(lines):
        if line.startswith("user: "):
            text = [line.removeprefix("user: ")]
            for rest in lines[i + 1 :]:
                if rest.startswith(starts):
                    break
                text.append(rest)
            return " ".join(text).strip() or None
    return None
