"""Assemble OTLP traces that arrive in pieces: inherited context, late log content, duplicate calls.

OTLP exporters send spans as they end, so children usually arrive before their parent and one trace
may span several requests; the OTel GenAI instrumentations send message content as log records on a
separate connection. `TraceAssembler` sits in front of the ingest pipeline for OTLP batches:

* Context inheritance: user, session, feature, environment and metadata (and, on LLM spans, the
  prompt template) set on an ancestor apply to the spans beneath it, whichever arrives first. Spans
  arriving after an ancestor are filled before they are stored; when an ancestor arrives later, its
  stored descendants are updated (`Store.update_span_fields`). A span's own values always win.
* Log content: GenAI log records fill the empty content fields of their span, whether they come
  before it (kept for `log_ttl_s` in a bounded buffer), in the same batch, or after it was stored.
* Double instrumentation: see `_duplicates`.
* Message ids: an LLM span without one gets the provider response id (`gen_ai.response.id`), else
  its span id, so feedback can point at it.

What it knows of recent traces lives in memory bounded in bytes (`max_bytes`, the
`trace_context_memory_mb` setting, estimated as spans are added) and in count (`max_traces`), so the
usual case (the root arrives last, in the same or the next batch) costs no store read. Past a bound the
least recently touched trace of the project holding the most memory is dropped and counted
(`evicted_traces`): a flood from one project drops its own traces before another's. A dropped trace, or
one that began shortly before this process started, is read back from the store once when more of it
arrives (within a read budget).

Projects never meet: a trace is identified by (project, trace_id) and buffered content by
(project, trace_id, span_id), with the caller's project forced on spans and content before either is
looked up (`IngestPipeline.confine`). Two projects sending the same ids (by accident, or one
guessing the other's) get two separate traces: no context, content, duplicate or update crosses.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

from llmlens.codec.otlp import LogContent, merge_log_content
from llmlens.model import Span, SpanKind, now_us
from llmlens.store import Store, current_project

from ._duplicates import CALL_KINDS, CallSignature, call_distance, demote, information_score, merge_into_kept, same_call
from ._pipeline import IngestPipeline

__all__ = ["CONTENT_FIELDS", "CONTEXT_FIELDS", "TEMPLATE_FIELDS", "SpanUpdates", "TraceAssembler"]

CONTEXT_FIELDS = ("user_id", "session_id", "feature", "environment")
TEMPLATE_FIELDS = ("template_id", "template_version", "variables")
CONTENT_FIELDS = ("input_messages", "output_messages", "tool_calls", "prompt", "response", "finish_reason")
_RESPONSE_ID_KEYS = ("gen_ai.response.id", "llm.response.id")
_MAX_DEPTH = 256
# Traces begun this long before the process started may have spans stored by the previous one.
_RESTART_WINDOW_US = 10 * 60 * 1_000_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# What memory is held, estimated without walking objects (this runs for every span): fixed costs per
# remembered span, call signature, trace, context dict and dropped trace's key, fitted with tracemalloc
# on CPython 3.11 (64-bit) over traces of 1 to 20 spans with and without context; strings on top.
_NODE_BYTES = 70
_CALL_BYTES = 160
_TRACE_BYTES = 470
_DICT_BYTES = 100
_ENTRY_BYTES = 40  # one dict entry, amortised
_EVICTED_KEY_BYTES = 170
_STR_BYTES = 49  # a str object's header; its characters on top
# Shares of `max_bytes` that log content waiting for its span, and the keys of dropped traces, may take.
_LOG_SHARE = 4
_EVICTED_SHARE = 16
# Context strings shared between spans (one copy of each user, session, feature, metadata value): a
# table of at most a sixteenth of the bound, emptied when full; an entry with its string, estimated.
_SHARED_SHARE = 16
_SHARED_ENTRY_BYTES = 120

# project -> span_id -> column -> new value
SpanUpdates = dict[str, dict[str, dict[str, Any]]]
# (project, trace_id): the same trace id in two projects is two traces.
_TraceKey = tuple[str, str]
# (project, trace_id, span_id) of log content waiting for its span.
_SpanKey = tuple[str, str, str]


@dataclass(slots=True)
class _Node:
    parent: str | None
    kind: str
    # Context fields the span itself carried (metadata under "metadata").
    own: dict[str, Any]
    # Context fields as stored (own plus inherited, filtered by kind).
    applied: dict[str, Any]
    # Content fields that are not empty in the store.
    content: frozenset[str]
    call: CallSignature | None = None
    size: int = 0  # estimated bytes held for this span


@dataclass(slots=True)
class _Trace:
    project: str
    nodes: dict[str, _Node] = field(default_factory=dict)
    size: int = 0  # estimated bytes, its nodes included


_LLM = SpanKind.LLM.value
# Longer metadata values are seldom repeated: not worth an entry in the shared strings.
_SHARED_CHARS = 64
# A context nobody has set yet; shared, and like every context dict here never changed in place.
_NOTHING: dict[str, Any] = {}
# Several fields of a span read in one C call (these run for every span of every batch).
_OWN_NAMES = (*CONTEXT_FIELDS, *TEMPLATE_FIELDS)
_own_values = attrgetter(*_OWN_NAMES)
_content_values = attrgetter(*CONTENT_FIELDS)


def _own_context(span: Span, shared: dict[str, str]) -> dict[str, Any]:
    # Users, sessions, features and metadata repeat across spans: one copy of each string is kept
    # (`shared` maps a string to its first copy; a private table, so it stays within the bound).
    share = shared.setdefault
    own: dict[str, Any] = {
        name: share(value, value) if type(value) is str else value
        for name, value in zip(_OWN_NAMES, _own_values(span), strict=True)
        if value is not None
    }
    if span.metadata:
        own["metadata"] = {
            (share(k, k) if type(k) is str else k): share(v, v) if type(v) is str and len(v) <= _SHARED_CHARS else v
            for k, v in span.metadata.items()
        }
    return own if own else _NOTHING


def _applied(effective: dict[str, Any], kind: str) -> dict[str, Any]:
    # Context dicts are never changed in place once made, so spans share them where they can.
    if kind == _LLM or effective.keys().isdisjoint(TEMPLATE_FIELDS):
        return effective
    return {k: v for k, v in effective.items() if k not in TEMPLATE_FIELDS}


# Every distinct set of filled content fields, made once: a frozenset per remembered span was ~200 bytes.
_CONTENT_SETS: dict[tuple[bool, ...], frozenset[str]] = {}


def _content_set(filled: tuple[bool, ...]) -> frozenset[str]:
    found = _CONTENT_SETS.get(filled)
    if found is None:
        found = _CONTENT_SETS[filled] = frozenset(n for n, f in zip(CONTENT_FIELDS, filled, strict=True) if f)
    return found


def _content_of(span: Span) -> frozenset[str]:
    return _content_set(tuple([value is not None for value in _content_values(span)]))


def _content_named(names: Iterable[str]) -> frozenset[str]:
    named = set(names)
    return _content_set(tuple([name in named for name in CONTENT_FIELDS]))


def _value_bytes(value: Any) -> int:
    """A quick estimate of what a context value holds: strings by length, one level of a dict or list."""
    if isinstance(value, str):
        return _STR_BYTES + len(value)
    if isinstance(value, dict):
        return _DICT_BYTES + sum(
            _ENTRY_BYTES + (_STR_BYTES + len(v) if isinstance(v, str) else 32) for v in value.values()
        )
    if isinstance(value, list | tuple):
        return 56 + sum(8 + (_STR_BYTES + len(v) if isinstance(v, str) else 64) for v in value)
    return 32


def _node_bytes(span_id: str, node: _Node) -> int:
    size = _NODE_BYTES + _STR_BYTES + len(span_id)
    if node.parent is not None:
        size += _STR_BYTES + len(node.parent)
    if node.call is not None:
        size += _CALL_BYTES
    own = node.own
    if own:
        size += _DICT_BYTES
        for value in own.values():
            size += _ENTRY_BYTES + (_STR_BYTES + len(value) if type(value) is str else _value_bytes(value))
        if node.parent is not None:  # its context merged over its ancestors': one more dict
            size += _DICT_BYTES + _ENTRY_BYTES * (len(own) + 2)
    return size


def _log_bytes(content: LogContent) -> int:
    size = 400 + len(content.trace_id) + len(content.span_id) + len(content.project)
    for name in CONTENT_FIELDS:
        value = getattr(content, name)
        if value is not None:
            size += _deep_bytes(value, 8)
    return size


def _deep_bytes(value: Any, depth: int) -> int:
    """Log content (messages, tool calls) can be large and nested: walk it, to a depth."""
    if isinstance(value, str):
        return _STR_BYTES + len(value)
    if depth <= 0:
        return 64
    if isinstance(value, dict):
        return 64 + sum(_ENTRY_BYTES + _deep_bytes(k, 0) + _deep_bytes(v, depth - 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 56 + sum(8 + _deep_bytes(v, depth - 1) for v in value)
    return 32


def _add_update(updates: SpanUpdates, project: str, span_id: str, fields: dict[str, Any]) -> None:
    if fields:
        updates.setdefault(project, {}).setdefault(span_id, {}).update(fields)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


class TraceAssembler:
    """Puts OTLP spans and log content through inheritance, merging and dedupe, then the pipeline."""

    def __init__(
        self,
        pipeline: IngestPipeline,
        store: Store,
        *,
        max_traces: int = 20_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_spans_per_trace: int = 2_000,
        log_ttl_s: float = 600.0,
        max_buffered_logs: int = 50_000,
        max_store_reads_per_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        started_us: int | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.max_traces = max_traces
        self.max_bytes = max_bytes
        self.max_spans_per_trace = max_spans_per_trace
        self.log_ttl_s = log_ttl_s
        self.max_buffered_logs = max_buffered_logs
        self.max_store_reads_per_s = max_store_reads_per_s
        self._clock = clock
        self._read_tokens = max_store_reads_per_s
        self._read_at = clock()
        self._started_us = now_us() if started_us is None else started_us
        self._lock = threading.Lock()
        # project -> trace_id -> trace, least recently touched first; and each project's estimated bytes.
        self._traces: dict[str, OrderedDict[str, _Trace]] = {}
        self._project_bytes: dict[str, int] = {}
        self._trace_count = 0
        self._trace_bytes = 0
        self._evicted: OrderedDict[_TraceKey, None] = OrderedDict()
        self._evicted_bytes = 0
        # (content, received at, estimated bytes)
        self._logs: OrderedDict[_SpanKey, tuple[LogContent, float, int]] = OrderedDict()
        self._log_bytes = 0
        self._shared: dict[str, str] = {}
        self._max_shared = max(256, max_bytes // _SHARED_SHARE // _SHARED_ENTRY_BYTES)
        self.store_reads = 0  # traces read back from the store (for tests and metrics)
        self.evicted_traces = 0  # traces dropped from memory at a bound (they may be read back)
        self.dropped_log_content = 0  # buffered log content dropped at a bound before its span came

    # -- entry points -----------------------------------------------------------------------------

    async def ingest_spans(self, spans: list[Span], *, transformed: bool = False) -> int:
        """Assemble, price and commit `spans`, then update stored spans; returns the rows updated.

        `transformed`: the spans went through the pipeline's transforms already (a decode worker).
        Raises `Backpressure` (nothing was queued) like `IngestPipeline.ingest`.
        """
        future, updates = await asyncio.to_thread(self.submit_spans, spans, transformed=transformed)
        await asyncio.wrap_future(future)
        if not updates:
            return 0
        return await asyncio.to_thread(self.apply_updates, updates)

    async def ingest_log_content(self, contents: list[LogContent]) -> int:
        """Attach log content to its spans (now, or when they arrive); returns stored rows updated."""
        future, updates = await asyncio.to_thread(self.submit_log_content, contents)
        if not updates:
            return 0
        await asyncio.wrap_future(future)
        return await asyncio.to_thread(self.apply_updates, updates)

    def submit_spans(self, spans: list[Span], *, transformed: bool = False) -> tuple[Future[None], SpanUpdates]:
        """Assemble and queue for commit under one lock, so batches commit in the order they were seen.

        The updates touch spans queued earlier: apply them once the returned future is done.
        """
        if not spans:
            return _done(), {}
        # The project must be the caller's before any lookup: assembly is keyed by it.
        self.pipeline.confine(spans)
        with self._lock:
            gained_content: list[Span] = []
            updates = self.assemble(spans, gained_content)
            # Content merged from log records has not been through the (idempotent) transforms yet.
            self.pipeline.prepare(spans, transformed=transformed, untransformed=gained_content)
            future = self.pipeline.writer.submit(spans, [])
        return future, updates

    def submit_log_content(self, contents: list[LogContent]) -> tuple[Future[None], SpanUpdates]:
        """Buffer content whose span is unknown; the returned future is done when its spans are committed."""
        contents = _confined(contents)
        with self._lock:
            updates = self._attach_logs(contents)
            # An empty write is a barrier: the writer commits in order, so every span seen so far is stored.
            future = self.pipeline.writer.submit([], []) if updates else _done()
        return future, updates

    def apply_updates(self, updates: SpanUpdates) -> int:
        """Write late values to stored spans, after the pipeline's transforms (redaction, truncation)."""
        transforms = self.pipeline.transforms
        total = 0
        for project, by_id in updates.items():
            if transforms:
                by_id = {
                    span_id: _transformed(project, span_id, fields, transforms) for span_id, fields in by_id.items()
                }
            total += self.store.update_span_fields(project, by_id)
        return total

    @property
    def buffered_log_count(self) -> int:
        return len(self._logs)

    @property
    def traces_held(self) -> int:
        return self._trace_count

    @property
    def bytes_held(self) -> int:
        """Estimated bytes of everything remembered: traces, buffered log content, dropped traces' keys."""
        return self._trace_bytes + self._log_bytes + self._evicted_bytes + len(self._shared) * _SHARED_ENTRY_BYTES

    # -- spans ------------------------------------------------------------------------------------

    def assemble(self, spans: Sequence[Span], gained_content: list[Span] | None = None) -> SpanUpdates:
        """Fill, merge and dedupe `spans` in place; return the updates owed to spans stored before.

        Spans that took content from buffered log records are appended to `gained_content`.
        """
        updates: SpanUpdates = {}
        self._expire_logs()
        if len(self._shared) > self._max_shared:
            self._shared.clear()
        by_trace: dict[_TraceKey, list[Span]] = {}
        for span in spans:
            by_trace.setdefault((span.project, span.trace_id), []).append(span)
        for key, group in by_trace.items():
            trace = self._trace(key, group)
            self._merge_buffered_logs(group, gained_content)
            self._add_nodes(trace, group)
            self._dedupe(trace, group)
            self._inherit(trace, group, updates)
        for span in spans:
            if span.kind == _LLM and span.message_id is None:
                response_id = next((span.attributes[k] for k in _RESPONSE_ID_KEYS if k in span.attributes), None)
                span.message_id = str(response_id) if response_id else span.span_id
        self._shrink()
        return updates

    def _trace(self, key: _TraceKey, group: list[Span]) -> _Trace:
        project, trace_id = key
        held = self._traces.get(project)
        if held is None:
            held = self._traces[project] = OrderedDict()
            self._project_bytes[project] = 0
        trace = held.get(trace_id)
        if trace is not None:
            held.move_to_end(trace_id)
            return trace
        trace = _Trace(project=project)
        held[trace_id] = trace
        self._trace_count += 1
        self._grow(trace, _TRACE_BYTES)
        if self._worth_reading(key, group):
            self._load(trace, trace_id)
        return trace

    def _grow(self, trace: _Trace, size: int) -> None:
        """Account `size` more (or fewer) bytes to a trace, its project and the total."""
        trace.size += size
        self._project_bytes[trace.project] += size
        self._trace_bytes += size

    def _shrink(self) -> None:
        """Drop least recently touched traces, from the project holding the most, until within bounds."""
        shared = len(self._shared) * _SHARED_ENTRY_BYTES
        budget = self.max_bytes - self._log_bytes - self._evicted_bytes - shared
        while self._trace_count and (self._trace_bytes > budget or self._trace_count > self.max_traces):
            project = max(self._project_bytes, key=self._project_bytes.__getitem__)
            held = self._traces[project]
            trace_id, trace = held.popitem(last=False)
            if not held:
                del self._traces[project], self._project_bytes[project]
            else:
                self._project_bytes[project] -= trace.size
            self._trace_count -= 1
            self._trace_bytes -= trace.size
            self.evicted_traces += 1
            self._remember_evicted((project, trace_id))
            budget = self.max_bytes - self._log_bytes - self._evicted_bytes - shared

    def _remember_evicted(self, key: _TraceKey) -> None:
        """Dropped traces are read back from the store when more of them arrives: remember which, within
        a share of the budget (past it, a late span of the oldest dropped trace starts from what it carries)."""
        if key in self._evicted:
            self._evicted.move_to_end(key)
            return
        self._evicted[key] = None
        self._evicted_bytes += _EVICTED_KEY_BYTES + len(key[0]) + len(key[1])
        limit = max(self.max_bytes // _EVICTED_SHARE, _EVICTED_KEY_BYTES)
        while self._evicted_bytes > limit or len(self._evicted) > self.max_traces:
            (project, trace_id), _ = self._evicted.popitem(last=False)
            self._evicted_bytes -= _EVICTED_KEY_BYTES + len(project) + len(trace_id)

    def _worth_reading(self, key: _TraceKey, group: list[Span]) -> bool:
        """An evicted trace, or one begun shortly before this process started, may have stored spans.

        Reads are budgeted (`max_store_reads_per_s`): a read scans the trace's rows, and a burst of
        late spans after a restart must not stall ingest. Past the budget a trace is treated as new.
        """
        if key not in self._evicted:
            first = min(s.start_us for s in group)
            if not self._started_us - _RESTART_WINDOW_US <= first < self._started_us:
                return False
        now = self._clock()
        self._read_tokens = min(
            self.max_store_reads_per_s, self._read_tokens + (now - self._read_at) * self.max_store_reads_per_s
        )
        self._read_at = now
        if self._read_tokens < 1:
            return False
        self._read_tokens -= 1
        return True

    def _load(self, trace: _Trace, trace_id: str) -> None:
        """Read back what the store has of a trace this process no longer (or never) remembered."""
        self.store_reads += 1
        columns = ("span_id", "parent_span_id", "kind", *CONTEXT_FIELDS, *TEMPLATE_FIELDS, "metadata", *CONTENT_FIELDS)
        result = self.store.query(
            f"SELECT {', '.join(columns)} FROM store.spans WHERE project = ? AND trace_id = ? LIMIT ?",
            [trace.project, trace_id, self.max_spans_per_trace],
        )
        for row in result.rows:
            values = dict(zip(columns, row, strict=True))
            own = {k: values[k] for k in (*CONTEXT_FIELDS, *TEMPLATE_FIELDS) if values[k] is not None}
            if own.get("variables") is not None:
                own["variables"] = _json(own["variables"])
            metadata = _json(values["metadata"])
            if isinstance(metadata, dict) and metadata:
                own["metadata"] = metadata
            content = _content_named(k for k in CONTENT_FIELDS if values[k] is not None)
            node = _Node(
                parent=values["parent_span_id"],
                kind=str(values["kind"]),
                own=own,
                applied=own,
                content=content,
            )
            self._put_node(trace, str(values["span_id"]), node)

    def _add_nodes(self, trace: _Trace, group: list[Span]) -> None:
        for span in group:
            node = trace.nodes.get(span.span_id)
            if node is None and len(trace.nodes) >= self.max_spans_per_trace:
                continue
            new = _Node(
                parent=span.parent_span_id,
                kind=span.kind,
                own=_own_context(span, self._shared),
                applied=_NOTHING,
                content=_content_of(span),
                call=CallSignature.of(span) if span.kind in CALL_KINDS else None,
            )
            new.size = size = _node_bytes(span.span_id, new)
            trace.nodes[span.span_id] = new
            self._grow(trace, size if node is None else size - node.size)

    def _put_node(self, trace: _Trace, span_id: str, node: _Node) -> None:
        node.size = _node_bytes(span_id, node)
        old = trace.nodes.get(span_id)
        trace.nodes[span_id] = node
        self._grow(trace, node.size - (old.size if old is not None else 0))

    def _is_ancestor(self, trace: _Trace, ancestor: str, span_id: str) -> bool:
        node = trace.nodes.get(span_id)
        for _ in range(_MAX_DEPTH):
            if node is None or node.parent is None:
                return False
            if node.parent == ancestor:
                return True
            node = trace.nodes.get(node.parent)
        return False

    def _dedupe(self, trace: _Trace, group: list[Span]) -> None:
        in_batch = {s.span_id: s for s in group}
        for span in group:
            node = trace.nodes.get(span.span_id)
            if node is None or node.call is None or node.call.duplicate_of is not None:
                continue
            call = node.call
            # Nearest records first: parallel calls recorded twice pair up with their own records.
            for other_id, other in sorted(trace.nodes.items(), key=lambda item: call_distance(call, item[1].call)):
                if other_id == span.span_id or other.call is None:
                    continue
                span_is_inner = self._is_ancestor(trace, other_id, span.span_id)
                span_is_outer = not span_is_inner and self._is_ancestor(trace, span.span_id, other_id)
                # An ancestor's parent is an ancestor of its descendant too: such a pair is not side by side.
                siblings = not (span_is_inner or span_is_outer) and self._beside(
                    trace, span.span_id, node, other_id, other
                )
                if not (siblings or span_is_inner or span_is_outer):
                    continue
                if not same_call(node.call, other.call, siblings=siblings):
                    continue
                other_span = in_batch.get(other_id)
                if other_span is None:  # the other one is already stored: the newcomer yields
                    self._mark_duplicate(node, span, other_id, None)
                    other.call.took(node.call)
                    break
                if self._keeps_first(span, other_span, span_is_inner, span_is_outer):
                    self._mark_duplicate(other, other_span, span.span_id, span)
                    node.call.took(other.call, span)
                else:
                    self._mark_duplicate(node, span, other_id, other_span)
                    other.call.took(node.call, other_span)
                    break

    def _beside(self, trace: _Trace, a_id: str, a: _Node, b_id: str, b: _Node) -> bool:
        """Same parent, or the parent of one is an ancestor of the other (an instrumentor that does
        not make its span current: the SDK's span then hangs off an outer span)."""
        if a.parent is None or b.parent is None:
            return False
        return (
            a.parent == b.parent or self._is_ancestor(trace, a.parent, b_id) or self._is_ancestor(trace, b.parent, a_id)
        )

    @staticmethod
    def _keeps_first(a: Span, b: Span, a_is_inner: bool, a_is_outer: bool) -> bool:
        """More of the call's data wins; then the outer span; then the earlier start."""
        score_a, score_b = information_score(a), information_score(b)
        if score_a != score_b:
            return score_a > score_b
        if a_is_inner or a_is_outer:
            return a_is_outer
        return (a.start_us, a.span_id) <= (b.start_us, b.span_id)

    @staticmethod
    def _mark_duplicate(node: _Node, span: Span, kept_id: str, kept: Span | None) -> None:
        if kept is not None:
            merge_into_kept(kept, span)
        demote(span, kept_id)
        node.kind = span.kind
        if node.call is not None:
            node.call.duplicate_of = kept_id

    def _inherit(self, trace: _Trace, group: list[Span], updates: SpanUpdates) -> None:
        memo: dict[str, dict[str, Any]] = {}
        gives_context = False
        for span in group:
            node = trace.nodes.get(span.span_id)
            own = node.own if node is not None else _own_context(span, self._shared)
            gives_context = gives_context or bool(own)
            effective = self._effective(trace, span.span_id, memo) if node is not None else own
            if node is None and span.parent_span_id is not None:
                effective = self._merged(self._effective(trace, span.parent_span_id, memo), own)
            applied = _applied(effective, span.kind)
            for name, value in applied.items():
                if name == "metadata":
                    span.metadata = dict(value)
                elif getattr(span, name) is None:
                    setattr(span, name, value)
            if node is not None:
                node.applied = applied
        if not gives_context:
            return
        in_batch = {s.span_id for s in group}
        for span_id, node in trace.nodes.items():
            if span_id in in_batch:
                continue
            applied = _applied(self._effective(trace, span_id, memo), node.kind)
            if applied != node.applied:
                changed = {k: v for k, v in applied.items() if node.applied.get(k) != v}
                _add_update(updates, trace.project, span_id, changed)
                node.applied = applied

    def _effective(self, trace: _Trace, span_id: str, memo: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Own context over the nearest ancestors', up to the root (or the first unknown parent)."""
        chain: list[str] = []
        current: str | None = span_id
        while current is not None and current not in memo and current in trace.nodes and len(chain) < _MAX_DEPTH:
            if current in chain:  # a cycle in bad data: stop here
                break
            chain.append(current)
            current = trace.nodes[current].parent
        base = memo.get(current, {}) if current is not None else {}
        for sid in reversed(chain):
            base = self._merged(base, trace.nodes[sid].own)
            memo[sid] = base
        return memo.get(span_id, base)

    @staticmethod
    def _merged(inherited: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
        if not inherited:
            return own
        if not own:
            return inherited
        out = dict(inherited)
        for name, value in own.items():
            if name == "metadata" and isinstance(inherited.get("metadata"), dict):
                out["metadata"] = {**inherited["metadata"], **value}
            else:
                out[name] = value
        return out

    # -- logs -------------------------------------------------------------------------------------

    def _attach_logs(self, contents: Iterable[LogContent]) -> SpanUpdates:
        updates: SpanUpdates = {}
        self._expire_logs()
        now = self._clock()
        for content in contents:
            held = self._traces.get(content.project)
            trace = held.get(content.trace_id) if held is not None else None
            node = trace.nodes.get(content.span_id) if trace is not None else None
            if node is None:
                key = (content.project, content.trace_id, content.span_id)
                previous = self._pop_log(key)
                combined = _combined(previous[0], content) if previous else content
                size = _log_bytes(combined)
                self._logs[key] = (combined, now, size)
                self._log_bytes += size
                continue
            fill = {
                name: getattr(content, name)
                for name in CONTENT_FIELDS
                if name not in node.content and getattr(content, name) is not None
            }
            if fill:
                node.content = _content_named([*node.content, *fill])
                _add_update(updates, content.project, content.span_id, fill)
        # Content waiting for its span may take a share of the memory budget; the oldest goes first.
        log_budget = self.max_bytes // _LOG_SHARE
        while self._logs and (len(self._logs) > self.max_buffered_logs or self._log_bytes > log_budget):
            _, (_, _, size) = self._logs.popitem(last=False)
            self._log_bytes -= size
            self.dropped_log_content += 1
        self._shrink()
        return updates

    def _pop_log(self, key: _SpanKey) -> tuple[LogContent, float, int] | None:
        found = self._logs.pop(key, None)
        if found is not None:
            self._log_bytes -= found[2]
        return found

    def _merge_buffered_logs(self, group: list[Span], gained_content: list[Span] | None) -> None:
        if not self._logs:
            return
        for span in group:
            found = self._pop_log((span.project, span.trace_id, span.span_id))
            if found is not None:
                merge_log_content(span, found[0])
                if gained_content is not None:
                    gained_content.append(span)

    def _expire_logs(self) -> None:
        if not self._logs:
            return
        limit = self._clock() - self.log_ttl_s
        while self._logs:
            _, (_, received, _) = next(iter(self._logs.items()))
            if received >= limit:
                break
            _, (_, _, size) = self._logs.popitem(last=False)
            self._log_bytes -= size


def _combined(first: LogContent, second: LogContent) -> LogContent:
    scratch = Span(trace_id=first.trace_id, span_id=first.span_id)
    merge_log_content(scratch, first)
    merge_log_content(scratch, second)
    return LogContent(
        trace_id=first.trace_id,
        span_id=first.span_id,
        project=first.project,
        **{name: getattr(scratch, name) for name in CONTENT_FIELDS},
    )


def _confined(contents: Iterable[LogContent]) -> list[LogContent]:
    """Within a request confined to one project, the content belongs to it (as `IngestPipeline.confine`)."""
    project = current_project.get()
    if project is None:
        return list(contents)
    return [c if c.project == project else replace(c, project=project) for c in contents]


def _transformed(
    project: str, span_id: str, fields: dict[str, Any], transforms: Sequence[Callable[[Span], None]]
) -> dict[str, Any]:
    scratch = Span(trace_id="", span_id=span_id, project=project)
    for name, value in fields.items():
        setattr(scratch, name, dict(value) if isinstance(value, dict) else value)
    for transform in transforms:
        transform(scratch)
    return {name: getattr(scratch, name) for name in fields}


def _done() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future
