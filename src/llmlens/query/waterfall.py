"""One trace as a span waterfall: spans in tree order with their offsets, a time axis, and the trace's header."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store

from ._call_feedback import SpanFeedback, feedback_on_spans
from ._common import num
from ._id_lookup import spans_by_id

# Round steps of the time axis, in ms: 1, 2, 5 per decade.
_STEP_FACTORS = (1.0, 2.0, 5.0)
_MAX_TICKS = 6


@dataclass(slots=True)
class WaterfallSpan:
    span: dict[str, Any]  # every stored column, JSON parsed
    depth: int
    offset_pct: float
    width_pct: float
    label: str = ""  # what the waterfall row shows; the full text is its tooltip
    simulated: bool = False  # answered by the demo's stand-in provider


@dataclass(slots=True)
class AxisTick:
    offset_ms: float
    offset_pct: float


@dataclass(slots=True)
class TraceDetail:
    trace_id: str
    start: dt.datetime
    duration_ms: float
    cost_usd: float | None
    total_tokens: int
    session_id: str | None
    user_id: str | None
    spans: list[WaterfallSpan]
    feedback: list[dict[str, Any]]
    status: str = "unset"  # error when any span failed, else the root's
    error_types: list[str] = field(default_factory=list)
    feature: str | None = None
    models: list[str] = field(default_factory=list)
    name: str | None = None  # of the root span
    axis: list[AxisTick] = field(default_factory=list)


def axis_ticks(duration_ms: float) -> list[AxisTick]:
    """Ticks at round offsets (0, 50 ms, 100 ms, ... or 0, 2 s, 4 s, ...) across [0, duration]."""
    if duration_ms <= 0 or not math.isfinite(duration_ms):
        return [AxisTick(0.0, 0.0)]
    raw = duration_ms / (_MAX_TICKS - 1)
    decade = 10 ** math.floor(math.log10(raw))
    step = next((f * decade for f in _STEP_FACTORS if f * decade >= raw), 10 * decade)
    ticks: list[AxisTick] = []
    n = 0
    while n * step <= duration_ms * (1 + 1e-9):
        ticks.append(AxisTick(round(n * step, 6), round(100 * n * step / duration_ms, 3)))
        n += 1
    return ticks


def span_label(span: dict[str, Any]) -> str:
    """The name a waterfall row shows: the tool, the model or the span's own name."""
    return str(span.get("tool_name") or span.get("model") or span.get("name") or span.get("kind") or "span")


def is_simulated(span: dict[str, Any]) -> bool:
    attributes = span.get("attributes")
    return isinstance(attributes, dict) and bool(attributes.get("llmlens.simulated"))


def _tree_order(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Depth-first by start time; orphans (parent not stored) are shown as roots."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(s)
    out: list[tuple[dict[str, Any], int]] = []

    def visit(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: (x["timestamp"], x["span_id"])):
            out.append((s, depth))
            if depth < 64:
                visit(s["span_id"], depth + 1)

    visit(None, 0)
    return out


def trace_detail(store: Store, project: str, trace_id: str) -> TraceDetail | None:
    found = trace_with_feedback(store, project, trace_id)
    return found[0] if found else None


def trace_with_feedback(store: Store, project: str, trace_id: str) -> tuple[TraceDetail, SpanFeedback] | None:
    """The trace's detail, and the feedback on its calls (with the thumbs the trace's scores show)."""
    spans = spans_by_id(store, project, "trace_id", trace_id)
    if not spans:
        return None
    start = min(s["timestamp"] for s in spans)
    end = max(s["timestamp"] + dt.timedelta(milliseconds=num(s["latency_ms"])) for s in spans)
    total_ms = max((end - start).total_seconds() * 1000, 0.001)
    waterfall = []
    for s, depth in _tree_order(spans):
        offset = (s["timestamp"] - start).total_seconds() * 1000
        waterfall.append(
            WaterfallSpan(
                span=s,
                depth=depth,
                offset_pct=round(100 * offset / total_ms, 3),
                width_pct=round(max(100 * num(s["latency_ms"]) / total_ms, 0.3), 3),
                label=span_label(s),
                simulated=is_simulated(s),
            )
        )
    costs = [num(s["cost_usd"]) for s in spans if s["cost_usd"] is not None]
    on_calls = feedback_on_spans(store, project, spans)
    first_with = next((s for s in spans if s["session_id"]), None)
    failed = [s for s in spans if s["status"] == "error"]
    roots = [w.span for w in waterfall if w.depth == 0]
    detail = TraceDetail(
        trace_id=trace_id,
        start=start,
        duration_ms=round(total_ms, 3),
        cost_usd=sum(costs) if costs else None,
        total_tokens=sum(int(num(s["total_tokens"])) for s in spans if s["kind"] == "llm"),
        session_id=first_with["session_id"] if first_with else None,
        user_id=next((s["user_id"] for s in spans if s["user_id"]), None),
        spans=waterfall,
        feedback=on_calls.events,
        status="error" if failed else str((roots[0]["status"] if roots else None) or "unset"),
        error_types=list(dict.fromkeys(str(s["error_type"]) for s in failed if s["error_type"])),
        feature=next((s["feature"] for s in spans if s["feature"]), None),
        models=list(dict.fromkeys(str(s["model"]) for s in spans if s["kind"] == "llm" and s["model"])),
        name=roots[0]["name"] if roots else None,
        axis=axis_ticks(total_ms),
    )
    return detail, on_calls
