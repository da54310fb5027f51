"""Retention: a default in days, per-project overrides, enforced by the background job (and on demand)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from tests.security._support import llmlens_cli
from tests.support.llmlens_server import LLMLensServer

from llmlens.ingest.retention import enforce_retention, retention_cutoffs
from llmlens.model import Feedback, Span
from llmlens.store.duckdb import DuckDBStore

DAY = 86_400


def _event(days_old: float, tag: str) -> dict[str, object]:
    return {
        "type": "llm",
        "model": "gpt-4o",
        "prompt": tag,
        "timestamp": time.time() - days_old * DAY,
        "message_id": f"{tag}-m",
    }


def _feedback(days_old: float, tag: str) -> dict[str, object]:
    return {
        "type": "feedback",
        "message_id": f"{tag}-m",
        "feedback_type": "thumbs_up",
        "feedback_id": tag,
        "timestamp": time.time() - days_old * DAY,
    }


def test_cutoffs() -> None:
    now = dt.datetime(2026, 1, 31)
    cutoffs = retention_cutoffs(["a", "b", "c"], 30, {"b": 2, "c": 0}, now)
    assert cutoffs == {"a": dt.datetime(2026, 1, 1), "b": dt.datetime(2026, 1, 29)}
    assert retention_cutoffs(["a"], 0, {}, now) == {}


def test_enforce_retention_on_a_store(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    now_us = int(time.time() * 1e6)
    spans = [
        Span(trace_id="1" * 32, span_id=f"{i + 1:016x}", kind="llm", project=p, start_us=now_us - d * DAY * 1_000_000)
        for i, (p, d) in enumerate([("a", 1), ("a", 10), ("b", 1), ("b", 10)])
    ]
    fb = [
        Feedback(
            feedback_id="f1",
            message_id="m",
            feedback_type="thumbs_up",
            project="a",
            timestamp_us=now_us - 10 * DAY * 1_000_000,
        )
    ]
    store.write(spans, fb)
    run = enforce_retention(store, 5, {"b": 0})
    assert set(run.cutoffs) == {"a"}
    rows = store.query("SELECT project, count(*) FROM spans GROUP BY project ORDER BY project").rows
    assert rows == [["a", 1], ["b", 2]]
    assert store.query("SELECT count(*) FROM feedback_events").rows == [[0]]
    store.close()


def test_the_server_enforces_retention_per_project(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert llmlens_cli("projects", "create", "short", "--retention-days", "3", "--data", str(data)).returncode == 0
    assert llmlens_cli("projects", "create", "forever", "--retention-days", "0", "--data", str(data)).returncode == 0
    listed = llmlens_cli("projects", "list", "--data", str(data)).stdout
    assert "short\tretention=3" in listed and "forever\tretention=0" in listed
    with LLMLensServer(data, env={"LLMLENS_RETENTION_DAYS": "30"}) as srv:
        for project in ("default", "short", "forever"):
            events = [_event(d, f"{project}-{d}") for d in (1, 10, 100)] + [_feedback(100, f"{project}-100")]
            assert srv.ingest(events, headers={"X-LLMLens-Project": project})["accepted"] == 4
        with srv.client() as c:
            r = c.post("/api/v1/admin/retention")
            assert r.status_code == 200, r.text
            assert set(r.json()["cutoffs"]) == {"default", "short"}

        def kept(project: str) -> list[str]:
            rows = srv.sql("SELECT prompt FROM llm_logs ORDER BY timestamp", headers={"X-LLMLens-Project": project})
            return [str(r["prompt"]) for r in rows]

        assert kept("default") == ["default-10", "default-1"]
        assert kept("short") == ["short-1"]
        assert kept("forever") == ["forever-100", "forever-10", "forever-1"]
        fb = srv.sql("SELECT count(*) AS n FROM feedback_events", headers={"X-LLMLens-Project": "default"})
        assert fb == [{"n": 0}]
    # the job also ran by itself at start-up: restart with a shorter default and look again
    with LLMLensServer(data, env={"LLMLENS_RETENTION_DAYS": "5"}) as srv:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = srv.sql("SELECT prompt FROM llm_logs", headers={"X-LLMLens-Project": "default"})
            if [r["prompt"] for r in rows] == ["default-1"]:
                break
            time.sleep(0.1)
        assert [r["prompt"] for r in rows] == ["default-1"]
