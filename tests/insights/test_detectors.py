"""The pure parts of the detectors: which sibling calls depend on each other, which prompts are
near-duplicates, when a conversation grows, what limit is suggested."""

from __future__ import annotations

import json

from llmlens.insights._cacheable_prompts import normalise, question_and_context
from llmlens.insights._context_growth import growing
from llmlens.insights._max_tokens import suggested_limit
from llmlens.insights._parallelizable_calls import Call, parallel_runs


def _call(
    name: str, start: float, ms: float, *, kind: str = "llm", out: str = "", inp: str = "", tools: str = ""
) -> Call:
    return Call(name, kind, name, start, ms, out, inp, tools)


def test_independent_sequential_calls_form_a_run() -> None:
    a = _call("a", 0, 1000, out="The revenue section is steady.", inp="Summarise revenue")
    b = _call("b", 1001, 1500, out="Support tickets are down.", inp="Summarise support tickets")
    c = _call("c", 2600, 500, out="Both look fine overall.", inp="Combine: The revenue section is steady. and more")
    assert [[x.span_id for x in run] for run in parallel_runs([a, b, c])] == [["a", "b"]]


def test_overlapping_or_dependent_calls_are_not_a_run() -> None:
    a = _call("a", 0, 1000, out="An answer long enough to look for.", inp="q1")
    overlapping = _call("b", 500, 1000, out="Another answer entirely here.", inp="q2")
    assert parallel_runs([a, overlapping]) == []
    asked = _call("llm", 0, 800, out="", inp="q", tools='[{"name": "lookup"}]')
    tool = _call("lookup", 801, 50, kind="tool", out='{"found": 1}', inp='{"q": 1}')
    assert parallel_runs([asked, tool]) == []  # the model asked for the tool
    silent = _call("a", 0, 1000, out="", inp="q1")  # no output recorded: cannot tell, so dependent
    assert parallel_runs([silent, _call("b", 1001, 1000, out="x" * 20, inp="q2")]) == []


def test_tools_a_model_asked_for_together_can_run_together() -> None:
    asked = _call("llm", 0, 800, out="", inp="q", tools='[{"name": "search"}, {"name": "calc"}]')
    search = _call("search", 801, 900, kind="tool", out='{"items": ["page one result"]}', inp='{"query": "x"}')
    calc = _call("calc", 1702, 20, kind="tool", out='{"value": 391}', inp='{"expression": "17*23"}')
    answer = _call("llm2", 1723, 700, out="Done.", inp="Here are the tool results.")
    runs = parallel_runs([asked, search, calc, answer])
    assert [[x.span_id for x in run] for run in runs] == [["search", "calc"]]


def test_near_duplicates_differ_only_in_ids_dates_numbers_and_spaces() -> None:
    one = "Summarise ticket ORD-1234 from 2026-03-01 for user 550e8400-e29b-41d4-a716-446655440000,  total 12.50"
    two = "Summarise ticket ORD-98 from 2026-04-11T10:00:00Z for user 0b5e8400-e29b-41d4-a716-44665544ffff, total 3"
    assert normalise(one) == normalise(two)
    assert normalise("Summarise the invoice") != normalise("Summarise the contract")


def test_the_semantic_tier_compares_last_user_messages_under_equal_other_messages() -> None:
    system = {"role": "system", "content": "You answer questions about Acme's billing. " * 50}
    ask = [system, {"role": "user", "content": [{"type": "text", "text": "How do I get a refund?"}]}]
    again = [system, {"role": "user", "content": "How can I get my money back?"}]
    other_system = [{"role": "system", "content": "You write poems."}, again[1]]
    q1, c1 = question_and_context(json.dumps(ask), "flattened")
    q2, c2 = question_and_context(json.dumps(again), "flattened")
    assert (q1, q2) == ("How do I get a refund?", "How can I get my money back?")
    assert c1 == c2 and "billing" in c1  # the shared system prompt is context, not part of what is compared
    assert question_and_context(json.dumps(other_system), "flattened")[1] != c2
    assert question_and_context(None, "a plain prompt") == ("a plain prompt", "")
    assert question_and_context("not json", "a plain prompt") == ("a plain prompt", "")


def test_growing_conversations() -> None:
    assert growing([1000, 2000, 3000, 4000, 5000])
    assert not growing([1000, 2000, 3000, 4000])  # too few turns to tell
    assert not growing([1000, 900, 1100, 950, 1200])  # steady: trimmed or summarised
    assert not growing([3000, 3100, 3200, 3300, 3400])  # grows, but not to double


def test_suggested_limit_leaves_room_over_the_99th_percentile() -> None:
    assert suggested_limit(300) == 400
    assert suggested_limit(410) == 500
