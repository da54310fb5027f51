"""A template's text recovered from filled prompts, and the diff of two versions' texts."""

from __future__ import annotations

from llmlens.query._prompt_template import VARYING, fill_back, recorded_template, recover_template, template_diff


def test_variables_are_written_back_as_whole_words_only() -> None:
    prompt = "Answer as a pro: How do I reset my password? (tier pro, project docs)"
    filled = fill_back(prompt, {"question": "How do I reset my password?", "tier": "pro", "n": 1})
    assert filled == "Answer as a {{tier}}: {{question}} (tier {{tier}}, project docs)"
    assert fill_back("Here are the tool results.", {"question": "How do I reset my password?"}) is None
    assert fill_back("anything", '{"question": "anything"}') == "{{question}}"  # variables as stored JSON
    assert fill_back("anything", None) is None


def test_recovered_text_keeps_what_calls_share_and_marks_what_varies() -> None:
    texts = [f"system: Be brief.\nuser: {{{{question}}}} Context: {'lorem ipsum ' * n}" for n in (3, 5, 9)]
    recovered = recover_template(texts)
    assert recovered == "system: Be brief.\nuser: {{question}} Context: lorem ipsum lorem ipsum lorem ipsum " + VARYING
    assert recover_template(["same", "same"]) == "same"
    # The cut falls between words: "lorem ips" is not shared text.
    assert recover_template(["a lorem ipsum b", "a lorem ipsx b"]) == f"a lorem {VARYING} b"


def test_the_diff_marks_removed_and_added_lines() -> None:
    diff = template_diff("system: v4\nuser: {{question}}", "system: v5\nuser: {{question}}\nHistory: {{history}}")
    assert [(d.op, d.text) for d in diff] == [
        ("-", "system: v4"),
        ("+", "system: v5"),
        (" ", "user: {{question}}"),
        ("+", "History: {{history}}"),
    ]


def test_a_recorded_template_wins() -> None:
    assert recorded_template('{"llm.prompt_template.template": "Hi {name}"}') == "Hi {name}"
    assert recorded_template({"other": 1}) is None
    assert recorded_template("not json") is None
