"""Two stateless llmlens servers in front of one ClickHouse: both ingest and answer the same, a budget
exceeded through one is enforced by the other's gateway, and although both evaluate the alert rules,
a webhook gets exactly one signed notification per transition."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from tests.alerts._evaluator import wait_for_evaluations
from tests.alerts._receiver import WebhookReceiver
from tests.alerts._traffic import Traffic, as_event, utc_now_minute
from tests.proxy._support import free_port
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

from llmlens.alerts import SIGNATURE_HEADER, verify_signature
from llmlens.store import open_store

pytestmark = pytest.mark.clickhouse

SECRET = "two-servers-secret"
HELLO = [{"role": "user", "content": "hello"}]
# Each concern in its own project, so the counts of one are not disturbed by the data of another.
ALERTS_PROJECT, BUDGET_PROJECT = "ops", "shop"


@dataclass
class Cluster:
    a: LLMLensServer
    b: LLMLensServer
    hook: WebhookReceiver
    upstream: FakeProvider


def _config(path: Path, hook_url: str) -> Path:
    path.write_text(
        f"""
alert_interval_s = 0.5

[budgets]
tiers = {{free = 1.0}}
default_tier = "free"

[[alerts]]
name = "cost spike"
type = "cost_spike"
factor = 3.0

[[notifiers]]
type = "webhook"
name = "ops"
url = "{hook_url}"
secret = "{SECRET}"
backoff_s = 0.1
"""
    )
    return path


def _alert_baseline(store_url: str, tmp_path: Path) -> None:
    """Eight days of steady traffic in the alerts project, written straight into ClickHouse."""
    now = utc_now_minute()
    traffic = Traffic(seed=41)
    traffic.baseline(now, until=now - timedelta(minutes=1))
    for span in traffic.spans:
        span.project = ALERTS_PROJECT
    store = open_store(store_url, tmp_path)
    try:
        traffic.write(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def cluster(clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("two-servers")
    store = clickhouse_url.rsplit("/", 1)[0] + "/two_servers"
    _alert_baseline(store, tmp)
    port = free_port()
    with ExitStack() as stack:
        hook = stack.enter_context(WebhookReceiver())
        upstream = stack.enter_context(FakeProvider(port=port))
        config = _config(tmp / "llmlens.toml", hook.url)
        args = ["--store", store, "--config", str(config), "--upstream", f"openai=http://127.0.0.1:{port}/v1"]
        a = stack.enter_context(LLMLensServer(tmp / "a", args=args))
        b = stack.enter_context(LLMLensServer(tmp / "b", args=args))
        yield Cluster(a, b, hook, upstream)


def _calls(server_no: int, n: int) -> list[dict[str, object]]:
    return [
        {
            "type": "llm",
            "trace_id": f"{server_no:08x}{i:024x}",
            "span_id": f"{server_no:04x}{i:012x}",
            "model": "gpt-4o-mini",
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "cost_usd": 0.01,
            "latency_ms": 100 + i,
            "user_id": f"user-{i % 3}",
            "feature": "chat",
        }
        for i in range(n)
    ]


def test_both_servers_ingest_into_one_store(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    from_a, from_b = _calls(1, 300), _calls(2, 200)
    assert a.ingest({"events": from_a})["rejected"] == []
    assert b.ingest({"events": from_b})["rejected"] == []
    # A client that retries through the other server (its first answer was lost) adds nothing.
    assert b.ingest({"events": from_a[:50]})["rejected"] == []
    for srv in (a, b):
        rows = srv.sql("SELECT COUNT(*) AS n, SUM(cost_usd) AS cost FROM llm_logs")
        assert rows[0]["n"] == 500
        assert rows[0]["cost"] == pytest.approx(5.0)
        per_user = srv.sql("SELECT user_id, COUNT(*) AS n FROM llm_logs GROUP BY user_id ORDER BY user_id")
        assert [r["n"] for r in per_user] == [167, 167, 166]


def _gateway_call(srv: LLMLensServer, user: str) -> Any:
    client = openai.OpenAI(base_url=srv.url + "/proxy/openai/v1", api_key="sk-test", max_retries=0)
    return client.chat.completions.create(
        model="gpt-4o",
        messages=HELLO,  # type: ignore[arg-type]
        extra_headers={"X-LLMLens-User-Id": user, "X-LLMLens-Project": BUDGET_PROJECT},
    )


def test_spend_ingested_through_one_server_is_enforced_by_the_other(cluster: Cluster) -> None:
    heavy = {"type": "llm", "model": "gpt-4o", "user_id": "user-heavy", "cost_usd": 1.25, "prompt": "p"}
    light = {"type": "llm", "model": "gpt-4o", "user_id": "user-light", "cost_usd": 0.25, "prompt": "p"}
    cluster.a.ingest([heavy, light], headers={"X-LLMLens-Project": BUDGET_PROJECT})

    with pytest.raises(openai.RateLimitError) as refused:
        _gateway_call(cluster.b, "user-heavy")
    error = refused.value.response.json()["error"]
    assert error["code"] == "budget_exceeded" and "user-heavy" in error["message"]
    assert cluster.upstream.requests == []  # refused by server B without reaching the provider

    answer = _gateway_call(cluster.b, "user-light")  # under its limit: served
    assert answer.choices[0].message.content
    assert len(cluster.upstream.requests) == 1
    for srv in (cluster.a, cluster.b):
        status = httpx.get(
            srv.url + "/api/v1/budgets/status",
            params={"user_id": "user-heavy"},
            headers={"X-LLMLens-Project": BUDGET_PROJECT},
        ).json()
        assert "1.25" in str(status)


def _evaluate_at_once(*servers: LLMLensServer) -> int:
    """POST /api/v1/alerts/evaluate to every server at once; the number of transitions they claimed."""
    barrier = threading.Barrier(len(servers))
    claimed: list[int] = []

    def evaluate(srv: LLMLensServer) -> None:
        barrier.wait()
        doc = httpx.post(srv.url + "/api/v1/alerts/evaluate", timeout=60).json()
        claimed.append(sum(1 for t in doc["transitions"] if t["project"] == ALERTS_PROJECT))

    threads = [threading.Thread(target=evaluate, args=(srv,)) for srv in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(claimed) == len(servers)
    return sum(claimed)


def _evaluations_on_both(cluster: Cluster, more: int) -> list[dict[str, Any]]:
    """Both servers' alerts documents once each has evaluated `more` more times and sent what it had to."""
    return [wait_for_evaluations(srv.url, more, project=ALERTS_PROJECT) for srv in (cluster.a, cluster.b)]


def test_one_notification_per_transition_although_both_servers_evaluate(cluster: Cluster) -> None:
    hook = cluster.hook
    _evaluations_on_both(cluster, 3)  # over the baseline alone: nothing fires
    assert hook.received == []

    whale = Traffic(seed=42)
    now = utc_now_minute()
    for i in range(30):
        whale.llm(now - timedelta(minutes=50) + timedelta(minutes=i * 1.5), user_id="user-whale", cost_usd=0.10)
    cluster.a.ingest([as_event(s) for s in whale.spans], headers={"X-LLMLens-Project": ALERTS_PROJECT})
    # Besides their schedules, make both servers evaluate at the same moment: they race for the transition.
    claimed = _evaluate_at_once(cluster.a, cluster.b)
    assert claimed in (0, 1)  # 0 when a scheduled evaluation had already claimed it

    (firing,) = hook.wait_for(1, timeout_s=30)
    # Both servers keep evaluating (and racing to claim) while it fires: nothing more.
    for doc in _evaluations_on_both(cluster, 3):
        assert [e["firing"] for e in doc["last_run"]["evaluations"] if e["rule"] == "cost spike"] == [True]
    assert len(hook.received) == 1
    assert verify_signature(firing.body, SECRET, firing.headers[SIGNATURE_HEADER.lower()])
    payload = firing.json()
    assert payload["event"] == "alert.firing" and payload["id"] == f"{ALERTS_PROJECT}:cost spike:1"
    assert payload["attribution"]["drivers"]["user"][0]["name"] == "user-whale"

    # Both servers tell the same story: one firing transition, active.
    for srv in (cluster.a, cluster.b):
        doc = httpx.get(srv.url + "/api/v1/alerts", headers={"X-LLMLens-Project": ALERTS_PROJECT}).json()
        assert [(a["rule"], a["state"]) for a in doc["active"]] == [("cost spike", "firing")]
        assert [(h["rule"], h["seq"], h["state"]) for h in doc["history"]] == [("cost spike", 1, "firing")]

    # Deleting the rule (in the alerts project: rules are per project) through one server resolves the
    # alert once: the second and last notification.
    deleted = httpx.delete(
        cluster.b.url + "/api/v1/alerts/rules/cost spike", headers={"X-LLMLens-Project": ALERTS_PROJECT}
    )
    assert deleted.status_code == 200, deleted.text
    hook.wait_for(2, timeout_s=30)
    _evaluations_on_both(cluster, 3)  # and nothing after it
    assert [r.json()["event"] for r in hook.received] == ["alert.firing", "alert.resolved"]
    assert all(verify_signature(r.body, SECRET, r.headers[SIGNATURE_HEADER.lower()]) for r in hook.received)
