"""What the Alerts page and the Overview say about rules before they were evaluated and when a rule saw too
few calls to judge: never a green "ok" or "No active alerts" that nobody checked."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.llmlens_server import LLMLensServer

SLOW_CALLS = 16  # the p95 rule needs 20 calls in its 15-minute window
LATENCY_MS = 42_500.0  # far over its 5 s limit


@pytest.fixture
def unscheduled(tmp_path: Path) -> Iterator[LLMLensServer]:
    # No schedule: the rules are evaluated only when asked, so "before the first evaluation" lasts.
    with LLMLensServer(tmp_path / "data", env={"LLMLENS_ALERT_INTERVAL_S": "0"}) as srv:
        yield srv


def _rule_row(html: str, rule: str) -> str:
    rows = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", html, flags=re.S) if f"<b>{rule}</b>" in r]
    assert len(rows) == 1, f"no single row for rule {rule!r} on the Alerts page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", rows[0]))


def test_before_the_first_evaluation_the_pages_say_so(unscheduled: LLMLensServer) -> None:
    with unscheduled.client() as client:
        assert client.get("/api/v1/alerts").json()["last_run"]["at"] is None
        alerts = client.get("/alerts").text
        overview = client.get("/").text
    assert "have not been evaluated yet" in alerts
    assert "No active alerts" not in alerts
    assert "not evaluated yet" in _rule_row(alerts, "p95 latency")
    assert "have not been evaluated yet" in overview
    assert "No active alerts" not in overview


def test_a_rule_with_too_few_calls_is_not_ok(unscheduled: LLMLensServer) -> None:
    now = time.time()
    unscheduled.ingest(
        [
            {
                "type": "llm",
                "model": "gpt-4o-mini",
                "timestamp": now - 600 + i * 10,
                "latency_ms": LATENCY_MS,
                "prompt_tokens": 100,
                "completion_tokens": 20,
            }
            for i in range(SLOW_CALLS)
        ]
    )
    with unscheduled.client() as client:
        run = client.post("/api/v1/alerts/evaluate").json()
        evaluation = next(e for e in run["evaluations"] if e["rule"] == "p95 latency")
        assert (evaluation["sample_size"], evaluation["samples_needed"]) == (SLOW_CALLS, 20)
        assert not evaluation["enough_samples"] and not evaluation["firing"]
        alerts = client.get("/alerts").text
        overview = client.get("/").text
    row = _rule_row(alerts, "p95 latency")
    assert f"not enough data ({SLOW_CALLS} of 20)" in row
    assert "ok" not in row.split()
    assert "have not been evaluated yet" not in alerts
    assert "No active alerts" in alerts and "No active alerts" in overview
