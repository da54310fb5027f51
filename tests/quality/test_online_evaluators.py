"""Online evaluator rules through a real server: app calls made with the real `openai` and `anthropic` clients
through the gateway, judged in the background by the stand-in provider playing the judge. A rule scores
its sample of new calls, stops at its daily budget and says so; judge calls are spans of their own that
no spend, budget, alert or insight counts; unparseable verdicts and failing evaluators are counted errors
that stop nothing else; rules belong to their project; config rules apply everywhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.quality._quality_env import BACKENDS, JUDGE_MODEL, QualityEnv, new_id, quality_server, store_args, wait_for
from tests.support.fake_provider import FakeProvider

from llmlens.quality._online import sampled

JSON_FEATURE = "json-api"
CONFIG_RULES = [
    {"name": "json check", "evaluator": "json_valid", "feature": JSON_FEATURE},
    {
        "name": "broken function",
        "evaluator": "tests.quality._evaluator_functions:always_fails",
        "feature": JSON_FEATURE,
    },
]
QUESTIONS = [
    "What is the capital of France?",
    "How do I reset my password quickly?",
    "Explain the refund policy for damaged parcels",
    "Which plan includes priority support?",
    "Where can I download my invoices?",
    "Can I change the delivery address after ordering?",
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


@pytest.fixture(scope="module", params=BACKENDS)
def env(
    request: pytest.FixtureRequest, fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QualityEnv]:
    with quality_server(
        tmp_path_factory.mktemp("online"), fake, evaluators=CONFIG_RULES, args=store_args(request, "quality_online")
    ) as quality:
        yield quality


@pytest.fixture
def fp(env: QualityEnv) -> Iterator[FakeProvider]:
    env.fp.reset()
    env.fp.judge_models = {JUDGE_MODEL}
    yield env.fp
    env.fp.reset()


def _rule(env: QualityEnv, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = env.get(f"/api/v1/evaluators/rules/{name}")
    return doc


def _app_calls(env: QualityEnv, feature: str, n: int) -> list[str]:
    """`n` calls of the feature, alternately with the openai and the anthropic client; their span ids."""
    for i in range(n):
        model = "gpt-4o" if i % 2 == 0 else "claude-3-5-haiku-latest"
        env.ask(QUESTIONS[i % len(QUESTIONS)] + f" ({i})", feature=feature, model=model)
    rows = env.wait_rows(f"SELECT span_id FROM llm_logs WHERE feature = '{feature}'", n)
    return [str(r["span_id"]) for r in rows]


def test_a_rule_scores_its_sample_of_new_calls_with_a_judge(env: QualityEnv, fp: FakeProvider) -> None:
    q = env.in_project(new_id("online"))
    q.post(
        "/api/v1/evaluators/rules",
        {"name": "helpful", "evaluator": "helpfulness", "feature": "support", "sample_rate": 0.5},
    )
    support = _app_calls(q, "support", 12)
    _app_calls(q, "billing", 2)  # outside the rule's filter
    expected = {s for s in support if sampled("helpful", s, 0.5)}
    assert 0 < len(expected) < len(support)  # a sample, not every call

    # Every support call was looked at: the sampled ones judged, the others left out.
    wait_for(
        lambda: _rule(q, "helpful")["since_start"],
        lambda s: s["evaluated"] + s["sampled_out"] == len(support),
        what="the rule to look at every support call",
    )
    scores = q.wait_rows(
        "SELECT span_id, value, source, evaluator, evaluator_version, reasoning, judge_cost_usd, metadata "
        "FROM scores WHERE name = 'helpfulness'",
        len(expected),
    )
    assert {s["span_id"] for s in scores} == expected
    for s in scores:
        assert s["source"] == "evaluator" and s["evaluator"] == "judge:helpfulness" and s["evaluator_version"]
        assert 0.0 <= s["value"] <= 1.0 and s["reasoning"].startswith("fake judge:")
        assert s["judge_cost_usd"] > 0
        assert '"rule":"helpful"' in s["metadata"].replace(" ", "")

    # Each judgement is a judge call of its own: a span of kind `evaluator` under `llmlens.judge`, priced.
    judges = q.sql(
        "SELECT model, feature, cost_usd, prompt, trace_id FROM spans WHERE kind = 'evaluator' AND status = 'ok'"
    )
    assert len(judges) == len(expected)
    assert {j["model"] for j in judges} == {JUDGE_MODEL} and {j["feature"] for j in judges} == {"llmlens.judge"}
    assert all(j["cost_usd"] > 0 and "<question>" in j["prompt"] for j in judges)
    app_traces = {r["trace_id"] for r in q.sql("SELECT trace_id FROM llm_logs")}
    assert not app_traces & {j["trace_id"] for j in judges}  # in traces of their own
    judge_spend = sum(j["cost_usd"] for j in judges)

    rule = _rule(q, "helpful")
    assert rule["state"] == "running" and rule["today"]["scores_written"] == len(expected)
    assert rule["today"]["judge_calls"] == len(expected)
    assert rule["today"]["spend_usd"] == pytest.approx(judge_spend)

    # None of it is the app's spend, budget, alert sample or insight.
    app_cost = sum(r["cost_usd"] for r in q.sql("SELECT cost_usd FROM llm_logs"))
    assert q.sql("SELECT count(*) AS n FROM llm_logs WHERE feature = 'llmlens.judge'") == [{"n": 0}]
    cost = q.get("/api/v1/cost", range="1h")["cost"]
    assert {f["feature"] for f in cost["by_feature"]} == {"support", "billing"}
    assert cost["month"]["spend_today_usd"] == pytest.approx(app_cost)
    assert q.get("/api/v1/budgets/status", feature="llmlens.judge")["feature"]["spent_usd"] == 0
    assert q.get("/api/v1/budgets/status", feature="support")["feature"]["spent_usd"] == pytest.approx(
        sum(r["cost_usd"] for r in q.sql("SELECT cost_usd FROM llm_logs WHERE feature = 'support'"))
    )
    evaluations = {e["rule"]: e for e in q.post("/api/v1/alerts/evaluate?dry_run=1", {})["evaluations"]}
    assert evaluations["error rate"]["sample_size"] == 14 and evaluations["cost spike"]["sample_size"] == 14
    insights = wait_for(lambda: q.get("/api/v1/insights", range="1d"), lambda d: d["status"] == "fresh")
    assert insights["examined"]["calls"] == 14


def test_a_rule_stops_at_its_daily_budget_and_says_so(env: QualityEnv, fp: FakeProvider) -> None:
    q = env.in_project(new_id("budget"))
    budget = 0.00004  # a judge call of the stand-in costs ~$0.000015 at gpt-4.1-nano's prices
    q.post("/api/v1/evaluators/rules", {"name": "tight", "evaluator": "helpfulness", "daily_budget_usd": budget})
    calls = _app_calls(q, "support", 10)
    rule = wait_for(
        lambda: _rule(q, "tight"),
        lambda r: (
            r["state"] == "budget_reached"
            and r["since_start"]["evaluated"] + r["today"]["skipped_over_budget"] == len(calls)
        ),
        what="the budget to be reached and every call looked at",
    )
    judge_calls = rule["today"]["judge_calls"]
    costs = sorted(r["cost_usd"] for r in q.sql("SELECT cost_usd FROM spans WHERE kind = 'evaluator'"))
    assert len(costs) == judge_calls < len(calls)
    assert rule["today"]["skipped_over_budget"] == len(calls) - judge_calls
    # It stopped once the budget was spent: only the calls already in flight (judge concurrency 2) went past it.
    assert sum(costs) >= budget > sum(costs[:-2])
    assert rule["today"]["spend_usd"] == pytest.approx(sum(costs)) and rule["today"]["budget_left_usd"] == 0
    page = q.client().get("/evaluators").text
    row = re.search(r'<tr data-rule="tight" data-state="budget_reached">.*?</tr>', page, re.DOTALL)
    assert row is not None and "budget reached" in row.group(0)

    _app_calls(q, "later", 2)  # new calls the same day are skipped too
    rule = wait_for(
        lambda: _rule(q, "tight"),
        lambda r: r["today"]["skipped_over_budget"] == len(calls) - judge_calls + 2,
        what="the later calls to be skipped",
    )
    assert rule["today"]["judge_calls"] == judge_calls


def test_a_judge_that_answers_prose_records_an_error_not_a_score(env: QualityEnv, fp: FakeProvider) -> None:
    q = env.in_project(new_id("garbage"))
    spec = {"type": "judge", "template": "helpfulness", "model": "fake-judge-garbage"}
    q.post("/api/v1/evaluators/rules", {"name": "chatty judge", "evaluator": spec})
    calls = _app_calls(q, "support", 3)
    rule = wait_for(
        lambda: _rule(q, "chatty judge"),
        lambda r: r["since_start"]["evaluated"] == len(calls) and r["today"]["errors"] == len(calls),
        what="three counted errors",
    )
    assert rule["state"] == "errors" and "JSON" in rule["last_error"]
    assert rule["today"]["scores_written"] == 0
    assert q.sql("SELECT score_id FROM scores WHERE name = 'helpfulness'") == []
    failed = q.sql("SELECT status, error_message, response FROM spans WHERE kind = 'evaluator'")
    assert len(failed) == len(calls)
    assert all(f["status"] == "error" and "JSON" in f["error_message"] and f["response"] for f in failed)


def test_an_evaluator_that_raises_never_stops_the_others(env: QualityEnv, fp: FakeProvider) -> None:
    q = env.in_project(new_id("raises"))
    fp.reply_text = '{"answer": 42}'
    calls = _app_calls(q, JSON_FEATURE, 4)
    scores = q.wait_rows("SELECT span_id, value, evaluator FROM scores WHERE name = 'json_valid'", len(calls))
    assert {s["span_id"] for s in scores} == set(calls) and {s["value"] for s in scores} == {1.0}
    # The errors are on disk a moment before the evaluator thread marks the rule: wait for both.
    broken = wait_for(
        lambda: _rule(q, "broken function"),
        lambda r: r["today"]["errors"] == len(calls) and r["state"] == "errors",
        what="the broken function's errors",
    )
    assert "raised RuntimeError" in broken["last_error"]
    kept = q.sql("SELECT name, error_message FROM spans WHERE kind = 'evaluator' AND status = 'error'")
    assert len(kept) == len(calls) and all("broken on purpose" in k["error_message"] for k in kept)
    assert _rule(q, "json check")["state"] == "running"


def test_config_rules_apply_everywhere_and_are_turned_off_per_project(env: QualityEnv, fp: FakeProvider) -> None:
    a, b = env.in_project(new_id("cfg-a")), env.in_project(new_id("cfg-b"))
    listed = {r["name"]: r for r in a.get("/api/v1/evaluators/rules")["rules"]}
    assert listed["json check"]["source"] == "config"
    with a.client() as c:
        refused = c.delete("/api/v1/evaluators/rules/json check")
        assert refused.status_code == 409 and "enabled = false" in refused.json()["error"]
        off = {"evaluator": "json_valid", "feature": JSON_FEATURE, "enabled": False}
        assert c.put("/api/v1/evaluators/rules/json check", json=off).status_code == 200
    assert _rule(a, "json check")["state"] == "disabled" and _rule(b, "json check")["state"] == "running"
    fp.reply_text = "[1, 2]"
    _app_calls(a, JSON_FEATURE, 2)
    b_calls = _app_calls(b, JSON_FEATURE, 2)
    b.wait_rows("SELECT span_id FROM scores WHERE name = 'json_valid'", len(b_calls))
    wait_for(lambda: _rule(a, "broken function")["today"]["errors"], lambda n: n == 2, what="project a looked at")
    assert a.sql("SELECT span_id FROM scores WHERE name = 'json_valid'") == []


def test_rules_belong_to_their_project(env: QualityEnv, fp: FakeProvider) -> None:
    mine, other = env.in_project(new_id("mine")), env.in_project(new_id("other"))
    mine.post("/api/v1/evaluators/rules", {"name": "only mine", "evaluator": "contains:reply", "feature": "support"})
    assert "only mine" not in {r["name"] for r in other.get("/api/v1/evaluators/rules")["rules"]}
    with other.client() as c:
        assert c.get("/api/v1/evaluators/rules/only mine").status_code == 404
        assert c.delete("/api/v1/evaluators/rules/only mine").status_code == 404
    other_calls = _app_calls(other, "support", 2)
    mine_calls = _app_calls(mine, "support", 2)
    scored = mine.wait_rows("SELECT span_id, value FROM scores WHERE name = 'contains'", 2)
    assert {s["span_id"] for s in scored} == set(mine_calls) and {s["value"] for s in scored} == {1.0}
    assert other.sql("SELECT span_id FROM scores WHERE name = 'contains'") == []
    assert not set(other_calls) & {s["span_id"] for s in scored}


def test_rules_and_templates_are_made_in_the_page_and_bad_ones_named(env: QualityEnv, fp: FakeProvider) -> None:
    q = env.in_project(new_id("page"))
    with q.client() as c:
        form = {
            "name": "lengthy",
            "evaluator": "refusal",
            "feature": "chat",
            "sample_rate": "0.25",
            "daily_budget_usd": "0",
        }
        r = c.post("/evaluators", data=form, follow_redirects=False)
        assert r.status_code == 303 and "notice=rule+lengthy+created" in r.headers["location"]
        rule = c.get("/api/v1/evaluators/rules/lengthy").json()
        assert (rule["sample_rate"], rule["daily_budget_usd"], rule["filter"]) == (
            0.25,
            0.0,
            {"feature": "chat", "kind": "llm"},
        )
        assert 'data-rule="lengthy"' in c.get("/evaluators").text
        # Mistakes are named, by field.
        for body, words in (
            ({"name": "x", "evaluator": "helpfulness", "sample_rate": 2}, "sample_rate"),
            ({"name": "x", "evaluator": "no_such_thing"}, "unknown evaluator"),
            ({"name": "x", "evaluator": "os:system"}, "not registered"),
            ({"name": "x", "evaluator": "rag", "kind": "tool"}, "filter.kind"),
            ({"name": "x", "evaluator": {"type": "regex", "pattern": "("}}, "pattern"),
            ({"name": "x", "evaluator": "helpfulness", "colour": "red"}, "colour"),
        ):
            r = c.post("/api/v1/evaluators/rules", json=body)
            assert r.status_code == 400 and words in r.json()["error"], (body, r.text)
        assert c.post("/api/v1/evaluators/rules", json={"name": "lengthy", "evaluator": "refusal"}).status_code == 409
        # A judge template edited for this project only.
        before = c.get("/api/v1/evaluators/templates/helpfulness").json()
        text = before["text"].replace("You grade", "As a strict reviewer, you grade")
        saved = c.post("/api/v1/evaluators/templates/helpfulness", data={"text": text}, follow_redirects=False)
        assert saved.status_code == 303
        after = c.get("/api/v1/evaluators/templates/helpfulness").json()
        assert after["text"] == text and not after["builtin"] and after["version"] != before["version"]
        bad = c.put("/api/v1/evaluators/templates/helpfulness", json={"text": "Judge {{answr}}"})
        assert bad.status_code == 400 and "answr" in bad.json()["error"]
        elsewhere = httpx.get(
            f"{env.server.url}/api/v1/evaluators/templates/helpfulness", headers={"X-LLMLens-Project": new_id("x")}
        ).json()
        assert elsewhere["builtin"] and elsewhere["text"] == before["text"]
