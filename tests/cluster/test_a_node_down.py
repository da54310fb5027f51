"""One ClickHouse node stops while both llmlens servers ingest: the server on it answers 503 with
Retry-After (ingest, API) and a banner (pages) and acknowledges nothing; the server on the other node
keeps ingesting and answering. Once the node is back it catches up: every acknowledged event is there
once, the batches refused meanwhile are stored once when sent again, and the rollups equal a raw
recount on both nodes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tests.store.test_clickhouse_rollups import assert_rollups_equal_raw

from llmlens.store.clickhouse import ClickHouseStore

from ._cluster import NODES, wait_until
from .conftest import ClusterEnv
from .test_two_servers_on_a_cluster import _events

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow, pytest.mark.timeout(400)]

PROJECT = "outage"
PER_BATCH = 5  # LLM calls (each with a tool call and a feedback event)


@dataclass
class Sent:
    node: str
    tag: str
    status: int
    retry_after: str | None
    error: str = ""


@dataclass
class Ingest:
    """Batches sent without pause through one server; each answer kept."""

    env: ClusterEnv
    node: str
    sent: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with self.env.api(self.node, PROJECT) as api:
            # A client's pace: a few batches a second, so the refused ones can all be sent again later.
            while not self.stop.wait(0.2):
                tag = f"{self.node}-{len(self.sent)}"
                try:
                    answer = api.post("/api/v1/ingest", json=_events(tag, PER_BATCH))
                except httpx.TransportError as exc:  # no answer at all: as unacknowledged as a 503
                    self.sent.append(Sent(self.node, tag, 0, None, str(exc)))
                    continue
                error = "" if answer.status_code == 200 else answer.text
                self.sent.append(Sent(self.node, tag, answer.status_code, answer.headers.get("retry-after"), error))

    def acked(self) -> list[Sent]:
        return [s for s in list(self.sent) if s.status == 200]


def _count(env: ClusterEnv, node: str, query: str) -> Any:
    with env.api(node, PROJECT) as api:
        answer = api.post("/api/v1/sql", json={"query": query})
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"][0][0]


def test_a_node_stops_under_ingest_and_catches_up(cluster_env: ClusterEnv) -> None:
    env = cluster_env
    ch1 = env.cluster.nodes["ch1"]
    store_named = f"clickhouse://llmlens@127.0.0.1:{ch1.tcp_port}/llmlens"
    ingest = {node: Ingest(env, node) for node in NODES}
    threads = [threading.Thread(target=i.run, daemon=True) for i in ingest.values()]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: all(len(i.acked()) >= 3 for i in ingest.values()), "both servers acknowledge batches")

        ch1.stop()  # the first replica of the shard: the server on ch2 must fail over to its own node
        acked_by_ch2 = len(ingest["ch2"].acked())
        wait_until(
            lambda: any(s.status == 503 for s in ingest["ch1"].sent) and len(ingest["ch2"].acked()) >= acked_by_ch2 + 3,
            "the server on ch1 refuses batches while the one on ch2 keeps acknowledging them",
        )
        refused = [s for s in ingest["ch1"].sent if s.status == 503]
        assert all(s.retry_after == "5" for s in refused), refused[:2]
        assert store_named in refused[0].error, refused[0].error

        with env.api("ch1", PROJECT) as api:
            page = api.get("/latency", headers={"Accept": "text/html"})
            assert page.status_code == 503 and page.headers["retry-after"] == "5"
            assert "text/html" in page.headers["content-type"]
            assert "the store does not answer" in page.text and store_named in page.text
            answer = api.get("/api/v1/overview")
            assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
            assert store_named in answer.json()["error"]
        with env.api("ch2", PROJECT) as api:
            assert api.get("/api/v1/overview").status_code == 200
            assert api.get("/latency", headers={"Accept": "text/html"}).status_code == 200

        ch1.start()
        restarted_at = len(ingest["ch1"].sent)
        wait_until(
            lambda: any(s.status == 200 for s in ingest["ch1"].sent[restarted_at:]),
            "the server on ch1 acknowledges batches again once its node is back",
        )
    finally:
        for i in ingest.values():
            i.stop.set()
        for thread in threads:
            thread.join(timeout=60)

    sent = [s for i in ingest.values() for s in i.sent]
    unanswered = [s for s in sent if s.status != 200]
    assert all(s.status in (0, 503) for s in unanswered), {s.status for s in unanswered}
    assert any(s.node == "ch2" and s.status == 200 for s in sent[len(sent) // 2 :])
    # What was refused is sent again (through either server); so is one batch acknowledged during the outage.
    with env.api("ch1", PROJECT) as again:
        for s in unanswered:
            wait_until(
                lambda s=s: again.post("/api/v1/ingest", json=_events(s.tag, PER_BATCH)).status_code == 200,
                f"batch {s.tag} is accepted when sent again",
            )
        during = next(s for s in ingest["ch2"].acked()[acked_by_ch2:])
        assert again.post("/api/v1/ingest", json=_events(during.tag, PER_BATCH)).status_code == 200

    calls = len(sent) * PER_BATCH
    spans_per_node = f"SELECT count() FROM llmlens_spans_local WHERE project = '{PROJECT}'"
    for node in NODES:  # ch1 fetched what ch2 took while it was down
        wait_until(lambda node=node: env.cluster.local_count(node, spans_per_node) == 2 * calls, f"{node} caught up")
    for node in NODES:
        assert _count(env, node, "SELECT COUNT(*) FROM llm_logs") == calls, node
        assert _count(env, node, "SELECT COUNT(DISTINCT message_id) FROM llm_logs") == calls, node
        assert _count(env, node, "SELECT COUNT(DISTINCT feedback_id) FROM feedback_events") == calls, node
        assert _count(env, node, "SELECT COUNT(*) FROM feedback_events") == calls, node
        rolled = f"SELECT sum(calls) FROM llmlens_rollup_hour_local WHERE project = '{PROJECT}' AND kind_k = 'llm'"
        assert env.cluster.local_count(node, rolled) == calls, f"{node}'s own rollup rows"
    store = ClickHouseStore(env.cluster.url("ch1"))
    try:
        assert_rollups_equal_raw(store, "a cluster, after a node stopped under ingest and came back")
    finally:
        store.close()
