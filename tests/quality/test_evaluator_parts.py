"""The pure parts of evaluators, rules, datasets and experiments: built-in checks, judge verdicts, rule and
variant parsing with errors naming the field, uploads refused by line, the statistics of the result table."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmlens.quality import RuleError, parse_rule, parse_upload, parse_variant_text, parse_verdict
from llmlens.quality._evaluators import EvalContext, EvaluatorSpecError, build_evaluator
from llmlens.quality._experiment_spec import ExperimentError, parse_variant
from llmlens.quality._judge import JudgeSettings, VerdictError
from llmlens.quality._online import sampled
from llmlens.quality._samples import EvalSample
from llmlens.quality._selection import SelectionError, parse_selection
from llmlens.quality._stats import mean_interval, paired_t_test, t_critical


def _run(spec: object, answer: str | None) -> tuple[float | None, str | None, str | None]:
    evaluator = build_evaluator(spec)
    sample = EvalSample("p", "llm", "s", "t", None, "q", answer)
    outcome = asyncio.run(evaluator.evaluate(sample, EvalContext(None, JudgeSettings())))
    if not outcome.verdicts:
        return None, None, (outcome.errors + outcome.skipped)[0]
    verdict = outcome.verdicts[0]
    return verdict.value, verdict.label, verdict.comment


@pytest.mark.parametrize(
    ("spec", "answer", "value"),
    [
        ("json_valid", '{"a": 1}', 1.0),
        ("json_valid", '```json\n{"a": 1}\n```', 1.0),
        ("json_valid", "{a: 1}", 0.0),
        ({"type": "json_schema", "schema": {"type": "object", "required": ["id"]}}, '{"id": 3}', 1.0),
        ({"type": "json_schema", "schema": {"type": "object", "required": ["id"]}}, '{"name": 3}', 0.0),
        ("regex:^\\d{4}-\\d{2}$", "2026-03", 1.0),
        ("regex:^\\d{4}-\\d{2}$", "March", 0.0),
        ("contains:Refund", "your refund is on its way", 1.0),
        ({"type": "length", "min_chars": 3, "max_chars": 10}, "just right", 1.0),
        ({"type": "length", "max_chars": 5}, "far too long", 0.0),
        ("refusal", "I'm sorry, but I can't help with that request.", 1.0),
        ("refusal", "Sure: open Settings and press Reset.", 0.0),
        ("language:fr", "Bonjour, comment puis-je vous aider aujourd'hui ?", 1.0),
        ("language:fr", "Hello, how can I help you today?", 0.0),
    ],
)
def test_built_in_checks(spec: object, answer: str, value: float) -> None:
    assert _run(spec, answer)[0] == value


def test_checks_say_why_they_failed() -> None:
    assert (
        _run({"type": "json_schema", "schema": {"required": ["id"]}}, "{}")[2] == "(root): 'id' is a required property"
    )
    assert "more than 5" in str(_run({"type": "length", "max_chars": 5}, "far too long")[2])
    assert _run("language", "Wie setze ich mein Passwort zurück?")[1] == "de"
    assert "too short" in str(_run("language:en", "ok")[2])  # not applicable, not a verdict


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("helpfulnes", "unknown evaluator"),
        ("regex:(", "not a valid regular expression"),
        ({"type": "json_schema", "schema": {"type": "nope"}}, "not a valid JSON schema"),
        ({"type": "length"}, "min_chars, max_chars or both"),
        ({"type": "judge", "template": "kindness"}, "no judge template 'kindness'"),
        ({"type": "contains", "text": "x", "colour": "red"}, "colour"),
    ],
)
def test_bad_evaluator_specs_are_named(spec: object, words: str) -> None:
    with pytest.raises(EvaluatorSpecError, match=words.replace("(", r"\(").replace("'", ".")):
        build_evaluator(spec)


def test_verdicts_are_read_from_json_and_refused_otherwise() -> None:
    assert parse_verdict('{"score": 0.75, "reasoning": "mostly"}') == (0.75, "mostly")
    assert parse_verdict('Here you go:\n```json\n{"score": 1}\n```') == (1.0, None)
    assert parse_verdict('verdict {"score": "0.5"} done') == (0.5, None)
    for text, words in (
        ("The answer is good.", "not answer a JSON object"),
        ('{"score": 7}', "outside 0-1"),
        ('{"grade": 1}', "no numeric `score`"),
        ('{"score": "high"}', "not a number"),
    ):
        with pytest.raises(VerdictError, match=words):
            parse_verdict(text)


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"evaluator": "helpfulness"}, "name must be"),
        ({"name": "r"}, "evaluator is required"),
        ({"name": "r", "evaluator": "helpfulness", "sample_rate": 0}, "sample_rate must be above 0"),
        ({"name": "r", "evaluator": "helpfulness", "daily_budget_usd": -1}, "daily_budget_usd"),
        ({"name": "r", "evaluator": "helpfulness", "filter": {"feature": 3}}, "filter.feature"),
        ({"name": "r", "evaluator": "helpfulness", "kind": "retrieval"}, "filter.kind 'retrieval'"),
        ({"name": "r", "evaluator": "helpfulness", "enabled": "yes"}, "enabled"),
    ],
)
def test_bad_rules_are_named(doc: dict[str, object], words: str) -> None:
    with pytest.raises(RuleError, match=words):
        parse_rule(doc)


def test_a_rule_with_its_defaults_and_a_filter() -> None:
    rule = parse_rule({"name": "rag", "evaluator": "rag", "kind": "retrieval", "feature": "help"})
    assert rule.filter.to_dict() == {"feature": "help", "kind": "retrieval"}
    assert (rule.sample_rate, rule.daily_budget_usd, rule.enabled) == (1.0, 1.0, True)
    assert rule.filter.sql() == (" AND feature = ? AND kind = ?", ["help", "retrieval"])


def test_sampling_is_deterministic_and_near_its_rate() -> None:
    ids = [f"span{i:05d}" for i in range(4000)]
    kept = [s for s in ids if sampled("rule", s, 0.25)]
    assert kept == [s for s in ids if sampled("rule", s, 0.25)]
    assert 900 < len(kept) < 1100
    assert set(kept) != {s for s in ids if sampled("another rule", s, 0.25)}


def test_uploads_are_refused_by_line() -> None:
    lines = b'{"input": "a"}\nnot json\n{"messages": [{"role": "user"}]}\n\n{"input": "b", "tools": [{"name": "t"}]}\n'
    parsed = parse_upload(lines, "application/x-ndjson")
    assert [(i, isinstance(x, str)) for i, x in parsed] == [(0, False), (1, True), (2, True), (3, False)]
    assert "line 3" in str(parsed[2][1]) and "role and content" in str(parsed[2][1])
    rows = parse_upload(b'messages,expected_output\n"[{""role"": ""user"", ""content"": ""hi""}]",hello\n', "text/csv")
    item = rows[0][1]
    assert not isinstance(item, str) and item.messages == [{"role": "user", "content": "hi"}]


def test_variants_from_the_command_line_and_from_json() -> None:
    assert parse_variant_text("model=gpt-4o-mini,temperature=0.2") == {"model": "gpt-4o-mini", "temperature": "0.2"}
    variant = parse_variant("model=gpt-4o-mini,temperature=0.2,max_tokens=100", 0)
    assert (variant.name, variant.temperature, variant.max_tokens) == (
        "gpt-4o-mini temperature=0.2 max_tokens=100",
        0.2,
        100,
    )
    for doc, words in (
        ("colour=red", "keys"),
        ({"model": "m", "temperature": "hot"}, r"variants\[1\].temperature"),
        ({"name": "only a name"}, "changes nothing"),
    ):
        with pytest.raises(ExperimentError, match=words):
            parse_variant(doc, 1)


def test_selection_filters_are_checked() -> None:
    assert parse_selection({"feature": "chat", "limit": 5}).filters == {"feature": "chat"}
    for doc, words in (({"colour": "red"}, "unknown filter"), ({"limit": 0}, "limit"), ({"status": "bad"}, "status")):
        with pytest.raises(SelectionError, match=words):
            parse_selection(doc)


def test_the_statistics_of_the_result_table() -> None:
    assert t_critical(9) == pytest.approx(2.262, abs=1e-3)
    interval = mean_interval([0.5, 0.7, 0.6, 0.8])
    assert interval.mean == pytest.approx(0.65) and interval.ci_low == pytest.approx(0.4446, abs=1e-3)
    worse = paired_t_test([0.6, 0.7, 0.8, 0.5, 0.9], [0.1, 0.3, 0.2, 0.2, 0.4])
    assert worse.significant and worse.mean_difference == pytest.approx(-0.46) and worse.p_value is not None
    assert worse.p_value < 0.01
    same = paired_t_test([0.5, 0.6], [0.5, 0.6])
    assert not same.significant and same.p_value == 1.0
    assert json.loads(json.dumps({"verdict": worse.verdict}))["verdict"].startswith("significantly lower")
