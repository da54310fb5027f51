"""Inferred feedback end to end: generated sessions with known labels go into a real server over HTTP; its
background service finds the retried, edited and abandoned calls; precision is measured against the labels
and must reach what docs/quality.md states. On DuckDB and on ClickHouse."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.quality._generated_sessions import Generated, generate, precision_recall
from tests.support.llmlens_server import LLMLensServer

# What docs/quality.md states for these generated sessions (with the default thresholds).
PRECISION_AT_LEAST = {"retry": 0.9, "edit": 0.9, "abandon": 0.7}
SESSIONS = 400
QUALITY = {"session_idle_s": 900, "scan_interval_s": 0.2}


def _ingest(server: LLMLensServer, events: list[dict[str, Any]], project: str) -> None:
    for start in range(0, len(events), 1000):
        doc = server.ingest(events[start : start + 1000], headers={"X-LLMLens-Project": project})
        assert doc["rejected"] == []


def wait_for_scans(server: LLMLensServer, after: int, timeout_s: float = 60.0) -> int:
    """Wait until the service has finished `after` more scans than now (so one began after this call) and
    has no session left waiting: everything sent before this call has been read."""
    with server.client() as c:
        start = c.get("/api/v1/scores/inferred").json()
        assert start["enabled"], "the inferred-feedback service should run by default"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            doc = c.get("/api/v1/scores/inferred").json()
            assert doc["failures"] == 0, server.log()
            if doc["scans"] >= start["scans"] + after and doc["pending_sessions"] == 0:
                return int(doc["scans"])
            time.sleep(0.05)
    raise AssertionError(f"the service did not finish reading in {timeout_s} s: {doc}\n{server.log()}")


def _inferred(server: LLMLensServer, project: str) -> list[dict[str, Any]]:
    return server.sql(
        "SELECT span_id, trace_id, message_id, name, value, data_type, source, evaluator, comment, metadata "
        "FROM scores WHERE source = 'inferred'",
        headers={"X-LLMLens-Project": project},
    )


@pytest.fixture(scope="module", params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def backend_args(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    if request.param == "duckdb":
        yield []
    else:
        ch_url: str = request.getfixturevalue("clickhouse_url")
        yield ["--store", ch_url.rsplit("/", 1)[0] + "/inferred_feedback"]


@pytest.fixture(scope="module")
def scanned(
    backend_args: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LLMLensServer, Generated, Generated]]:
    now = time.time()
    main = generate(sessions=SESSIONS, now=now, seed=7)
    other = generate(sessions=20, now=now, seed=99, prefix="other")
    data = tmp_path_factory.mktemp("inferred")
    env = {"LLMLENS_QUALITY": json.dumps(QUALITY)}
    with LLMLensServer(data, args=backend_args, env=env) as server:
        _ingest(server, main.events, "shop")
        _ingest(server, other.events, "other")
        wait_for_scans(server, after=2)
        yield server, main, other


def test_precision_of_inferred_signals_meets_the_stated_bar(
    scanned: tuple[LLMLensServer, Generated, Generated],
) -> None:
    server, generated, _ = scanned
    rows = _inferred(server, "shop")
    predicted = {(r["span_id"], r["name"]) for r in rows}
    measured = {}
    for name, bar in PRECISION_AT_LEAST.items():
        precision, recall = precision_recall(predicted, generated.labels, name)
        measured[name] = (round(precision, 3), round(recall, 3))
        assert precision >= bar, f"{name}: precision {precision:.3f} < {bar} (recall {recall:.3f}); all: {measured}"
        assert recall > 0.5, f"{name}: recall {recall:.3f}; all: {measured}"


def test_inferred_scores_carry_the_rule_and_the_call(scanned: tuple[LLMLensServer, Generated, Generated]) -> None:
    server, _, _ = scanned
    rows = _inferred(server, "shop")
    assert {r["name"] for r in rows} == {"retry", "edit", "abandon"}
    calls = {
        r["span_id"]: r
        for r in server.sql("SELECT span_id, trace_id, message_id FROM llm_logs", headers={"X-LLMLens-Project": "shop"})
    }
    rules = {"retry": {"regenerated", "asked_again"}, "edit": {"edited_message"}, "abandon": {"left_after_answer"}}
    for r in rows:
        assert (r["value"], r["data_type"], r["source"]) == (1.0, "boolean", "inferred")
        assert r["evaluator"] == "llmlens.inferred_feedback"
        call = calls[r["span_id"]]  # on the call that was retried, edited or abandoned
        assert (r["trace_id"], r["message_id"]) == (call["trace_id"], call["message_id"])
        metadata = json.loads(r["metadata"]) if isinstance(r["metadata"], str) else r["metadata"]
        assert metadata["rule"] in rules[r["name"]]
        assert r["comment"].startswith(f"{r['name']} ({metadata['rule']}):")
    assert len({(r["span_id"], r["name"]) for r in rows}) == len(rows), "one score per call and signal"


def test_each_project_sees_only_its_own_inferred_scores(scanned: tuple[LLMLensServer, Generated, Generated]) -> None:
    server, _, other = scanned
    other_rows = _inferred(server, "other")
    assert other_rows, "the second project's sessions are scanned too"
    assert {r["span_id"] for r in other_rows} <= set(other.labels)
    assert not {r["span_id"] for r in _inferred(server, "shop")} & set(other.labels)


def test_rescanning_after_a_restart_duplicates_nothing(scanned: tuple[LLMLensServer, Generated, Generated]) -> None:
    server, _, _ = scanned
    before = sorted((r["span_id"], r["name"]) for r in _inferred(server, "shop"))
    server.stop()
    server.start()  # a new service: it reads every ended session of the last day again
    wait_for_scans(server, after=2)
    after = sorted((r["span_id"], r["name"]) for r in _inferred(server, "shop"))
    assert after == before
    count = server.sql(
        "SELECT count(*) AS n FROM scores WHERE source = 'inferred'", headers={"X-LLMLens-Project": "shop"}
    )
    assert count == [{"n": len(before)}]


def test_a_bad_quality_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    server = LLMLensServer(tmp_path, env={"LLMLENS_QUALITY": json.dumps({"retry_similarity": 1.5})})
    with pytest.raises(RuntimeError, match=r"quality\.retry_similarity must be between 0 and 1"):
        server.start()
    server.stop()


def test_the_service_can_be_turned_off(tmp_path: Path) -> None:
    with LLMLensServer(tmp_path, env={"LLMLENS_QUALITY": json.dumps({"inferred": False})}) as server:
        assert httpx.get(f"{server.url}/api/v1/scores/inferred").json()["enabled"] is False


def test_pages_show_inferred_signals_as_a_share_of_calls(scanned: tuple[LLMLensServer, Generated, Generated]) -> None:
    server, generated, _ = scanned
    headers, params = {"X-LLMLens-Project": "shop"}, {"range": "24h"}
    doc = httpx.get(f"{server.url}/api/v1/feedback", params=params, headers=headers).json()["scores"]
    retried = {r["span_id"] for r in _inferred(server, "shop") if r["name"] == "retry"}
    assert doc["calls"] == generated.llm_calls
    overall = {c["name"]: c for c in doc["overall"]}
    assert overall["retry"]["count"] == len(retried)
    assert overall["retry"]["per_call"] == pytest.approx(len(retried) / generated.llm_calls)
    html = httpx.get(f"{server.url}/feedback", params=params, headers=headers).text
    section = html.split('data-group="scores-feature"', 1)[1].split("</section>", 1)[0]
    for row in doc["by_feature"]:
        (cell,) = [c for c in row["scores"] if c["name"] == "retry"]
        shown = (
            section.split(f'<tr data-key="{row["key"]}">', 1)[1].split('data-score="retry"', 1)[1].split("</td>", 1)[0]
        )
        assert f"{100 * cell['per_call']:.1f} % <small" in shown and f"of calls, n={cell['count']}" in shown, shown
