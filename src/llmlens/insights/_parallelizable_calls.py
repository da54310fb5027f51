"""Sequential calls that could run in parallel: sibling LLM or tool calls of one parent that ran one
after another although the later one's input does not contain the earlier one's output.

Sibling groups are read for the most recent parents with two or more LLM or tool children (up to
MAX_PARENTS, scaled to every such parent of the window). Within a parent, consecutive calls that do
not overlap and do not depend on any call of the current run join the run; running a run's calls
together takes as long as its longest call, so it saves the sum of its latencies minus the longest.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ._context import FindingContext, num
from ._model import Chart, Insight, confidence_for

KIND = "parallelizable_calls"
MAX_PARENTS = 5_000
MIN_TRACES = 3
PROBE_CHARS = 200  # the start of an output looked for in a later input
MIN_PROBE = 8  # outputs shorter than this are too generic to tell: treated as consumed
SLACK_MS = 1.0


@dataclass(slots=True)
class Call:
    span_id: str
    kind: str
    name: str
    start_ms: float
    latency_ms: float
    output: str  # the start of the response or tool result
    input: str  # the prompt or the tool arguments
    tool_calls: str  # an LLM call's requested tools (JSON), empty otherwise

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.latency_ms


def depends(later: Call, earlier: Call, siblings_before: list[Call]) -> bool:
    """Whether `later` needs `earlier`'s result (conservative: True when it cannot tell)."""
    if earlier.kind == "llm" and later.kind == "tool":
        # A tool the model asked for needs the model's answer first.
        return bool(earlier.tool_calls) and earlier.tool_calls not in ("[]", "null")
    # An agent loop: after tools a model asked for, the next model call reads their results.
    if (
        earlier.kind == "tool"
        and later.kind == "llm"
        and any(s.kind == "llm" and s.tool_calls not in ("", "[]", "null") for s in siblings_before)
    ):
        return True
    probe = earlier.output.strip()[:PROBE_CHARS]
    if len(probe) < MIN_PROBE:
        return True
    return probe in later.input


def parallel_runs(calls: list[Call]) -> list[list[Call]]:
    """Runs of 2+ sequential, mutually independent calls of one parent (calls sorted by start)."""
    runs: list[list[Call]] = []
    current: list[Call] = []
    for i, call in enumerate(calls):
        before = calls[:i]
        if (
            current
            and call.start_ms >= current[-1].end_ms - SLACK_MS
            and not any(depends(call, c, before) for c in current)
        ):
            current.append(call)
            continue
        if len(current) >= 2:
            runs.append(current)
        current = [call]
    if len(current) >= 2:
        runs.append(current)
    return runs


@dataclass(slots=True)
class _TraceType:
    traces: set[str] = field(default_factory=set)
    calls: int = 0
    saved_ms: float = 0.0
    sequential_ms: float = 0.0
    examples: list[str] = field(default_factory=list)
    shapes: dict[str, int] = field(default_factory=dict)


def find_parallelizable_calls(ctx: FindingContext) -> list[Insight]:
    window = ctx.span_where()
    children = f"{window} AND kind IN ('llm', 'tool') AND parent_span_id IS NOT NULL"
    rows = ctx.rows(
        "SELECT trace_id, parent_span_id, span_id, kind, COALESCE(tool_name, model, name, kind) AS name, "
        "COALESCE(feature, '(none)') AS feature, timestamp, latency_ms, "
        f"substr(COALESCE(response, CAST(tool_result AS VARCHAR), ''), 1, {PROBE_CHARS}) AS output, "
        "COALESCE(prompt, CAST(input_messages AS VARCHAR), CAST(tool_args AS VARCHAR), '') AS input, "
        "COALESCE(CAST(tool_calls AS VARCHAR), '') AS tool_calls "
        f"FROM spans WHERE {children} AND latency_ms IS NOT NULL AND parent_span_id IN ("
        f"SELECT parent_span_id FROM spans WHERE {children} GROUP BY parent_span_id HAVING COUNT(*) >= 2 "
        f"ORDER BY MAX(timestamp) DESC LIMIT {MAX_PARENTS}) ORDER BY parent_span_id, timestamp",
        [*ctx.llm_params(), *ctx.llm_params()],
    )
    parents: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        parents[(str(r["trace_id"]), str(r["parent_span_id"]))].append(r)
    names = _parent_names(ctx, [p for _, p in parents])
    scale = 1.0
    if len(parents) >= MAX_PARENTS:
        total = ctx.rows(
            f"SELECT COUNT(*) AS n FROM (SELECT parent_span_id FROM spans WHERE {children} "
            "GROUP BY parent_span_id HAVING COUNT(*) >= 2) AS p",
            ctx.llm_params(),
        )
        scale = max(num(total[0]["n"]) / len(parents), 1.0) if total else 1.0
    types: dict[str, _TraceType] = defaultdict(_TraceType)
    for (trace_id, parent), group in parents.items():
        calls = [_call(r) for r in group]
        calls.sort(key=lambda c: c.start_ms)
        runs = parallel_runs(calls)
        if not runs:
            continue
        trace_type = names.get(parent) or str(group[0]["feature"])
        t = types[trace_type]
        t.traces.add(trace_id)
        for run in runs:
            latencies = [c.latency_ms for c in run]
            t.calls += len(run)
            t.saved_ms += sum(latencies) - max(latencies)
            t.sequential_ms += sum(latencies)
            shape = " → ".join(c.name for c in run)
            t.shapes[shape] = t.shapes.get(shape, 0) + 1
        if trace_id not in t.examples and len(t.examples) < 5:
            t.examples.append(trace_id)
    return [_insight(ctx, name, t, scale) for name, t in types.items() if len(t.traces) >= MIN_TRACES]


_EPOCH = dt.datetime(1970, 1, 1)


def _call(r: dict[str, Any]) -> Call:
    ts = r["timestamp"]
    start = (ts.replace(tzinfo=None) - _EPOCH).total_seconds() * 1000 if isinstance(ts, dt.datetime) else num(ts)
    return Call(
        span_id=str(r["span_id"]),
        kind=str(r["kind"]),
        name=str(r["name"]),
        start_ms=start,
        latency_ms=num(r["latency_ms"]),
        output=str(r["output"] or ""),
        input=str(r["input"] or ""),
        tool_calls=str(r["tool_calls"] or ""),
    )


def _parent_names(ctx: FindingContext, parents: list[str]) -> dict[str, str]:
    """The names of the parent spans (the trace type: e.g. `report.build`), read in chunks."""
    out: dict[str, str] = {}
    for start in range(0, len(parents), 1000):
        chunk = parents[start : start + 1000]
        marks = ", ".join("?" for _ in chunk)
        for r in ctx.rows(
            f"SELECT span_id, name FROM spans WHERE project = ? AND span_id IN ({marks}) AND name IS NOT NULL",
            [ctx.project, *chunk],
        ):
            out[str(r["span_id"])] = str(r["name"])
    return out


def _insight(ctx: FindingContext, name: str, t: _TraceType, scale: float) -> Insight:
    traces = len(t.traces)
    per_trace = t.saved_ms / traces
    top = sorted(t.shapes.items(), key=lambda s: -s[1])[:5]
    assumptions = [
        "Calls whose input does not contain the start of an earlier sibling's output do not need it; a tool "
        "call that a model asked for, and a model call after the tools it asked for, do.",
        "Run together, independent calls take as long as the slowest of them (no shared rate limit slows them).",
    ]
    if scale > 1:
        assumptions.append(
            f"The {MAX_PARENTS:,} most recent parents were read; the monthly seconds are scaled by {scale:.2f} to "
            "every parent of the window."
        )
    return Insight(
        kind=KIND,
        title=f"{name}: independent calls run one after another; together they would save {per_trace:,.0f} ms "
        "per trace",
        scope={"trace_type": name},
        saving_usd=0.0,
        saving_usd_per_month=0.0,
        saving_ms_per_trace=round(per_trace, 1),
        calls_affected=round(t.calls * scale),
        confidence=confidence_for(traces, high=100, medium=10),
        method=(
            "Sibling LLM and tool calls of one parent span, in start order. A call that starts after the previous "
            "one ended and whose input (prompt or arguments) does not contain the first 200 characters of any "
            "earlier call of its run joins the run. A run run in parallel lasts as long as its slowest call: the "
            "saving is the sum of its latencies minus the longest, averaged over the traces that have one."
        ),
        example_trace_ids=t.examples,
        assumptions=assumptions,
        saving_s_per_month=round(ctx.per_month(t.saved_ms * scale) / 1000, 1),
        traces_affected=round(traces * scale),
        summary=f"{traces} traces of {name} wait {t.sequential_ms / traces:,.0f} ms for calls that could overlap; "
        f"in parallel, {(t.sequential_ms - t.saved_ms) / traces:,.0f} ms.",
        chart=Chart(
            title="Time per trace in independent calls",
            categories=["one after another", "in parallel"],
            series=[
                {
                    "label": "ms per trace",
                    "values": [round(t.sequential_ms / traces, 1), round((t.sequential_ms - t.saved_ms) / traces, 1)],
                }
            ],
            unit="ms",
        ),
        evidence=[{"calls": shape, "traces": n} for shape, n in top],
        details={"traces": traces, "scale": round(scale, 4)},
    )
