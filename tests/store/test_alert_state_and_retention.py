"""Alert state and retention through the Store API, on DuckDB and on ClickHouse: one winner per raced
transition (ClickHouse: two stores on one database, as two servers), history and API rules read back,
and retention deleting old spans and feedback."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmlens.ingest.retention import enforce_retention
from llmlens.model import Feedback, Span
from llmlens.store import AlertRecord, Store, open_store

AT = dt.datetime(2026, 3, 18, 14, 30, 5, 250_000)
DAY_US = 86_400 * 1_000_000


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Store]]:
    """Two handles on one store: the same DuckDB store twice, or two ClickHouse stores on one database."""
    if request.param == "duckdb":
        one = open_store(f"duckdb://{tmp_path / 'alerts.duckdb'}", tmp_path)
        yield [one, one]
        one.close()
        return
    base: str = request.getfixturevalue("clickhouse_url")
    url = base.rsplit("/", 1)[0] + f"/alerts_{uuid.uuid4().hex[:12]}"
    opened = [open_store(url, tmp_path), open_store(url, tmp_path)]
    yield opened
    for s in opened:
        s.close()


def _record(seq: int, state: str, previous: str | None, *, at: dt.datetime = AT, message: str = "") -> AlertRecord:
    return AlertRecord(
        project="p",
        rule="cost spike",
        seq=seq,
        state=state,
        previous_state=previous,
        changed_at=at,
        value=1.5,
        threshold=1.0,
        sample_size=12,
        message=message or f'{state} it\'s "quoted" 100%',
        details='{"k":[1,2]}',
    )


def test_raced_transitions_have_one_winner(stores: list[Store]) -> None:
    for s in stores:
        s.ensure_alert_tables()
    claimants = [(stores[i % 2], f"server-{i}") for i in range(4)]
    barrier = threading.Barrier(len(claimants))
    won: list[str] = []

    def claim(store: Store, claimant: str) -> None:
        barrier.wait()
        if store.claim_alert_transition(_record(1, "firing", None, message=f"by {claimant}"), claimant):
            won.append(claimant)

    threads = [threading.Thread(target=claim, args=c) for c in claimants]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1
    # Every reader sees the winner's row only, whichever store it asks.
    for s in stores:
        (only,) = s.alert_history(project="p")
        assert only.message == f"by {won[0]}"
    # A late evaluator that claims a key already won loses, even though no one else is racing it.
    assert not stores[1].claim_alert_transition(_record(1, "firing", None), "late-server")
    assert stores[0].claim_alert_transition(_record(2, "resolved", "firing", at=AT + dt.timedelta(hours=1)), "a")


def test_history_and_rules_read_back(stores: list[Store]) -> None:
    store = stores[0]
    assert store.alert_history() == []
    store.ensure_alert_tables()
    assert store.claim_alert_transition(_record(1, "pending", None), "a")
    assert store.claim_alert_transition(_record(2, "firing", "pending", at=AT + dt.timedelta(minutes=2)), "a")
    other = AlertRecord(project="q", rule="error rate", seq=1, state="firing", previous_state=None, changed_at=AT)
    assert store.claim_alert_transition(other, "a")

    history = store.alert_history(project="p")
    assert [(r.seq, r.state) for r in history] == [(2, "firing"), (1, "pending")]
    assert history[1] == _record(1, "pending", None)  # every field, microseconds included
    latest = store.alert_history(latest_only=True)
    assert [(r.project, r.rule, r.seq) for r in latest] == [("p", "cost spike", 2), ("q", "error rate", 1)]
    assert [r.seq for r in store.alert_history(project="p", rule="cost spike", latest_only=True)] == [2]
    assert len(store.alert_history(limit=1)) == 1
    scoped = store.scoped("q")
    assert [r.project for r in scoped.alert_history()] == ["q"]
    assert scoped.alert_history(project="p") == []

    store.save_alert_rule("whale", '{"name":"whale"}', AT)
    store.save_alert_rule("p95 latency", None, AT + dt.timedelta(seconds=1))
    store.save_alert_rule("whale", '{"name":"whale","factor":4}', AT + dt.timedelta(seconds=2))
    rules = stores[1].alert_rules()
    assert [(r.name, r.spec) for r in rules] == [("p95 latency", None), ("whale", '{"name":"whale","factor":4}')]
    with pytest.raises(PermissionError):
        scoped.save_alert_rule("x", None, AT)


def test_retention_deletes_old_rows(stores: list[Store]) -> None:
    store = stores[0]
    now_us = int(time.time()) * 1_000_000
    spans = [
        Span(trace_id=f"{i:032x}", span_id=f"{i + 1:016x}", kind="llm", project=p, start_us=now_us - d * DAY_US)
        for i, (p, d) in enumerate([("a", 1), ("a", 10), ("b", 1), ("b", 10)])
    ]
    feedback = [
        Feedback(feedback_id=f"f{d}", message_id="m", feedback_type="thumbs_up", project="a", timestamp_us=ts)
        for d, ts in ((1, now_us - DAY_US), (10, now_us - 10 * DAY_US))
    ]
    store.write(spans, feedback)
    run = enforce_retention(store, 5, {"b": 0})
    assert set(run.cutoffs) == {"a"}
    rows = store.query("SELECT project, COUNT(*) AS n FROM spans GROUP BY project ORDER BY project").rows
    assert [list(r) for r in rows] == [["a", 1], ["b", 2]]
    assert store.query("SELECT feedback_id FROM feedback_events").rows == [["f1"]]
