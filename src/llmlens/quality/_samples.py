"""What an evaluator judges: one call's question, answer, system prompt, retrieved chunks and reference.

Built from a stored span (online rules), or from an experiment's output and its dataset item. The trace
around a call gives it context: the retrieval spans before an LLM call are the chunks its answer should
rest on, and the LLM call after a retrieval span is the answer those chunks were fetched for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmlens.replay.calls import read_spans
from llmlens.replay.scorers import answer_text
from llmlens.store import Store

from ._inference import user_message

# A judge prompt carries at most this many chunks, each cut to this many characters.
MAX_CHUNKS = 20
MAX_CHUNK_CHARS = 4_000


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrieved document as the judge sees it."""

    content: str
    id: str | None = None
    score: float | None = None  # the retriever's own score, when it gave one


@dataclass(slots=True)
class EvalSample:
    """One call to judge. `span` is the stored row (or the experiment output's columns)."""

    project: str
    kind: str  # llm | retrieval
    span_id: str | None
    trace_id: str | None
    message_id: str | None
    question: str | None  # the last user message, or a retrieval's query
    answer: str | None  # the response text (tool calls as JSON without text)
    system_prompt: str | None = None
    context: list[Chunk] = field(default_factory=list)
    reference: str | None = None  # the expected answer (a dataset item's, or metadata.expected_output)
    model: str | None = None
    span: Mapping[str, Any] = field(default_factory=dict)


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") if isinstance(p, dict) else p for p in content]
        joined = "\n".join(t for t in texts if isinstance(t, str))
        return joined or None
    return None


def _messages(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []


def system_prompt_of(messages: Any) -> str | None:
    for message in _messages(messages):
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            return _text(message.get("content"))
    return None


def chunks_of(documents: Any) -> list[Chunk]:
    """A retrieval span's documents (`[{id, content, score}]`, or plain strings) as chunks."""
    docs = _messages(documents)
    out: list[Chunk] = []
    for doc in docs[:MAX_CHUNKS]:
        if isinstance(doc, str):
            out.append(Chunk(doc[:MAX_CHUNK_CHARS]))
        elif isinstance(doc, dict):
            content = doc.get("content") if doc.get("content") is not None else doc.get("text")
            if content is None:
                continue
            text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
            score = doc.get("score")
            out.append(
                Chunk(
                    text[:MAX_CHUNK_CHARS],
                    str(doc["id"]) if doc.get("id") is not None else None,
                    float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
                )
            )
    return out


def _reference(metadata: Any) -> str | None:
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    if isinstance(metadata, dict):
        for key in ("expected_output", "reference"):
            if isinstance(metadata.get(key), str):
                return str(metadata[key])
    return None


def sample_from_span(span: Mapping[str, Any], context: Sequence[Chunk] = ()) -> EvalSample:
    """The sample of a stored LLM or retrieval span (its JSON columns parsed, as `read_spans` gives them)."""
    kind = str(span.get("kind") or "llm")
    if kind == "retrieval":
        question = span.get("retrieval_query")
        return EvalSample(
            project=str(span.get("project") or "default"),
            kind=kind,
            span_id=span.get("span_id"),
            trace_id=span.get("trace_id"),
            message_id=span.get("message_id"),
            question=question if isinstance(question, str) else None,
            answer=None,
            context=chunks_of(span.get("documents")),
            span=span,
        )
    question, _ = user_message(span.get("input_messages"), span.get("prompt"))
    return EvalSample(
        project=str(span.get("project") or "default"),
        kind=kind,
        span_id=span.get("span_id"),
        trace_id=span.get("trace_id"),
        message_id=span.get("message_id"),
        question=question,
        answer=answer_text(span.get("response"), span.get("tool_calls")),
        system_prompt=system_prompt_of(span.get("input_messages")),
        context=list(context),
        reference=_reference(span.get("metadata")),
        model=span.get("model"),
        span=span,
    )


def _seconds(value: Any) -> float:
    if hasattr(value, "timestamp"):
        import datetime as dt

        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return float(aware.timestamp())
    return float(value or 0.0)


def trace_spans(store: Store, project: str, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The retrieval and LLM spans of each trace, in time order (for context and following answers)."""
    out: dict[str, list[dict[str, Any]]] = {}
    ids = list(dict.fromkeys(t for t in trace_ids if t))
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        marks = ", ".join("?" for _ in chunk)
        rows = read_spans(
            store,
            f"project = ? AND trace_id IN ({marks}) AND kind IN ('llm', 'retrieval') AND replay_of IS NULL",
            [project, *chunk],
        )
        for row in rows:
            out.setdefault(str(row["trace_id"]), []).append(row)
    return out


def context_before(call: Mapping[str, Any], trace: Sequence[Mapping[str, Any]]) -> list[Chunk]:
    """The chunks of the retrievals in the call's trace that started before it: what it was given to read."""
    start = _seconds(call.get("timestamp"))
    chunks: list[Chunk] = []
    for span in trace:
        if span.get("kind") == "retrieval" and _seconds(span.get("timestamp")) <= start:
            chunks.extend(chunks_of(span.get("documents")))
    return chunks[:MAX_CHUNKS]


def answer_after(retrieval: Mapping[str, Any], trace: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first LLM call of the trace that started at or after the retrieval: the answer its chunks fed."""
    start = _seconds(retrieval.get("timestamp"))
    calls = [s for s in trace if s.get("kind") == "llm" and _seconds(s.get("timestamp")) >= start]
    return min(calls, key=lambda s: _seconds(s.get("timestamp")), default=None)
