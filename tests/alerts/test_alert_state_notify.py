"""States pending -> firing -> resolved with cooldown and history in the store; exactly one signed
notification per transition to a real local webhook receiver; one winner when evaluators race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tests.alerts._receiver import WebhookReceiver
from tests.alerts._traffic import Traffic, new_store

from llmlens.alerts import (
    SIGNATURE_HEADER,
    AlertEngine,
    AlertHistory,
    NotificationDispatcher,
    parse_notifiers,
    verify_signature,
)
from llmlens.settings import Settings
from llmlens.store import Store

NOW = datetime(2026, 3, 18, 14, 30)
SECRET = "s3cret"


@pytest.fixture
def spiked_store(tmp_path: Path) -> Iterator[Store]:
    """Baseline traffic, and one user spending ~3 usual hours' worth in the hour before NOW."""
    store = new_store(tmp_path / "data")
    traffic = Traffic()
    traffic.baseline(NOW)
    for i in range(30):
        traffic.llm(NOW - timedelta(minutes=55) + timedelta(minutes=i * 1.8), user_id="user-whale", cost_usd=0.10)
    traffic.write(store)
    yield store
    store.close()


def _engine(store: Store, receiver_url: str, **rule: object) -> tuple[AlertEngine, NotificationDispatcher]:
    settings = Settings(
        alerts=[{"name": "cost spike", "type": "cost_spike", **rule}],
        notifiers=[
            {"type": "webhook", "name": "ops", "url": receiver_url, "secret": SECRET, "backoff_s": 0.05},
            {"type": "log"},
        ],
    )
    engine = AlertEngine(store, settings)
    dispatcher = NotificationDispatcher(parse_notifiers(settings.notifiers), rule_notifiers=engine.rule_notifiers)
    engine.dispatcher = dispatcher
    return engine, dispatcher


def _states(store: Store) -> list[tuple[str, str | None, str]]:
    return [(t.rule, t.previous_state, t.state) for t in reversed(AlertHistory(store).recent())]


def test_one_signed_notification_per_transition(spiked_store: Store) -> None:
    with WebhookReceiver() as hook:
        engine, dispatcher = _engine(spiked_store, hook.url)
        try:
            first = engine.run_once(NOW)
            assert [(t.rule, t.state) for t in first.transitions] == [("cost spike", "firing")]
            # Still firing on the next evaluations: no new transition, no new notification.
            assert engine.run_once(NOW + timedelta(minutes=1)).transitions == []
            assert engine.run_once(NOW + timedelta(minutes=2)).transitions == []
            # An hour later the spike has left the window.
            later = engine.run_once(NOW + timedelta(minutes=70))
            assert [(t.state, t.previous_state) for t in later.transitions] == [("resolved", "firing")]
            assert engine.run_once(NOW + timedelta(minutes=71)).transitions == []
            assert dispatcher.flush(10)
        finally:
            dispatcher.close()
        received = hook.wait_for(2)
    assert len(received) == 2
    for r in received:
        assert r.headers["content-type"] == "application/json"
        assert verify_signature(r.body, SECRET, r.headers[SIGNATURE_HEADER.lower()])
        assert not verify_signature(r.body + b" ", SECRET, r.headers[SIGNATURE_HEADER.lower()])
    firing, resolved = (r.json() for r in received)
    assert firing["event"] == "alert.firing" and firing["state"] == "firing"
    assert firing["version"] == 1 and firing["id"] == "default:cost spike:1"
    assert firing["rule"]["name"] == "cost spike" and firing["rule"]["factor"] == 3.0
    assert firing["attribution"]["drivers"]["user"][0]["name"] == "user-whale"
    assert "user_id=user-whale" in firing["links"]["traces"]
    assert firing["value"] > firing["threshold"] and firing["sample_size"] >= 10
    assert resolved["event"] == "alert.resolved" and resolved["previous_state"] == "firing"
    assert received[0].headers["x-llmlens-delivery"] == "default:cost spike:1"
    assert _states(spiked_store) == [("cost spike", None, "firing"), ("cost spike", "firing", "resolved")]


def test_pending_then_firing_and_cooldown(spiked_store: Store) -> None:
    with WebhookReceiver() as hook:
        engine, dispatcher = _engine(spiked_store, hook.url, for_s=120, cooldown_s=3600)
        try:
            assert [t.state for t in engine.run_once(NOW - timedelta(minutes=3)).transitions] == ["pending"]
            assert engine.run_once(NOW - timedelta(minutes=2)).transitions == []  # held for 60 s only
            assert [t.state for t in engine.run_once(NOW).transitions] == ["firing"]
            assert [t.state for t in engine.run_once(NOW + timedelta(minutes=70)).transitions] == ["resolved"]
            assert dispatcher.flush(10)
        finally:
            dispatcher.close()
        received = hook.wait_for(2)
    # Pending is recorded but not sent (notifiers default to firing and resolved).
    assert [r.json()["event"] for r in received] == ["alert.firing", "alert.resolved"]
    assert [s for _, _, s in _states(spiked_store)] == ["pending", "firing", "resolved"]

    # Within the cooldown a new spike does not fire again.
    traffic = Traffic(seed=12)
    later = NOW + timedelta(minutes=90)
    for i in range(30):
        traffic.llm(later - timedelta(minutes=50) + timedelta(minutes=i * 1.5), user_id="user-whale", cost_usd=0.20)
    traffic.write(spiked_store)
    engine2 = AlertEngine(spiked_store, engine.settings)
    assert engine2.evaluate_all(later).firing
    assert engine2.run_once(later).transitions == []


def test_retries_with_backoff_then_one_delivery(spiked_store: Store) -> None:
    with WebhookReceiver(fail_first=2) as hook:
        engine, dispatcher = _engine(spiked_store, hook.url)
        try:
            engine.run_once(NOW)
            assert dispatcher.flush(10)
        finally:
            dispatcher.close()
        received = hook.wait_for(1)
        assert hook.attempts == 3
    assert len(received) == 1 and received[0].json()["event"] == "alert.firing"
    assert dispatcher.delivered == 1 and dispatcher.failed == 0


def test_slack_format(spiked_store: Store) -> None:
    with WebhookReceiver() as hook:
        settings = Settings(alerts=[], notifiers=[{"type": "slack", "url": hook.url}])
        engine = AlertEngine(spiked_store, settings)
        dispatcher = NotificationDispatcher(parse_notifiers(settings.notifiers))
        engine.dispatcher = dispatcher
        try:
            engine.run_once(NOW)
            assert dispatcher.flush(10)
        finally:
            dispatcher.close()
        (message,) = hook.wait_for(1)
    doc = message.json()
    assert "[FIRING] cost spike" in doc["text"] and "user-whale" in doc["text"]
    assert doc["blocks"][0]["type"] == "section"
    assert "/traces?" in doc["blocks"][1]["elements"][0]["text"]
    assert SIGNATURE_HEADER.lower() not in message.headers  # no secret configured


def test_racing_evaluators_fire_once(spiked_store: Store) -> None:
    with WebhookReceiver() as hook:
        engines = [_engine(spiked_store, hook.url) for _ in range(4)]
        barrier = threading.Barrier(len(engines))
        results: list[int] = []

        def run(engine: AlertEngine) -> None:
            barrier.wait()
            results.append(len(engine.run_once(NOW).transitions))

        threads = [threading.Thread(target=run, args=(e,)) for e, _ in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for _, dispatcher in engines:
            assert dispatcher.flush(10)
            dispatcher.close()
        received = hook.wait_for(1)
    assert sorted(results) == [0, 0, 0, 1]
    assert len(received) == 1
    assert _states(spiked_store) == [("cost spike", None, "firing")]


def test_rules_from_the_api_survive_in_the_store(spiked_store: Store) -> None:
    engine = AlertEngine(spiked_store, Settings())
    names = [r.name for r in engine.rules()]
    assert names == ["cost spike", "error rate", "p95 latency", "prompt drift"]
    from llmlens.alerts import parse_rule

    engine.history.save_rule(
        "whale watch", parse_rule({"name": "whale watch", "type": "cost_spike", "user": "user-whale"}), NOW
    )
    engine.history.save_rule("p95 latency", None, NOW)
    again = AlertEngine(spiked_store, Settings())
    assert [r.name for r in again.rules()] == ["cost spike", "error rate", "prompt drift", "whale watch"]
    assert again.rule("whale watch").scope.user == "user-whale"  # type: ignore[union-attr]
