"""The inferred-feedback rules on hand-made sessions: what counts as one turn, what is compared, and the
cases that look like signals but are not (an agent's follow-up call, a stateless app, a filled template)."""

from __future__ import annotations

from llmlens.quality import Call, QualitySettings, infer_signals, similarity, split_visits, turns_from_calls

SETTINGS = QualitySettings(session_idle_s=900)
NOW = 100_000.0
SYSTEM = {"role": "system", "content": "You help with code."}


def _call(n: int, start: float, messages: list[dict[str, str]], **fields: object) -> Call:
    defaults: dict[str, object] = {"trace_id": f"t{n}", "message_id": f"m{n}", "feature": "chat"}
    defaults.update(fields)
    return Call(
        span_id=f"s{n}",
        start_s=start,
        end_s=start + 2.0,
        input_messages=messages,
        **defaults,  # type: ignore[arg-type]
    )


def _signals(calls: list[Call], conversational: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    (visit,) = split_visits("sess", turns_from_calls(calls), [c.end_s for c in calls], SETTINGS.session_idle_s)
    return [(s.name, s.rule, s.turn.span_id) for s in infer_signals(visit, SETTINGS, NOW, conversational)]


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_similarity_forgives_typos_case_and_punctuation_but_not_another_word() -> None:
    question = "How do I sort a list of dates in Python?"
    assert similarity(question, "how do i sort a lsit of dates in python") == 1.0
    assert similarity(question, "How do I sort a list of numbers in Python?") < SETTINGS.retry_similarity
    assert similarity(question, "What's the weather in Lisbon?") < SETTINGS.edit_similarity


def test_a_regenerated_answer_and_a_question_asked_again_are_retries() -> None:
    q = "How do I sort a list of dates in Python?"
    calls = [
        _call(1, 0, [SYSTEM, _user(q)]),
        _call(2, 10, [SYSTEM, _user(q)]),  # the same request again
        _call(3, 40, [SYSTEM, _user(q), {"role": "assistant", "content": "Use sorted()."}, _user(q.lower() + "??")]),
    ]
    assert _signals(calls)[:2] == [("retry", "regenerated", "s1"), ("retry", "asked_again", "s2")]


def test_an_edit_replaces_the_turn_in_an_app_that_sends_the_conversation() -> None:
    earlier = [SYSTEM, _user("Hi"), {"role": "assistant", "content": "Hello!"}]
    calls = [
        _call(1, 0, [*earlier, _user("Write a function that parses a CSV file in Go")]),
        _call(2, 300, [*earlier, _user("Write a function that parses a JSON file in Go")]),  # same earlier turns
    ]
    assert ("edit", "edited_message", "s1") in _signals(calls)


def test_a_new_question_that_keeps_the_answer_in_context_is_not_an_edit() -> None:
    first = [SYSTEM, _user("Write a function that parses a CSV file in Go")]
    calls = [
        _call(1, 0, first),
        _call(
            2,
            300,
            [
                *first,
                {"role": "assistant", "content": "func parse..."},
                _user("Write a function that parses a JSON file in Go"),
            ],
        ),
    ]
    assert [s for s in _signals(calls) if s[0] == "edit"] == []


def test_a_stateless_apps_similar_calls_are_not_edits() -> None:
    calls = [
        _call(1, 0, [SYSTEM, _user("Review this diff of auth.py for bugs: - x = 1 + x = 2")], feature="review"),
        _call(2, 200, [SYSTEM, _user("Review this diff of billing.py for bugs: - x = 1 + x = 3")], feature="review"),
    ]
    assert [s for s in _signals(calls) if s[0] == "edit"] == []
    # Once the feature is known to send the conversation (seen in another session), the same pair is an edit.
    assert ("edit", "edited_message", "s1") in _signals(calls, conversational=("review",))


def test_calls_of_one_request_are_one_turn() -> None:
    """An agent's second call in the same trace (after a tool) repeats a fixed message: not a retry."""
    follow_up = _user("Here are the tool results. Answer the user.")
    calls = [
        _call(1, 0, [SYSTEM, _user("What is the weather in Lisbon?")], trace_id="a"),
        _call(2, 5, [SYSTEM, follow_up], trace_id="a"),
        _call(3, 30, [SYSTEM, _user("And in Porto tomorrow?")], trace_id="b"),
        _call(4, 35, [SYSTEM, follow_up], trace_id="b"),
    ]
    signals = _signals(calls)
    assert [s for s in signals if s[0] == "retry"] == []
    assert signals == [("abandon", "left_after_answer", "s4")], "the answer the user saw last: the trace's last call"


def test_a_filled_template_is_compared_by_its_variables() -> None:
    """A long fixed template around a short question would make every two questions look alike."""
    template = "You are a support agent. Policies: " + "be kind and precise. " * 30 + "Question: {q}"
    calls = [
        _call(n, 20.0 * n, [_user(template.format(q=q))], template_id="support", variables={"q": q})
        for n, q in enumerate(["Where is my invoice?", "Can I change my plan?"], 1)
    ]
    assert similarity(template.format(q="Where is my invoice?"), template.format(q="Can I change my plan?")) > 0.95
    assert [s for s in _signals(calls) if s[0] == "retry"] == []
    same = [
        _call(
            n, 20.0 * n, [_user(template.format(q="x"))], template_id="support", variables={"q": "Where is my invoice?"}
        )
        for n in (1, 2)
    ]
    assert ("retry", "regenerated", "s1") in _signals(same)


def test_abandon_needs_an_ended_quiet_session_without_thumbs() -> None:
    calls = [_call(1, 0, [SYSTEM, _user("Explain monads")])]
    assert _signals(calls) == [("abandon", "left_after_answer", "s1")]
    turns = turns_from_calls(calls)
    (still_going,) = split_visits("sess", turns, [2.0], SETTINGS.session_idle_s)
    assert infer_signals(still_going, SETTINGS, now_s=100.0) == [], "not yet ended: no abandon"
    (worked_on,) = split_visits("sess", turns, [2.0, 200.0], SETTINGS.session_idle_s)
    assert infer_signals(worked_on, SETTINGS, NOW) == [], "the user kept using the app after the answer"
