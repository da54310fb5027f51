"""One month-end forecast: the Overview, the Cost page, `/api/v1/forecast` and `llmlens report cost` show the
same figure, interval and days of history for a store with known daily spend, and that figure is the one
computed here (least squares over the days of spend); one stray old event does not move it by more than
its own cost."""

from __future__ import annotations

import calendar
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from tests.support.llmlens_server import LLMLensServer

from llmlens.server.routes._formatting import usd

# Spend of the ten complete days before today (oldest first), and of today so far.
DAILY_USD = [10.0, 12.5, 11.0, 13.0, 12.0, 14.5, 13.0, 15.0, 14.0, 16.5]
TODAY_USD = 3.0
Z_90 = 1.6449


def _epoch(t: datetime) -> float:
    return t.replace(tzinfo=UTC).timestamp()


def _call(at: datetime, cost: float) -> dict[str, Any]:
    return {
        "type": "llm",
        "model": "gpt-4o-mini",
        "timestamp": _epoch(at),
        "cost_usd": cost,
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "latency_ms": 500.0,
    }


def _events(today: date) -> list[dict[str, Any]]:
    """Each day's spend in two calls, the first in the day's first minute (so the day counts as complete)."""
    events = []
    for i, spend in enumerate(DAILY_USD):
        day = datetime.combine(today - timedelta(days=len(DAILY_USD) - i), datetime.min.time())
        events += [_call(day + timedelta(seconds=30), spend * 0.4), _call(day + timedelta(hours=12), spend * 0.6)]
    events.append(_call(datetime.combine(today, datetime.min.time()) + timedelta(seconds=1), TODAY_USD))
    return events


def expected_forecast(today: date) -> dict[str, float]:
    """The method, by hand: daily spend = a + b x day fitted by least squares on the complete days; the
    month's spend so far, plus today's prediction beyond what today spent, plus each later day's prediction;
    a 90 % interval from the residual noise and the coefficients' uncertainty."""
    n = len(DAILY_USD)
    x = np.array([[1.0, float(t)] for t in range(n)])
    y = np.array(DAILY_USD)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residuals = y - x @ coef
    sigma2 = float(residuals @ residuals) / (n - 2)
    first = today - timedelta(days=n)
    last_day = calendar.monthrange(today.year, today.month)[1]
    month_start = today.replace(day=1)
    spent_before_today = sum(s for i, s in enumerate(DAILY_USD) if first + timedelta(days=i) >= month_start)
    month_to_date = spent_before_today + TODAY_USD
    projected, weights, combined = month_to_date, 0.0, np.zeros(2)
    for day in (today.replace(day=d) for d in range(today.day, last_day + 1)):
        row = np.array([1.0, float((day - first).days)])
        predicted = max(float(row @ coef), 0.0)
        weight = max(predicted - TODAY_USD, 0.0) / predicted if day == today else 1.0
        projected += predicted * weight
        weights += weight
        combined += row * weight
    half = Z_90 * math.sqrt(sigma2 * (weights + float(combined @ np.linalg.inv(x.T @ x) @ combined)))
    return {
        "month_to_date_usd": month_to_date,
        "projected_usd": projected,
        "low_usd": max(month_to_date, projected - half),
        "high_usd": projected + half,
    }


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMLensServer, date]]:
    today = datetime.now(UTC).date()
    with LLMLensServer(tmp_path_factory.mktemp("forecast-data")) as srv:
        result = srv.ingest(_events(today))
        assert result["rejected"] == []
        yield srv, today


def _tile(html: str) -> str:
    found = re.search(r'<section class="tile month-forecast">(.*?)</section>', html, flags=re.S)
    assert found, "no month-end forecast tile on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def _report(server: LLMLensServer) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "llmlens.cli", "report", "cost", "--url", server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250"},
        check=True,
    ).stdout
    lines = [line for line in out.splitlines() if "forecast, month end" in line]
    assert len(lines) == 1, out
    return lines[0]


def _everywhere(server: LLMLensServer) -> dict[str, Any]:
    with server.client() as client:
        return {
            "api": client.get("/api/v1/forecast").json(),
            "overview_json": client.get("/api/v1/overview").json()["overview"]["month"],
            "cost_json": client.get("/api/v1/cost").json()["cost"]["month"],
            "overview": _tile(client.get("/").text),
            "cost": _tile(client.get("/cost").text),
            "report": _report(server),
        }


def test_the_same_forecast_everywhere_and_it_is_the_computed_one(known: tuple[LLMLensServer, date]) -> None:
    server, today = known
    with server.client() as client:
        api = client.get("/api/v1/forecast").json()
    expected = expected_forecast(today)
    for key, value in expected.items():
        assert api[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
    assert (api["method"], api["days_of_history"], api["interval"]) == ("trend", len(DAILY_USD), 0.9)
    assert api["history_start"] == (today - timedelta(days=len(DAILY_USD))).isoformat()

    seen = _everywhere(server)
    assert seen["api"]["projected_usd"] == api["projected_usd"]  # the figure does not move with the clock
    figures = ("projected_usd", "low_usd", "high_usd", "month_to_date_usd", "days_of_history", "interval", "method")
    for twin in ("overview_json", "cost_json"):
        assert {k: seen[twin][k] for k in figures} == {k: api[k] for k in figures}, twin

    shown = usd(api["projected_usd"])
    interval = f"{usd(api['low_usd'])} – {usd(api['high_usd'])}"
    history = f"{len(DAILY_USD)} days of history"
    assert seen["overview"] == seen["cost"]  # one tile, the same words
    for where in ("overview", "cost", "report"):
        text = seen[where]
        assert shown in text and interval in text and history in text and "90 % interval" in text, (where, text)


def test_one_stray_old_event_moves_it_by_no_more_than_its_own_cost(known: tuple[LLMLensServer, date]) -> None:
    server, today = known
    before = _everywhere(server)
    stray_cost = 5.0
    # Years before the traffic (outside the lookback), then weeks before it (inside the lookback, after a gap).
    for days_back in (400, 40):
        at = datetime.combine(today - timedelta(days=days_back), datetime.min.time()) + timedelta(hours=9)
        assert server.ingest([_call(at, stray_cost)])["rejected"] == []
        after = _everywhere(server)
        assert abs(after["api"]["projected_usd"] - before["api"]["projected_usd"]) <= stray_cost
        assert after["api"]["days_of_history"] == before["api"]["days_of_history"] == len(DAILY_USD)
        for where in ("overview", "cost", "report"):
            assert after[where] == before[where], where
