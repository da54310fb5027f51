"""The month-end forecast against synthetic spend with a known trend and weekly pattern."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.alerts._traffic import Traffic, new_store

from llmlens.alerts import AlertEngine, forecast_month
from llmlens.alerts.forecast import fit_daily
from llmlens.alerts.rules import Scope
from llmlens.settings import Settings
from llmlens.store import Store

NOW = datetime(2026, 3, 16, 12, 0)  # a Monday, half-way through the day
WEEKLY = [20.0, 15.0, 10.0, 5.0, 0.0, -25.0, -25.0]  # Monday .. Sunday, USD per day
START = NOW.date() - timedelta(days=56)


def expected_daily(day: date) -> float:
    return 100.0 + 1.5 * (day - START).days + WEEKLY[day.weekday()]


def test_fit_recovers_trend_and_weekday_effects() -> None:
    rng = random.Random(3)
    days = [START + timedelta(days=i) for i in range(56)]
    fit = fit_daily(START, [expected_daily(d) + rng.gauss(0, 2) for d in days])
    assert fit.method == "trend+weekday"
    assert fit.coef[1] == pytest.approx(1.5, abs=0.1)
    # Offsets are relative to Monday.
    assert list(fit.coef[2:]) == pytest.approx([w - WEEKLY[0] for w in WEEKLY[1:]], abs=3.0)
    assert fit.predict(NOW.date() + timedelta(days=3)) == pytest.approx(
        expected_daily(NOW.date() + timedelta(days=3)), abs=4
    )


def test_month_end_projection_is_close_and_inside_its_interval(tmp_path: Path) -> None:
    rng = random.Random(5)
    traffic = Traffic(seed=21)
    actual: dict[date, float] = {}
    day = START
    while day <= NOW.date():
        total = expected_daily(day) + rng.gauss(0, 3.0)
        hours = 12 if day == NOW.date() else 24
        for hour in range(hours):
            t = datetime.combine(day, datetime.min.time()) + timedelta(hours=hour, minutes=rng.randint(0, 59))
            traffic.llm(t, feature="chat", user_id="user-a", cost_usd=0.7 * total / 24)
            traffic.llm(t, feature="code", user_id="user-b", cost_usd=0.3 * total / 24)
        actual[day] = total * hours / 24
        day += timedelta(days=1)
    store = new_store(tmp_path / "data")
    try:
        traffic.write(store)
        forecast = forecast_month(store, "default", NOW)
        rules = [
            {"name": "tight budget", "type": "forecast_budget", "budget_usd": 3000.0},
            {"name": "loose budget", "type": "forecast_budget", "budget_usd": 6000.0},
        ]
        evaluations = {e.rule.name: e for e in AlertEngine(store, Settings(alerts=rules)).evaluate_all(NOW).evaluations}
    finally:
        store.close()

    assert evaluations["tight budget"].firing and not evaluations["loose budget"].firing
    assert evaluations["tight budget"].attribution["by_feature"][0]["name"] == "chat"
    assert "projected" in evaluations["tight budget"].message

    month_to_date = sum(v for d, v in actual.items() if d.month == NOW.month)
    rest_of_today = expected_daily(NOW.date()) / 2
    rest_of_month = sum(expected_daily(date(2026, 3, d)) for d in range(17, 32))
    truth = month_to_date + rest_of_today + rest_of_month

    assert forecast["month"] == "2026-03"
    assert forecast["method"] == "trend+weekday" and forecast["days_of_history"] == 56
    assert forecast["trend_usd_per_day"] == pytest.approx(1.5, abs=0.2)
    assert forecast["month_to_date_usd"] == pytest.approx(month_to_date, rel=1e-6)
    assert forecast["projected_usd"] == pytest.approx(truth, rel=0.02)
    assert forecast["low_usd"] <= truth <= forecast["high_usd"]
    width = forecast["high_usd"] - forecast["low_usd"]
    assert 0 < width < 0.1 * truth  # an interval that says something
    # The daily series: actual days then predicted days to the month's end.
    assert forecast["daily"][0]["date"] == "2026-03-01" and forecast["daily"][-1]["date"] == "2026-03-31"
    assert forecast["daily"][-1]["predicted_usd"] == pytest.approx(expected_daily(date(2026, 3, 31)), rel=0.05)
    by_feature = {f["name"]: f for f in forecast["by_feature"]}
    assert by_feature["chat"]["projected_usd"] == pytest.approx(0.7 * truth, rel=0.03)
    assert by_feature["code"]["projected_usd"] == pytest.approx(0.3 * truth, rel=0.03)
    assert [u["name"] for u in forecast["by_user"]] == ["user-a", "user-b"]


def test_short_history_falls_back_without_failing(tmp_path: Path) -> None:
    traffic = Traffic(seed=22)
    for hour in range(72):
        traffic.llm(NOW - timedelta(hours=hour), cost_usd=1.0)
    store = new_store(tmp_path / "data")
    try:
        traffic.write(store)
        forecast = forecast_month(store, "default", NOW)
        empty = forecast_month(store, "other-project", NOW)
    finally:
        store.close()
    assert forecast["method"] == "mean"
    assert forecast["projected_usd"] > forecast["month_to_date_usd"] > 0
    assert empty["projected_usd"] == 0 and empty["by_feature"] == []


class _RawSpansOnly:
    """The same store without its rollups: every question is answered from raw spans."""

    has_rollups = False

    def __init__(self, store: Store) -> None:
        self.query = store.query


@pytest.mark.parametrize(
    "scope",
    [None, Scope(feature="chat"), Scope(model="gpt-4o-mini", environment="production"), Scope(user="user-7")],
    ids=["all", "feature", "model+env", "user"],
)
def test_forecast_from_rollups_equals_the_raw_answer(tmp_path: Path, scope: Scope | None) -> None:
    # 40 days of calls at random minutes (partial first and last days, the month boundary, many users).
    rng = random.Random(8)
    traffic = Traffic(seed=4)
    t = datetime.combine(NOW.date() - timedelta(days=40), datetime.min.time()) + timedelta(hours=7, minutes=13)
    while t < NOW:
        traffic.llm(t, cost_usd=round(rng.uniform(0.001, 0.05), 6), user_id=f"user-{rng.randint(0, 30)}")
        t += timedelta(minutes=rng.randint(5, 40))
    store = new_store(tmp_path / "data")
    try:
        traffic.write(store)
        assert getattr(store, "has_rollups", False)
        rolled = forecast_month(store, "default", NOW, scope=scope, top=5)
        raw = forecast_month(_RawSpansOnly(store), "default", NOW, scope=scope, top=5)  # type: ignore[arg-type]
    finally:
        store.close()
    assert rolled["month_to_date_usd"] > 0
    assert rolled["by_user"] and rolled["by_feature"]
    assert _close_to(raw) == rolled


def _close_to(value: Any) -> Any:
    """Sums taken in a different order differ in the last bits of a float, so floats compare with a
    tolerance. (Rounding both sides is not enough: a value a few ulps either side of a rounding tie, such
    as x.xxxxxxxxx5 from costs with 6 decimals, rounds two ways.)"""
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-12)
    if isinstance(value, dict):
        return {k: _close_to(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_close_to(v) for v in value]
    return value
