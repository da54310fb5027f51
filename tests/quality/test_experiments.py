"""Experiments through a real server: a dataset × two variants (one per provider wire format) × evaluators, run
through the replay machinery; the result page's table (per variant mean and interval of each score, cost,
latency p50/p95, win rate and paired test against the baseline), outputs side by side with a diff; the
`llmlens experiment run` command prints the same table and exits 1 when a variant is significantly worse;
a cost cap stops a run; other projects see nothing."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.quality._quality_env import BACKENDS, JUDGE_MODEL, QualityEnv, new_id, quality_server, store_args, wait_for
from tests.support.fake_provider import FakeProvider

QUESTIONS = [
    "What is the capital of France?",
    "Which river flows through Vienna and Budapest?",
    "Name the largest planet of the solar system",
    "Who painted the ceiling of the Sistine Chapel in Rome?",
    "What gas do plants absorb from the air?",
    "How many continents are there on Earth today?",
]


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QualityEnv]:
    with (
        FakeProvider() as fp,
        quality_server(
            tmp_path_factory.mktemp("experiments"), fp, args=store_args(request, "quality_experiments")
        ) as quality,
    ):
        fp.judge_models = {JUDGE_MODEL}
        yield quality


@pytest.fixture(scope="module")
def quiz(env: QualityEnv) -> QualityEnv:
    q = env.in_project(new_id("exp"))
    items = [{"input": question, "expected_output": f"Fake reply to: {question}"} for question in QUESTIONS]
    assert q.post("/api/v1/datasets/quiz/items", items)["accepted"] == len(QUESTIONS)
    return q


def _finished(q: QualityEnv, ident: str) -> dict[str, Any]:
    doc: dict[str, Any] = wait_for(lambda: q.get(f"/api/v1/experiments/{ident}"), lambda d: d["finished"], 60.0)
    return doc


def _cli(q: QualityEnv, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "llmlens.cli",
        "experiment",
        "run",
        "quiz",
        "--url",
        q.server.url,
        "--project",
        q.project,
    ]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, check=False)


def test_two_variants_give_the_table_and_the_outputs_side_by_side(quiz: QualityEnv) -> None:
    q = quiz
    started = q.post(
        "/api/v1/experiments",
        {
            "dataset": "quiz",
            "variants": [{"model": "gpt-4o"}, {"model": "claude-3-5-haiku-latest"}],
            "evaluators": ["helpfulness", "correctness", "json_valid"],
        },
        expect=202,
    )
    assert started["url"] == f"/experiments/{started['id']}"
    doc = _finished(q, started["id"])
    assert (doc["status"], doc["done"], doc["total"]) == ("done", 12, 12)
    results = doc["results"]
    assert set(results["score_names"]) == {"helpfulness", "correctness", "json_valid"}
    base, other = results["variants"]
    assert (base["name"], base["baseline"], other["name"]) == ("gpt-4o", True, "claude-3-5-haiku-latest")
    for v in (base, other):
        assert (v["calls"], v["errors"]) == (6, 0)
        assert v["cost_usd"] > 0 and v["judge_cost_usd"] > 0 and v["latency_p50_ms"] <= v["latency_p95_ms"]
        scores = {s["name"]: s for s in v["scores"]}
        assert scores["correctness"]["mean"] == 1.0  # both stand-ins say exactly the expected answer
        assert scores["json_valid"]["mean"] == 0.0
        helpful = scores["helpfulness"]
        failed = q.sql("SELECT name, error_message, response FROM spans WHERE kind = 'evaluator' AND status = 'error'")
        assert helpful["n"] == 6, f"{v['name']}: {helpful}; evaluator errors: {failed}"
        assert helpful["ci_low"] < helpful["mean"] < helpful["ci_high"]
    versus = {s["name"]: s for s in other["scores"]}["helpfulness"]
    assert (versus["paired"], versus["ties"], versus["win_rate"]) == (6, 6, 0.5)
    assert versus["significant"] is False and versus["worse"] is False and results["worse"] == []
    # Both wire formats were used, and each output is a span of the experiment's trace with its scores.
    paths = {r.path for r in q.fp.requests if r.json and r.json.get("model") in ("gpt-4o", "claude-3-5-haiku-latest")}
    assert paths == {"/v1/chat/completions", "/v1/messages"}
    spans = q.sql(f"SELECT feature, replay_of FROM spans WHERE trace_id = '{doc['run_trace_id']}' AND kind = 'llm'")
    assert len(spans) == 12 and {s["feature"] for s in spans} == {"llmlens.experiment"}
    assert all(s["replay_of"].startswith("item:") for s in spans)
    stored = q.sql(f"SELECT count(*) AS n FROM scores WHERE trace_id = '{doc['run_trace_id']}'")
    assert stored == [{"n": 36}]
    row = results["items"][0]
    assert [o["variant"] for o in row["outputs"]] == ["gpt-4o", "claude-3-5-haiku-latest"]
    assert row["outputs"][1]["similarity"] == 1.0 and row["expected"].startswith("Fake reply to:")
    page = q.client().get(started["url"]).text
    assert 'id="summary"' in page and 'data-variant="claude-3-5-haiku-latest"' in page and "side-by-side" in page
    assert started["id"] in q.client().get("/experiments").text


def test_the_command_prints_the_table_and_fails_on_a_significantly_worse_variant(quiz: QualityEnv) -> None:
    same = _cli(
        quiz, "--variant", "model=gpt-4o", "--variant", "model=claude-3-5-haiku-latest", "--evaluator", "helpfulness"
    )
    assert same.returncode == 0, same.stderr
    assert "gpt-4o (baseline)" in same.stdout and "claude-3-5-haiku-latest" in same.stdout
    assert "helpfulness mean" in same.stdout and "p50 ms" in same.stdout
    # Two output tokens cut every answer short: the judge finds it unhelpful on every item.
    worse = _cli(
        quiz,
        "--variant",
        "model=gpt-4o",
        "--variant",
        "model=gpt-4o,max_tokens=2,name=truncated",
        "--evaluator",
        "helpfulness",
    )
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "WORSE" in worse.stdout and "significantly worse than the baseline gpt-4o: truncated" in worse.stderr
    missing = _cli(quiz, "--variant", "colour=red")
    assert missing.returncode == 2 and "variant" in missing.stderr


def test_variants_edit_the_prompt_and_a_cost_cap_stops_the_run(quiz: QualityEnv) -> None:
    q = quiz
    q.fp.clear()
    started = q.post(
        "/api/v1/experiments",
        {
            "dataset": "quiz",
            "variants": ["model=gpt-4o", {"model": "gpt-4o", "prompt": "Answer in one word.", "name": "terse"}],
            "max_cost_usd": 0.00025,
            "concurrency": 1,
        },
        expect=202,
    )
    doc = _finished(q, started["id"])
    assert doc["status"] == "stopped" and "cost cap of $0.00025 reached" in doc["error"]
    assert 0 < doc["done"] < doc["total"]
    sent = [r.json for r in q.fp.requests if r.json and r.json.get("model") == "gpt-4o"]
    assert len(sent) == doc["done"]
    assert any(m == {"role": "system", "content": "Answer in one word."} for body in sent for m in body["messages"])
    not_run = [o for item in doc["results"]["items"] for o in item["outputs"] if o["span_id"] is None]
    assert not_run and all("cost cap" in o["error"] for o in not_run)


def test_bad_requests_are_named_and_other_projects_see_nothing(quiz: QualityEnv) -> None:
    q = quiz
    with q.client() as c:
        for body, words in (
            ({"dataset": "nope", "variants": [{"model": "gpt-4o"}]}, "no dataset 'nope'"),
            ({"dataset": "quiz", "variants": [{"model": "gpt-4o", "colour": "red"}]}, "colour"),
            ({"dataset": "quiz", "variants": [{"model": "gpt-4o"}], "evaluators": ["nonsense"]}, "evaluators[0]"),
            ({"dataset": "quiz", "variants": [{"model": "gpt-4o"}], "baseline": "other"}, "baseline"),
            ({"dataset": "quiz", "variants": []}, "variants is required"),
        ):
            r = c.post("/api/v1/experiments", json=body)
            assert r.status_code == 400 and words in r.json()["error"], (body, r.text)
        ident = c.get("/api/v1/experiments").json()["experiments"][0]["id"]
        elsewhere = {"X-LLMLens-Project": new_id("exp-other")}
        assert c.get(f"/api/v1/experiments/{ident}", headers=elsewhere).status_code == 404
        assert c.get("/api/v1/experiments", headers=elsewhere).json()["experiments"] == []
        r = c.post(
            "/api/v1/experiments", json={"dataset": "quiz", "variants": [{"model": "gpt-4o"}]}, headers=elsewhere
        )
        assert r.status_code == 400 and "no dataset 'quiz'" in r.json()["error"]


def test_a_variant_with_another_template_version_fills_it_with_the_items_variables(quiz: QualityEnv) -> None:
    q = quiz
    now = time.time() - 120
    calls = [
        ("v1", {"name": "Ada"}, [{"role": "user", "content": "Say hello to Ada"}]),
        (
            "v2",
            {"name": "Bob"},
            [{"role": "system", "content": "Be formal."}, {"role": "user", "content": "Greet Bob politely"}],
        ),
    ]
    q.ingest(
        [
            {
                "type": "llm",
                "trace_id": uuid.uuid4().hex,
                "span_id": uuid.uuid4().hex[:16],
                "timestamp": now + i,
                "model": "gpt-4o",
                "provider": "openai",
                "template_id": "greet",
                "template_version": version,
                "variables": variables,
                "input_messages": messages,
                "response": "Hello!",
            }
            for i, (version, variables, messages) in enumerate(calls)
        ]
    )
    made = q.post(
        "/api/v1/datasets", {"name": "greetings", "filter": {"template_id": "greet", "template_version": "v1"}}
    )
    assert made["accepted"] == 1
    q.fp.clear()
    started = q.post(
        "/api/v1/experiments",
        {
            "dataset": "greetings",
            "variants": [{"model": "gpt-4o"}, {"model": "gpt-4o", "template_version": "v2", "name": "v2"}],
        },
        expect=202,
    )
    assert _finished(q, started["id"])["status"] == "done"
    sent = [r.json["messages"] for r in q.fp.requests if r.json and r.json.get("model") == "gpt-4o"]
    assert [{"role": "user", "content": "Say hello to Ada"}] in sent
    assert [{"role": "system", "content": "Be formal."}, {"role": "user", "content": "Greet Ada politely"}] in sent
