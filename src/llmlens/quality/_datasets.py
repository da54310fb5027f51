"""Datasets: items of input messages (and tools), an optional expected output, metadata and the source call.

Kept per project in the shared settings store (`llmlens.state`), so servers that share ClickHouse share
them: one record per dataset (name, description, version, history), and one snapshot of its items per
version (`NAME@VERSION`). Adding or removing items makes a new version; an experiment names the version
it ran on, so its results keep meaning what they meant.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llmlens.state import SharedSettings

from ._samples import Chunk, chunks_of

DATASET_KIND = "dataset"
ITEMS_KIND = "dataset_items"
MAX_ITEMS = 5_000
MAX_VERSIONS_KEPT = 50
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ITEM_KEYS = {
    "id",
    "messages",
    "input",
    "system",
    "tools",
    "expected_output",
    "expected",
    "metadata",
    "variables",
    "context",
    "source_span_id",
}


class DatasetError(ValueError):
    """A dataset operation that cannot be done; the message says why."""


class ItemError(ValueError):
    """One item that cannot be used; names the field."""


@dataclass(slots=True)
class DatasetItem:
    id: str
    messages: list[Any]
    tools: list[Any] | None = None
    expected_output: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    context: list[dict[str, Any]] = field(default_factory=list)  # retrieved chunks: [{content, id}]
    variables: dict[str, Any] | None = None  # a template's variables, to fill another version's prompt
    params: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens of the source call
    source: dict[str, Any] | None = None  # span_id, trace_id, model, provider, output, feature, template

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DatasetItem:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})

    @property
    def question(self) -> str | None:
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return None

    def chunks(self) -> list[Chunk]:
        return chunks_of(self.context)


@dataclass(slots=True)
class Dataset:
    project: str
    name: str
    description: str = ""
    version: int = 0
    items: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)  # {version, items, at, change}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _message_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ItemError(f"{where} must be a JSON array of messages") from None
    if not isinstance(value, list) or not value:
        raise ItemError(f"{where} must be a non-empty list of {{role, content}} messages")
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or "content" not in message:
            raise ItemError(f"{where}[{i}] must be an object with role and content")
    return value


def item_from_doc(doc: Any) -> DatasetItem:
    """One item from the API, the SDK or an uploaded line: `messages` (or `input`: a text, a message list,
    or `{messages, tools}`), and optionally `system`, `tools`, `expected_output`, `metadata`, `variables`,
    `context` (retrieved chunks), `id`, `source_span_id`."""
    if not isinstance(doc, Mapping):
        raise ItemError("an item must be an object with messages (or input)")
    unknown = sorted(set(doc) - _ITEM_KEYS)
    if unknown:
        raise ItemError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_ITEM_KEYS))}")
    tools = doc.get("tools")
    if "messages" in doc:
        messages = _message_list(doc["messages"], "messages")
    elif isinstance(doc.get("input"), str) and doc["input"].strip():
        messages = [{"role": "user", "content": doc["input"]}]
    elif isinstance(doc.get("input"), list):
        messages = _message_list(doc["input"], "input")
    elif isinstance(doc.get("input"), Mapping) and "messages" in doc["input"]:
        messages = _message_list(doc["input"]["messages"], "input.messages")
        tools = doc["input"].get("tools", tools)
    else:
        raise ItemError("messages (a list of {role, content}) or input (a text) is required")
    system = doc.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise ItemError("system must be a string")
        messages = [{"role": "system", "content": system}, *[m for m in messages if m.get("role") != "system"]]
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except ValueError:
            raise ItemError("tools must be a JSON array") from None
    if tools is not None and not isinstance(tools, list):
        raise ItemError("tools must be a list of tool definitions")
    expected = doc.get("expected_output", doc.get("expected"))
    if expected is not None and not isinstance(expected, str):
        expected = json.dumps(expected, ensure_ascii=False)
    metadata = doc.get("metadata") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            raise ItemError("metadata must be a JSON object") from None
    if not isinstance(metadata, dict):
        raise ItemError("metadata must be an object")
    variables = doc.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise ItemError("variables must be an object")
    context = _context(doc.get("context"))
    item_id = doc.get("id")
    if item_id is not None and (not isinstance(item_id, str) or not item_id or len(item_id) > 100):
        raise ItemError("id must be a string of 1-100 characters")
    source = {"span_id": doc["source_span_id"]} if isinstance(doc.get("source_span_id"), str) else None
    return DatasetItem(
        id=item_id or "it_" + _digest(messages, tools, expected),
        messages=messages,
        tools=tools or None,
        expected_output=expected or None,
        metadata=metadata,
        context=context,
        variables=variables,
        source=source,
    )


def _context(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]  # a CSV cell with the context as plain text
    if not isinstance(value, list):
        raise ItemError("context must be a list of chunks (texts or {content, id})")
    return [{"content": c.content, **({"id": c.id} if c.id else {})} for c in chunks_of(value)]


def item_from_call(
    span: Mapping[str, Any], context: Sequence[Chunk] = (), *, expected_from_output: bool = False
) -> DatasetItem:
    """An item made from a stored LLM call: what it was sent, with the call as its source."""
    messages = span.get("input_messages")
    if not isinstance(messages, list) or not messages:
        prompt = span.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise ItemError(f"call {span.get('span_id')} has no recorded messages or prompt")
        messages = [{"role": "user", "content": prompt}]
    output = span.get("response")
    params = {k: span[k] for k in ("temperature", "max_tokens") if span.get(k) is not None}
    metadata = {
        k: span[k]
        for k in ("feature", "model", "template_id", "template_version", "environment", "user_id")
        if span.get(k)
    }
    variables = span.get("variables") if isinstance(span.get("variables"), dict) else None
    return DatasetItem(
        id="call_" + _digest(span.get("project"), span.get("span_id")),
        messages=list(messages),
        tools=span.get("tools") if isinstance(span.get("tools"), list) else None,
        expected_output=output if expected_from_output and isinstance(output, str) else None,
        metadata=metadata,
        context=[{"content": c.content, **({"id": c.id} if c.id else {})} for c in context],
        variables=variables,
        params=params,
        source={
            "span_id": span.get("span_id"),
            "trace_id": span.get("trace_id"),
            "model": span.get("model"),
            "provider": span.get("provider"),
            "output": output,
            "feature": span.get("feature"),
            "template_id": span.get("template_id"),
            "template_version": span.get("template_version"),
            "request_params": span.get("request_params") if isinstance(span.get("request_params"), dict) else None,
            "metadata": span.get("metadata") if isinstance(span.get("metadata"), dict) else None,
        },
    )


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise DatasetError(
            f"a dataset name is 1-100 letters, digits and _.- (starting with a letter or digit), got {name!r}"
        )
    return name


class DatasetStore:
    """Datasets of every project over the shared settings store."""

    def __init__(self, shared: SharedSettings, *, clock: Any = time.time) -> None:
        self.shared = shared
        self._clock = clock
        self._lock = threading.Lock()  # read-modify-write of one dataset at a time on this server

    def datasets(self, project: str) -> list[Dataset]:
        return [d for s in self.shared.list(DATASET_KIND, project) if (d := _dataset(project, s.value)) is not None]

    def get(self, project: str, name: str) -> Dataset | None:
        found = self.shared.get(project, DATASET_KIND, name)
        return None if found is None else _dataset(project, found.value)

    def items(self, project: str, name: str, version: int | None = None) -> list[DatasetItem]:
        dataset = self.get(project, name)
        if dataset is None:
            raise DatasetError(f"no dataset {name!r} in project {project!r}")
        wanted = dataset.version if version is None else version
        if wanted == 0:
            return []
        found = self.shared.get(project, ITEMS_KIND, f"{name}@{wanted}")
        if found is None:
            raise DatasetError(
                f"dataset {name!r} has no version {wanted} (it has 1-{dataset.version}, older ones pruned)"
            )
        return [DatasetItem.from_dict(i) for i in found.value.get("items", []) if isinstance(i, dict)]

    def create(self, project: str, name: str, description: str = "") -> Dataset:
        check_name(name)
        with self._lock:
            found = self.get(project, name)
            if found is not None:
                if description and description != found.description:
                    found.description = description
                    self._save(found)
                return found
            now = self._clock()
            dataset = Dataset(project, name, description, 0, 0, now, now, [])
            self._save(dataset)
            return dataset

    def add(
        self, project: str, name: str, items: Iterable[DatasetItem], change: str, description: str = ""
    ) -> tuple[Dataset, int]:
        """Add items (an item already there with the same id is replaced); (dataset, items added or changed)."""
        check_name(name)
        with self._lock:
            dataset = self.get(project, name) or Dataset(project, name, description, 0, 0, self._clock(), 0.0, [])
            current = {i.id: i for i in (self._items_unlocked(project, dataset))}
            changed = 0
            for item in items:
                previous = current.get(item.id)
                if previous is None or previous.to_dict() != item.to_dict():
                    current[item.id] = item
                    changed += 1
            if len(current) > MAX_ITEMS:
                raise DatasetError(f"dataset {name!r} would hold {len(current)} items, over the {MAX_ITEMS} limit")
            if changed or dataset.version == 0:
                self._new_version(dataset, list(current.values()), f"{change}: {changed} item(s)")
            return dataset, changed

    def remove(self, project: str, name: str, item_ids: Sequence[str]) -> tuple[Dataset, int]:
        with self._lock:
            dataset = self.get(project, name)
            if dataset is None:
                raise DatasetError(f"no dataset {name!r} in project {project!r}")
            items = self._items_unlocked(project, dataset)
            kept = [i for i in items if i.id not in set(item_ids)]
            removed = len(items) - len(kept)
            if removed:
                self._new_version(dataset, kept, f"removed {removed} item(s)")
            return dataset, removed

    def delete(self, project: str, name: str) -> bool:
        with self._lock:
            dataset = self.get(project, name)
            if dataset is None:
                return False
            for entry in dataset.history:
                self.shared.delete(project, ITEMS_KIND, f"{name}@{entry['version']}")
            return self.shared.delete(project, DATASET_KIND, name)

    def _items_unlocked(self, project: str, dataset: Dataset) -> list[DatasetItem]:
        if dataset.version == 0:
            return []
        found = self.shared.get(project, ITEMS_KIND, f"{dataset.name}@{dataset.version}")
        return [
            DatasetItem.from_dict(i) for i in (found.value.get("items", []) if found else []) if isinstance(i, dict)
        ]

    def _new_version(self, dataset: Dataset, items: list[DatasetItem], change: str) -> None:
        dataset.version += 1
        dataset.items = len(items)
        dataset.updated_at = self._clock()
        dataset.history.append(
            {"version": dataset.version, "items": len(items), "at": dataset.updated_at, "change": change}
        )
        self.shared.put(
            dataset.project, ITEMS_KIND, f"{dataset.name}@{dataset.version}", {"items": [i.to_dict() for i in items]}
        )
        while len(dataset.history) > MAX_VERSIONS_KEPT:
            old = dataset.history.pop(0)
            self.shared.delete(dataset.project, ITEMS_KIND, f"{dataset.name}@{old['version']}")
        self._save(dataset)

    def _save(self, dataset: Dataset) -> None:
        doc = dataset.to_dict()
        doc.pop("project")
        self.shared.put(dataset.project, DATASET_KIND, dataset.name, doc)


def _dataset(project: str, value: Any) -> Dataset | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        return None
    known = set(Dataset.__dataclass_fields__) - {"project"}
    return Dataset(project=project, **{k: v for k, v in value.items() if k in known})
