"""Dataset items from an uploaded file: JSON Lines (one item object a line) or CSV (one item a row).

CSV columns: `input` (the user message) or `messages` (a JSON array), and optionally `system`,
`expected_output`, `tools`, `context`, `metadata` (JSON), `id`; any other column becomes a metadata key.
Each bad line or row is named by its index (0-based, the header not counted), the others are kept.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ._datasets import DatasetItem, ItemError, item_from_doc

_CSV_FIELDS = ("input", "messages", "system", "expected_output", "expected", "tools", "context", "metadata", "id")


class UploadError(ValueError):
    """The file as a whole cannot be read (not UTF-8, no usable header)."""


def parse_upload(body: bytes, content_type: str, filename: str = "") -> list[tuple[int, DatasetItem | str]]:
    """(index, item or the reason it was refused) for every line or row."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(f"the file is not UTF-8 text: {exc}") from None
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv") or filename.lower().endswith(".csv"):
        return _csv(text)
    if kind in ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/json") or (
        filename.lower().endswith((".jsonl", ".ndjson", ".json"))
    ):
        return _jsonl(text)
    raise UploadError(
        f"send JSON Lines (Content-Type: application/x-ndjson) or CSV (text/csv), not {content_type or 'no type'}"
    )


def _jsonl(text: str) -> list[tuple[int, DatasetItem | str]]:
    out: list[tuple[int, DatasetItem | str]] = []
    index = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            out.append((index, item_from_doc(doc)))
        except (ValueError, ItemError) as exc:
            out.append((index, f"line {index + 1}: {exc}"))
        index += 1
    return out


def _csv(text: str) -> list[tuple[int, DatasetItem | str]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "input" not in header and "messages" not in header:
        raise UploadError(f"the CSV needs an `input` or a `messages` column; its header is {header}")
    out: list[tuple[int, DatasetItem | str]] = []
    for index, row in enumerate(reader):
        doc: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in row.items():
            if key is None or value in (None, ""):
                continue
            if key in _CSV_FIELDS:
                doc[key] = value
            else:
                extra[key] = value
        if extra:
            try:
                metadata = json.loads(doc["metadata"]) if "metadata" in doc else {}
            except ValueError:
                out.append((index, f"row {index + 1}: metadata must be a JSON object"))
                continue
            doc["metadata"] = {**extra, **(metadata if isinstance(metadata, dict) else {})}
        try:
            out.append((index, item_from_doc(doc)))
        except ItemError as exc:
            out.append((index, f"row {index + 1}: {exc}"))
    return out
