"""Time series of the dashboards: buckets without rows are told apart from buckets whose value is 0."""

from __future__ import annotations

import datetime as dt

from llmlens.query._common import epoch_s, time_chart
from llmlens.query._window import parse_window

NOW = dt.datetime(2026, 3, 15, 12, 30)


def test_empty_buckets_are_listed_and_only_sums_fill_them_with_zero() -> None:
    window = parse_window("24h", now=NOW)  # 12:31 the day before to 12:31: hourly buckets
    starts = window.bucket_starts()
    rows = [
        {"bucket": starts[1], "cost": 0.0, "p95": 120.0},  # calls that cost nothing: a true zero
        {"bucket": starts[3], "cost": 2.5, "p95": 300.0},
    ]
    spend = time_chart(window, rows, series_key=None, value_key="cost", name="spend")
    p95 = time_chart(window, rows, series_key=None, value_key="p95", fill=None, name="p95")
    assert spend.additive and not p95.additive
    assert spend.empty == p95.empty == [i for i in range(len(starts)) if i not in (1, 3)]
    assert spend.series[0].values[:4] == [0.0, 0.0, 0.0, 2.5]
    assert p95.series[0].values[:4] == [None, 120.0, None, 300.0]
    # Bucket length and the window the first and last buckets are cut to.
    assert spend.step_s == 3600.0
    assert (spend.start, spend.end) == (epoch_s(window.start), epoch_s(window.end))
    assert spend.x[0] < spend.start < spend.x[0] + spend.step_s


def test_a_chart_built_from_several_keeps_a_bucket_empty_only_when_all_are() -> None:
    window = parse_window("24h", now=NOW)
    starts = window.bucket_starts()
    chart = time_chart(window, [], series_key=None, value_key="p50", fill=None)
    assert chart.empty == list(range(len(starts)))
    chart.add_series(
        time_chart(window, [{"bucket": starts[2], "p50": 1.0}], series_key=None, value_key="p50", fill=None)
    )
    chart.add_series(
        time_chart(window, [{"bucket": starts[5], "p95": 2.0}], series_key=None, value_key="p95", fill=None)
    )
    assert [s.label for s in chart.series] == ["p50", "p95"]
    assert 2 not in chart.empty and 5 not in chart.empty and 0 in chart.empty
