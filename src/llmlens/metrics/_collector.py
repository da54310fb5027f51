"""The Prometheus collector: server health (ingest, queue, rejections, commits, store size, forwarding)
plus the traffic metrics, rendered in the Prometheus text format by `prometheus_client`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from llmlens.ingest import GroupCommitWriter

from ._traffic import TrafficMetrics

__all__ = ["CONTENT_TYPE_LATEST", "ForwarderStatsView", "ServerMetrics"]


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
        version: str = "",
    ) -> None:
        self.traffic = traffic
        self.writer = writer
        self.max_queued_events = max_queued_events
        self.store_path = store_path
        self.started_at = time.time() if started_at is None else started_at
        self.forwarders = forwarders
        self.version = version
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def on_write(self, spans: Sequence[object], feedback: Sequence[object]) -> None:
        """Write listener: the commit that just finished is `writer.stats.last_commit_ms`."""
        self.traffic.observe_commit(self.writer.stats.last_commit_ms)

    def render(self) -> bytes:
        return generate_latest(self._registry)

    def collect(self) -> Iterator[Metric]:
        yield from self._health()
        yield from self._forwarding()
        counters, histograms = self.traffic.snapshot()
        for c in counters:
            family = CounterMetricFamily(c.name, c.documentation, labels=list(c.labels))
            for key, value in sorted(c.values.items()):
                family.add_metric(list(key), value)
            yield family
        for h in histograms:
            hist = HistogramMetricFamily(h.name, h.documentation, labels=list(h.labels))
            for key, buckets, total in sorted(h.series()):
                hist.add_metric(list(key), buckets, total)
            yield hist
        yield _counter(
            "llmlens_metrics_label_overflow",
            "Label values replaced by 'other' because a label reached its cap of distinct values.",
            self.traffic.labels.overflowed,
        )

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
