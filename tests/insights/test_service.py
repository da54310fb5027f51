"""The insights service over a real DuckDB file: reports are computed once per project and window, kept,
and recomputed in the background when their project gets new data, never because another project did."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.insights._traffic import Traffic

from llmlens.codec.native import decode_events
from llmlens.insights import InsightsService
from llmlens.pricing import PriceBook
from llmlens.store import Store, open_store

WEEK = ("7d", None, None)
PRICES = PriceBook.load()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(None, tmp_path)
    yield opened
    opened.close()


def _write(store: Store, service: InsightsService, traffic: Traffic, project: str) -> None:
    decoded = decode_events(traffic.events, project=project)
    assert decoded.rejected == []
    for span in decoded.spans:
        PRICES.price_span(span)
    store.write(decoded.spans, decoded.feedback)
    service.on_write(decoded.spans, decoded.feedback)  # as the server's writer does after each commit


def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


def test_reports_are_kept_per_project_and_recomputed_after_its_writes(store: Store) -> None:
    service = InsightsService(store, prices=lambda: PRICES, interval_s=3600)
    try:
        baseline = Traffic(seed=41)
        baseline.clean(60)
        _write(store, service, baseline, "a")
        first = service.report("a", WEEK)
        assert first.status == "fresh" and first.report is not None and first.report.insights == []
        assert service.report("a", WEEK).report is first.report  # kept, not recomputed
        other = Traffic(seed=42)
        other.duplicates()
        _write(store, service, other, "b")
        assert service.refresh_stale() == 0  # b's writes leave a's report alone
        assert service.report("a", WEEK).report is first.report
        more = Traffic(seed=43)
        more.duplicates()
        _write(store, service, more, "a")
        assert service.refresh_stale() == 1  # what the schedule does on each tick
        _until(lambda: service.refreshes == 2)
        answer = service.report("a", WEEK, wait_s=0)
        assert answer.status == "fresh" and answer.report is not None
        assert [i.kind for i in answer.report.insights] == ["cacheable_prompts"]
    finally:
        service.stop()


def test_the_schedule_refreshes_without_being_asked(store: Store) -> None:
    service = InsightsService(store, prices=lambda: PRICES, interval_s=0.2)
    try:
        service.start()
        assert service.report("a", WEEK).status == "fresh"
        traffic = Traffic(seed=45)
        traffic.duplicates()
        _write(store, service, traffic, "a")

        def recomputed() -> bool:
            report = service.cached("a", WEEK)
            return report is not None and [i.kind for i in report.insights] == ["cacheable_prompts"]

        _until(recomputed)  # nobody asked: the schedule noticed the write
    finally:
        service.stop()


def test_a_report_not_ready_in_time_says_so(store: Store) -> None:
    service = InsightsService(store, prices=lambda: PRICES, interval_s=0)
    try:
        traffic = Traffic(seed=44)
        traffic.clean(200)
        _write(store, service, traffic, "a")
        answer = service.report("a", WEEK, wait_s=0)
        assert answer.status == "computing" and answer.report is None
        _until(lambda: service.refreshes == 1)
        assert service.report("a", WEEK, wait_s=0).status == "fresh"
    finally:
        service.stop()
