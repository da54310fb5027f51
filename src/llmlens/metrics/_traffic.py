"""LLM traffic metrics (calls, errors, tokens, cost, latency, TTFT, tools, feedback) from committed writes.

`TrafficMetrics.on_write` is a write listener: the group-commit writer calls it in its thread after
each commit, so a scrape never scans the store. Counters start at zero when the server starts;
Prometheus's `rate()` and `increase()` handle the reset.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from llmlens.model import Feedback, Span, SpanKind, Status

from ._families import (
    CounterFamily,
    HistogramFamily,
    LabelValues,
    copy_counter,
    copy_histogram,
    label_key,
    seconds,
)

LLM_LABELS = ("project", "model", "provider", "feature", "environment")
LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
COMMIT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_TOKEN_FIELDS = (
    ("prompt", "prompt_tokens"),
    ("completion", "completion_tokens"),
    ("cached", "cached_tokens"),
    ("cache_write", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
)


class TrafficMetrics:
    """Counters and histograms updated from every committed batch; `snapshot()` copies them for a scrape."""

    def __init__(self, labels: LabelValues | None = None) -> None:
        self.labels = labels or LabelValues()
        self._lock = threading.Lock()
        self.spans = CounterFamily("llmlens_ingested_spans", "Spans committed to the store.", ("project", "kind"))
        self.feedback = CounterFamily(
            "llmlens_ingested_feedback", "Feedback events committed to the store.", ("project", "feedback_type")
        )
        self.calls = CounterFamily("llmlens_llm_calls", "LLM calls.", (*LLM_LABELS, "status"))
        self.errors = CounterFamily(
            "llmlens_llm_errors", "Failed LLM calls by error type.", (*LLM_LABELS, "error_type")
        )
        self.tokens = CounterFamily("llmlens_llm_tokens", "Tokens of LLM calls by type.", (*LLM_LABELS, "type"))
        self.cost = CounterFamily("llmlens_llm_cost_usd", "Cost of LLM calls in US dollars.", LLM_LABELS)
        self.unpriced = CounterFamily(
            "llmlens_llm_unpriced_calls", "Successful LLM calls without a known cost.", LLM_LABELS
        )
        self.latency = HistogramFamily(
            "llmlens_llm_latency_seconds", "Total latency of LLM calls.", LLM_LABELS, LATENCY_BUCKETS_S
        )
        self.ttft = HistogramFamily(
            "llmlens_llm_ttft_seconds", "Time to first token of streamed LLM calls.", LLM_LABELS, TTFT_BUCKETS_S
        )
        self.tools = CounterFamily("llmlens_tool_calls", "Tool executions.", ("project", "tool", "status"))
        self.tool_latency = HistogramFamily(
            "llmlens_tool_latency_seconds", "Latency of tool executions.", ("project", "tool"), LATENCY_BUCKETS_S
        )
        self.commit = HistogramFamily(
            "llmlens_writer_commit_seconds", "Duration of each store commit.", (), COMMIT_BUCKETS_S
        )

    def observe_commit(self, elapsed_ms: float) -> None:
        with self._lock:
            self.commit.observe((), elapsed_ms / 1000.0)

    def on_write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        with self._lock:
            for span in spans:
                self._span(span)
            for fb in feedback:
                self.feedback.inc(label_key(self.labels, ("project", "feedback_type"), (fb.project, fb.feedback_type)))

    def _span(self, span: Span) -> None:
        lv = self.labels
        self.spans.inc((lv.value("project", span.project), lv.value("kind", span.kind)))
        failed = span.status == Status.ERROR.value
        if span.kind == SpanKind.LLM.value:
            key = label_key(lv, LLM_LABELS, (span.project, span.model, span.provider, span.feature, span.environment))
            self.calls.inc((*key, "error" if failed else "ok"))
            if failed:
                self.errors.inc((*key, lv.value("error_type", span.error_type or "unknown")))
            for token_type, attr in _TOKEN_FIELDS:
                count = getattr(span, attr)
                if count:
                    self.tokens.inc((*key, token_type), float(count))
            if span.cost_usd is not None:
                self.cost.inc(key, float(span.cost_usd))
            elif not failed:
                self.unpriced.inc(key)
            latency = seconds(span.latency_ms)
            if latency is not None:
                self.latency.observe(key, latency)
            ttft = seconds(span.ttft_ms)
            if ttft is not None:
                self.ttft.observe(key, ttft)
        elif span.kind == SpanKind.TOOL.value:
            tool = lv.value("tool", span.tool_name or span.name)
            project = lv.value("project", span.project)
            ok = not failed and span.tool_success is not False
            self.tools.inc((project, tool, "ok" if ok else "error"))
            latency = seconds(span.latency_ms)
            if latency is not None:
                self.tool_latency.observe((project, tool), latency)

    def snapshot(self) -> tuple[list[CounterFamily], list[HistogramFamily]]:
        """Copies taken under the lock, so rendering never races the writer thread."""
        with self._lock:
            counters = [
                copy_counter(f)
                for f in (self.spans, self.feedback, self.calls, self.errors, self.tokens, self.cost, self.unpriced)
            ]
            counters.append(copy_counter(self.tools))
            histograms = [copy_histogram(f) for f in (self.latency, self.ttft, self.tool_latency, self.commit)]
        return counters, histograms
