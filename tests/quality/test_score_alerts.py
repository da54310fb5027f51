"""Alert rules on scores (`type = "score"`) through a real server: the mean of a score below a threshold per
feature or template version, or a drop against its baseline; bad rules named by field."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

HOUR = 3600.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    env = {"LLMLENS_QUALITY": '{"inferred": false}', "LLMLENS_ALERT_INTERVAL_S": "0"}
    with LLMLensServer(tmp_path_factory.mktemp("score-alerts"), env=env) as srv:
        yield srv


def _scored_calls(srv: LLMLensServer, project: str, values: list[float], *, ago_s: float, **fields: Any) -> None:
    headers = {"X-LLMLens-Project": project}
    events, scores = [], []
    for value in values:
        span_id = uuid.uuid4().hex[:16]
        events.append(
            {
                "type": "llm",
                "trace_id": uuid.uuid4().hex,
                "span_id": span_id,
                "timestamp": time.time() - ago_s,
                "model": "gpt-4o",
                "prompt": "q",
                "response": "a",
                **fields,
            }
        )
        scores.append({"span_id": span_id, "name": "helpfulness", "value": value, "source": "evaluator"})
    assert srv.ingest(events, headers=headers)["rejected"] == []
    with srv.client() as c:
        assert c.post("/api/v1/scores", json=scores, headers=headers).json()["accepted"] == len(values)


def _evaluate(srv: LLMLensServer, project: str, rule: dict[str, Any]) -> dict[str, Any]:
    headers = {"X-LLMLens-Project": project}
    with srv.client() as c:
        r = c.post("/api/v1/alerts/rules", json=rule, headers=headers)
        assert r.status_code == 201, r.text
        evaluations = c.post("/api/v1/alerts/evaluate?dry_run=1", json={}, headers=headers).json()["evaluations"]
    found: dict[str, Any] = next(e for e in evaluations if e["rule"] == rule["name"])
    return found


def test_mean_below_a_threshold_per_feature(server: LLMLensServer) -> None:
    project = f"alerts-{uuid.uuid4().hex[:6]}"
    _scored_calls(server, project, [0.9, 0.8, 0.95, 0.85], ago_s=600, feature="search")
    _scored_calls(server, project, [0.2, 0.3, 0.1, 0.25], ago_s=600, feature="summaries")
    rule = {"name": "unhelpful", "type": "score", "score": "helpfulness", "min_mean": 0.5, "min_samples": 3}
    found = _evaluate(server, project, rule)
    assert found["firing"] and found["unit"] == "score" and found["value"] == pytest.approx(0.2125)
    assert "summaries 0.212" in found["message"] and "search" not in found["message"]
    assert [g["name"] for g in found["attribution"]["groups"]] == ["summaries"]
    assert "feature=summaries" in found["links"]["traces"]


def test_a_drop_against_the_baseline_per_template_version(server: LLMLensServer) -> None:
    project = f"alerts-{uuid.uuid4().hex[:6]}"
    template = {"template_id": "answer", "template_version": "v2"}
    _scored_calls(server, project, [0.9, 0.92, 0.88, 0.9], ago_s=30 * HOUR, **template)
    _scored_calls(server, project, [0.6, 0.62, 0.58, 0.6], ago_s=600, **template)
    _scored_calls(server, project, [0.7, 0.7, 0.7], ago_s=30 * HOUR, template_id="steady", template_version="v1")
    _scored_calls(server, project, [0.68, 0.7, 0.72], ago_s=600, template_id="steady", template_version="v1")
    rule = {
        "name": "helpfulness drop",
        "type": "score",
        "score": "helpfulness",
        "max_drop": 0.2,
        "group_by": "template",
        "min_samples": 3,
    }
    found = _evaluate(server, project, rule)
    assert found["firing"]
    groups = found["attribution"]["groups"]
    assert [(g["name"], g["mean"], g["baseline_mean"]) for g in groups] == [("answer@v2", 0.6, 0.9)]
    assert "answer@v2 0.600 (was 0.900)" in found["message"]
    quiet = _evaluate(server, project, {**rule, "name": "small drop", "max_drop": 0.4})
    assert not quiet["firing"]


def test_bad_score_rules_are_named(server: LLMLensServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        for body, words in (
            ({"name": "x", "type": "score", "min_mean": 0.5}, "score must name"),
            ({"name": "x", "type": "score", "score": "helpfulness"}, "min_mean"),
            ({"name": "x", "type": "score", "score": "h", "min_mean": 0.5, "group_by": "user"}, "group_by"),
        ):
            r = c.post("/api/v1/alerts/rules", json=body)
            assert r.status_code in (400, 422) and words in r.json()["error"], r.text
