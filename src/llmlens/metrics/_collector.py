"""The Prometheus collector: server health (ingest, queue, rejections, commits, store size, forwarding)
plus the traffic metrics, rendered in the Prometheus text format by `prometheus_client`.

`render()` is the whole server's view (a server admin's). `render(project)` is one project's: only the
series labelled with that project, and none of the server-wide totals, which count every project.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from llmlens.ingest import GroupCommitWriter

from ._families import OTHER_VALUE
from ._traffic import TrafficMetrics

__all__ = ["CONTENT_TYPE_LATEST", "ForwarderStatsView", "ServerMetrics", "TraceContextStatsView"]


class TraceContextStatsView(Protocol):
    """What the OTLP trace assembler reports (see `llmlens.ingest.trace_context`)."""

    @property
    def max_bytes(self) -> int: ...
    @property
    def bytes_held(self) -> int: ...
    @property
    def traces_held(self) -> int: ...
    @property
    def evicted_traces(self) -> int: ...
    @property
    def dropped_log_content(self) -> int: ...
    @property
    def store_reads(self) -> int: ...


class ForwarderStatsView(Protocol):
    """What a span forwarder reports (see `llmlens.forward`)."""

    @property
    def target(self) -> str: ...
    @property
    def queued_spans(self) -> int: ...
    @property
    def sent_spans(self) -> int: ...
    @property
    def dropped_queue_full(self) -> int: ...
    @property
    def dropped_failed(self) -> int: ...
    @property
    def failed_requests(self) -> int: ...


def store_size_bytes(path: Path | None) -> int | None:
    """The DuckDB file and its write-ahead log; None for stores that are not a local file."""
    if path is None:
        return None
    total = 0
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            total += candidate.stat().st_size
        except OSError:
            continue
    return total


class ServerMetrics:
    """Everything `/metrics` shows. Cheap to scrape: counters in memory and one `stat()` of the store file."""

    def __init__(
        self,
        traffic: TrafficMetrics,
        writer: GroupCommitWriter,
        *,
        max_queued_events: int,
        store_path: Path | None = None,
        started_at: float | None = None,
        forwarders: Callable[[], Iterable[ForwarderStatsView]] = tuple,
        trace_context: Callable[[], TraceContextStatsView | None] = lambda: None,
        version: str = "",
    ) -> None:
        self.traffic = traffic
        self.writer = writer
        self.max_queued_events = max_queued_events
        self.store_path = store_path
        self.started_at = time.time() if started_at is None else started_at
        self.forwarders = forwarders
        self.trace_context = trace_context
        self.version = version
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def on_write(self, spans: Sequence[object], feedback: Sequence[object]) -> None:
        """Write listener: the commit that just finished is `writer.stats.last_commit_ms`."""
        self.traffic.observe_commit(self.writer.stats.last_commit_ms)

    def render(self, project: str | None = None) -> bytes:
        """Everything, or only what `project` may see."""
        if project is None:
            return generate_latest(self._registry)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_OneProject(self, project))
        return generate_latest(registry)

    def collect(self) -> Iterator[Metric]:
        yield from self._health()
        yield from self._trace_context()
        yield from self._forwarding()
        yield from self.traffic_families()
        yield _counter(
            "llmlens_metrics_label_overflow",
            "Label values replaced by 'other' because a label reached its cap of distinct values.",
            self.traffic.labels.overflowed,
        )

    def traffic_families(self, project: str | None = None) -> Iterator[Metric]:
        """The traffic series; with `project`, only families labelled by project and only its series."""
        counters, histograms = self.traffic.snapshot()
        for c in counters:
            column = _project_column(c.labels, project)
            if column is None:
                continue
            family = CounterMetricFamily(c.name, c.documentation, labels=list(c.labels))
            for key, value in sorted(c.values.items()):
                if _shown(key, column, project):
                    family.add_metric(list(key), value)
            yield family
        for h in histograms:
            column = _project_column(h.labels, project)
            if column is None:
                continue
            hist = HistogramMetricFamily(h.name, h.documentation, labels=list(h.labels))
            for key, buckets, total in sorted(h.series()):
                if _shown(key, column, project):
                    hist.add_metric(list(key), buckets, total)
            yield hist

    def _health(self) -> Iterator[Metric]:
        stats = self.writer.stats
        yield _gauge("llmlens_build_info", "llmlens version.", 1, labels={"version": self.version})
        yield _gauge("llmlens_start_time_seconds", "When this server started (Unix time).", self.started_at)
        yield _counter(
            "llmlens_ingested_events", "Spans and feedback written (duplicates excluded).", stats.events_written
        )
        yield _counter("llmlens_ingest_duplicates", "Events dropped as duplicates of stored ones.", stats.duplicates)
        yield _counter(
            "llmlens_ingest_rejected",
            "Ingest requests refused (503 + Retry-After) because the queue was full.",
            stats.rejected_backpressure,
            labels={"reason": "backpressure"},
        )
        yield _counter("llmlens_writer_commits", "Store commits (group commits).", stats.commits)
        yield _counter("llmlens_writer_failures", "Store commits that failed.", stats.failures)
        yield _gauge("llmlens_ingest_queue_events", "Events waiting for the writer.", self.writer.queued_events)
        yield _gauge(
            "llmlens_ingest_queue_capacity_events",
            "Events that may wait before ingest answers 503.",
            self.max_queued_events,
        )
        size = store_size_bytes(self.store_path)
        if size is not None:
            yield _gauge("llmlens_store_size_bytes", "Size of the store file and its write-ahead log.", size)

    def _trace_context(self) -> Iterator[Metric]:
        assembler = self.trace_context()
        if assembler is None:  # an app built without the OTLP routes
            return
        yield _gauge(
            "llmlens_trace_context_bytes",
            "Estimated memory the OTLP trace assembler holds for traces still arriving.",
            assembler.bytes_held,
        )
        yield _gauge(
            "llmlens_trace_context_max_bytes",
            "The assembler's memory bound (trace_context_memory_mb).",
            assembler.max_bytes,
        )
        yield _gauge("llmlens_trace_context_traces", "Traces the assembler remembers.", assembler.traces_held)
        yield _counter(
            "llmlens_trace_context_evicted_traces",
            "Traces dropped from the assembler's memory at its bound (their late spans are matched against the store).",
            assembler.evicted_traces,
        )
        yield _counter(
            "llmlens_trace_context_dropped_log_content",
            "GenAI log content dropped at the assembler's bound before its span arrived.",
            assembler.dropped_log_content,
        )
        yield _counter(
            "llmlens_trace_context_store_reads",
            "Traces read back from the store because more of a trace arrived after it left memory.",
            assembler.store_reads,
        )

    def _forwarding(self) -> Iterator[Metric]:
        stats = list(self.forwarders())
        if not stats:
            return
        queued = GaugeMetricFamily("llmlens_forward_queue_spans", "Spans waiting to be forwarded.", labels=["target"])
        sent = CounterMetricFamily("llmlens_forward_sent_spans", "Spans forwarded and accepted.", labels=["target"])
        dropped = CounterMetricFamily(
            "llmlens_forward_dropped_spans",
            "Spans not forwarded: queue_full (oldest dropped) or failed (retries exhausted).",
            labels=["target", "reason"],
        )
        failed = CounterMetricFamily(
            "llmlens_forward_failed_requests", "Export requests that failed (each retry counts).", labels=["target"]
        )
        for s in stats:
            queued.add_metric([s.target], s.queued_spans)
            sent.add_metric([s.target], s.sent_spans)
            dropped.add_metric([s.target, "queue_full"], s.dropped_queue_full)
            dropped.add_metric([s.target, "failed"], s.dropped_failed)
            failed.add_metric([s.target], s.failed_requests)
        yield from (queued, sent, dropped, failed)


class _OneProject:
    """A collector showing one project's traffic series, for a scrape with that project's key."""

    def __init__(self, metrics: ServerMetrics, project: str) -> None:
        self.metrics = metrics
        self.project = project

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics.traffic_families(self.project)


def _project_column(labels: Sequence[str], project: str | None) -> int | None:
    """Where the project label is (-1: every series is shown); None when a project may not see the family."""
    if project is None:
        return -1
    return labels.index("project") if "project" in labels else None


def _shown(key: tuple[str, ...], column: int, project: str | None) -> bool:
    # The "other" bucket mixes projects over the label caps, so a project named "other" does not see it.
    return column < 0 or (key[column] == project and project != OTHER_VALUE)


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    if labels:
        family = GaugeMetricFamily(name, doc, labels=list(labels))
        family.add_metric(list(labels.values()), value)
        return family
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> CounterMetricFamily:
    if labels:
        family = CounterMetricFamily(name, doc, labels=list(labels))
        family.add_metric(list(labels.values()), value)
        return family
    return CounterMetricFamily(name, doc, value=value)
