"""Datasets through a real server: made from trace-list filters ("thumbs-down calls of code_review in the last
7 days", "calls scored under 0.5"), from JSON Lines and CSV uploads (bad lines refused by index), from the
SDK; versioned when their items change; kept per project. The trace list takes the score filter too."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.quality._quality_env import BACKENDS, QualityEnv, new_id, quality_server, store_args
from tests.support.fake_provider import FakeProvider

import llmlens
from llmlens.sdk import _internal

DAY = 86_400.0


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QualityEnv]:
    with (
        FakeProvider() as fp,
        quality_server(
            tmp_path_factory.mktemp("datasets"), fp, args=store_args(request, "quality_datasets")
        ) as quality,
    ):
        yield quality


def _call(q: QualityEnv, feature: str, question: str, *, ago_s: float = 60.0, **extra: Any) -> dict[str, str]:
    ids = {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16], "message_id": new_id("msg")}
    q.ingest(
        [
            {
                "type": "llm",
                **ids,
                "timestamp": time.time() - ago_s,
                "model": "gpt-4o",
                "provider": "openai",
                "feature": feature,
                "input_messages": [
                    {"role": "system", "content": "You review code."},
                    {"role": "user", "content": question},
                ],
                "response": f"Answer to {question}",
                "temperature": 0.3,
                "max_tokens": 300,
                "latency_ms": 800.0,
                **extra,
            }
        ]
    )
    return ids


def _thumbs_down(q: QualityEnv, message_id: str) -> None:
    q.ingest([{"type": "feedback", "message_id": message_id, "feedback_type": "thumbs_down"}])


def test_a_dataset_from_thumbs_down_calls_of_a_feature_in_the_last_7_days(env: QualityEnv) -> None:
    q = env.in_project(new_id("ds-filter"))
    bad1 = _call(q, "code_review", "Review the diff for bug 1")
    bad2 = _call(q, "code_review", "Review the diff for bug 2")
    _call(q, "code_review", "Review the diff, liked")
    old = _call(q, "code_review", "Review an old diff", ago_s=10 * DAY)
    chat = _call(q, "chat", "Hello there")
    for ids in (bad1, bad2, old, chat):
        _thumbs_down(q, ids["message_id"])
    doc = q.post(
        "/api/v1/datasets",
        {"name": "review-misses", "filter": {"feature": "code_review", "feedback": "thumbs_down", "range": "7d"}},
    )
    assert (doc["accepted"], doc["version"]) == (2, 1)
    got = q.get("/api/v1/datasets/review-misses")
    sources = {i["source"]["span_id"] for i in got["items_list"]}
    assert sources == {bad1["span_id"], bad2["span_id"]}
    item = next(i for i in got["items_list"] if i["source"]["span_id"] == bad1["span_id"])
    assert item["messages"][-1] == {"role": "user", "content": "Review the diff for bug 1"}
    assert item["params"] == {"temperature": 0.3, "max_tokens": 300}
    assert item["source"]["output"] == "Answer to Review the diff for bug 1" and "expected_output" not in item
    assert item["metadata"]["feature"] == "code_review"
    # The same filter again changes nothing: no new version.
    again = q.post(
        "/api/v1/datasets",
        {"name": "review-misses", "filter": {"feature": "code_review", "feedback": "thumbs_down", "range": "7d"}},
    )
    assert (again["changed"], again["version"]) == (0, 1)
    # The page's form makes one too, from the same flat fields as the trace list's URL.
    with q.client() as c:
        r = c.post(
            "/datasets",
            data={"name": "from-form", "feature": "code_review", "feedback": "thumbs_down"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/datasets/from-form")
        assert c.get("/api/v1/datasets/from-form").json()["items"] == 2
        assert "Review the diff for bug 2" in c.get("/datasets/from-form").text


def test_a_dataset_of_calls_scored_under_a_threshold(env: QualityEnv) -> None:
    q = env.in_project(new_id("ds-score"))
    calls = [_call(q, "support", f"Question {i}") for i in range(3)]
    scores = [
        {"span_id": c["span_id"], "name": "helpfulness", "value": v}
        for c, v in zip(calls, (0.2, 0.4, 0.9), strict=True)
    ]
    assert q.post("/api/v1/scores", scores)["accepted"] == 3
    doc = q.post(
        "/api/v1/datasets", {"name": "unhelpful", "filter": {"score": "helpfulness<0.5"}, "expected_from_output": True}
    )
    items = q.get("/api/v1/datasets/unhelpful")["items_list"]
    assert doc["accepted"] == 2 and {i["source"]["span_id"] for i in items} == {
        calls[0]["span_id"],
        calls[1]["span_id"],
    }
    assert {i["expected_output"] for i in items} == {"Answer to Question 0", "Answer to Question 1"}
    # The trace list takes the same score filter.
    traces = q.get("/api/v1/traces", range="1d", score="helpfulness<0.5")["traces"]
    assert {t["trace_id"] for t in traces} == {calls[0]["trace_id"], calls[1]["trace_id"]}
    with q.client() as c:
        r = c.post("/api/v1/datasets", json={"name": "x", "filter": {"score": "helpfulness about 0.5"}})
        assert r.status_code == 400 and "score must be NAME<VALUE" in r.json()["error"]
        r = c.get("/api/v1/traces", params={"score": "nope"})
        assert r.status_code == 400 and "score" in r.json()["error"]


def test_uploads_and_versions(env: QualityEnv) -> None:
    q = env.in_project(new_id("ds-upload"))
    lines = [
        {"input": "What is 2 + 2?", "expected_output": "4", "metadata": {"topic": "maths"}},
        {"expected_output": "no input"},
        {"messages": [{"role": "user", "content": "Capital of France?"}], "expected_output": "Paris"},
    ]
    with q.client() as c:
        r = c.post(
            "/api/v1/datasets/quiz/upload",
            content="\n".join(json.dumps(x) for x in lines).encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["accepted"] == 2 and doc["version"] == 1
        assert [x["index"] for x in doc["rejected"]] == [1] and "input" in doc["rejected"][0]["error"]
        csv_text = "input,expected_output,topic\nWho wrote Hamlet?,Shakespeare,literature\n,empty,none\n"
        r = c.post("/api/v1/datasets/quiz/upload", content=csv_text.encode(), headers={"Content-Type": "text/csv"})
        doc = r.json()
        assert doc["accepted"] == 1 and doc["version"] == 2 and [x["index"] for x in doc["rejected"]] == [1]
        r = c.post("/api/v1/datasets/quiz/upload", content=b"<xml/>", headers={"Content-Type": "application/xml"})
        assert r.status_code == 415
        latest = c.get("/api/v1/datasets/quiz").json()
        assert latest["items"] == 3 and [h["version"] for h in latest["history"]] == [1, 2]
        hamlet = next(i for i in latest["items_list"] if i["expected_output"] == "Shakespeare")
        assert hamlet["metadata"] == {"topic": "literature"}
        assert len(c.get("/api/v1/datasets/quiz", params={"version": 1}).json()["items_list"]) == 2
        r = c.delete(f"/api/v1/datasets/quiz/items/{hamlet['id']}")
        assert r.status_code == 200 and r.json()["version"] == 3
        assert c.get("/api/v1/datasets/quiz").json()["items"] == 2
        assert c.post("/api/v1/datasets", json={"name": "bad name!"}).status_code == 400
        # Another project sees none of it.
        elsewhere = {"X-LLMLens-Project": new_id("ds-other")}
        assert c.get("/api/v1/datasets/quiz", headers=elsewhere).status_code == 404
        assert c.get("/api/v1/datasets", headers=elsewhere).json()["datasets"] == []


def test_items_from_the_sdk(env: QualityEnv) -> None:
    project = new_id("ds-sdk")
    before = _internal.internal_error_count()
    llmlens.init(url=env.server.url, project=project)
    try:
        first = llmlens.add_dataset_items(
            "from-app", [{"input": "Translate 'chat' to English", "expected_output": "cat"}]
        )
        second = llmlens.add_dataset_items("from-app", [{"input": "Translate 'chien'", "expected_output": "dog"}])
        refused = llmlens.add_dataset_items("from-app", [{"colour": "red"}])
    finally:
        llmlens.shutdown(timeout=5)
    assert (first, second) == (1, 2)
    assert refused == 2  # nothing new: the version stays, the refusal is logged
    assert _internal.internal_error_count() == before
    items = env.in_project(project).get("/api/v1/datasets/from-app")["items_list"]
    assert sorted(i["expected_output"] for i in items) == ["cat", "dog"]
    assert llmlens.add_dataset_items("from-app", [{"input": "x"}]) is None  # not initialised: a no-op
