"""Redaction: each built-in pattern, Luhn-checked cards, user regexes, metadata-only mode, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlens.model import Feedback, Span
from llmlens.redaction import BUILTIN, RedactionConfigError, Redactor, luhn_valid
from llmlens.redaction._redactor import _sub_where_matches_start

ALL = Redactor.from_config({"patterns": ["api_key", "bearer", "card", "email", "phone"]})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to bob.smith+x@example.co.uk today", "write to [REDACTED_EMAIL] today"),
        ("call +1 415-555-0132 now", "call [REDACTED_PHONE] now"),
        ("call (020) 7946 0958", "call [REDACTED_PHONE]"),
        ("card 4111 1111 1111 1111 ok", "card [REDACTED_CARD] ok"),
        ("card 4111-1111-1111-1111", "card [REDACTED_CARD]"),
        ("amex 378282246310005", "amex [REDACTED_CARD]"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx1234", "key [REDACTED_API_KEY]"),
        ("key sk-ant-api03-abcdefghijklmnopqrstuv", "key [REDACTED_API_KEY]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [REDACTED_API_KEY]"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "Authorization: Bearer [REDACTED_TOKEN]"),
        ("our key llm_abcdefghijklmnopqrstuvwxyz0123", "our key [REDACTED_API_KEY]"),
        # keys glued to the word before them
        ("key_sk-proj-abcdefghijklmnopqrstuvwx1234", "key_[REDACTED_API_KEY]"),
        ("xsk-proj-abcdefghijklmnopqrstuvwx1234", "x[REDACTED_API_KEY]"),
        ("use:xsk-ant-api03-abcdefghijklmnopqrstuv", "use:x[REDACTED_API_KEY]"),
        ("mytokenghp_abcdefghijklmnopqrstuvwxyz0123456789", "mytoken[REDACTED_API_KEY]"),
        ("awsKeyAKIAIOSFODNN7EXAMPLE", "awsKey[REDACTED_API_KEY]"),
        ("ref abc_sk-Ab3dEf9hIjKlMnOpQrSt", "ref abc_[REDACTED_API_KEY]"),  # a random-looking body
        ("call_llm_Ab3dEfGhIjKlMnOpQrStUv9x", "call_[REDACTED_API_KEY]"),
        # secrets handed over by name: query parameters, headers, JSON, environment
        ("GET /v1/data?api_key=a1b2c3d4e5f6g7h8&format=json", "GET /v1/data?api_key=[REDACTED_TOKEN]&format=json"),
        ("https://x.example/q?key=1&apikey=Zx9Yw8Vu7Ts6 ok", "https://x.example/q?key=1&apikey=[REDACTED_TOKEN] ok"),
        ("?access_token=ya29.a0AfH6SMBx3", "?access_token=[REDACTED_TOKEN]"),
        ("X-Api-Key: 0123456789abcdef", "X-Api-Key: [REDACTED_TOKEN]"),
        ('{"apiKey": "0123456789abcdef"}', '{"apiKey": "[REDACTED_TOKEN]"}'),
        ("OPENAI_API_KEY=not-a-real-key-123", "OPENAI_API_KEY=[REDACTED_TOKEN]"),
        ("client_secret: 9f8e7d6c5b4a", "client_secret: [REDACTED_TOKEN]"),
        ("password=hunter2hunter2", "password=[REDACTED_TOKEN]"),
        ("Authorization: Token 9944b09199c62bcf9418ad84", "Authorization: Token [REDACTED_TOKEN]"),
        # card numbers with other separators, one kind all along
        ("card 4111.1111.1111.1111 ok", "card [REDACTED_CARD] ok"),
        ("card 4111\u00a01111\u00a01111\u00a01111", "card [REDACTED_CARD]"),
        ("card 4111/1111/1111/1111", "card [REDACTED_CARD]"),
        ("amex 3782.822463.10005", "amex [REDACTED_CARD]"),
        ("card ４１１１１１１１１１１１１１１１", "card [REDACTED_CARD]"),
    ],
)
def test_builtin_patterns_mask(text: str, expected: str) -> None:
    assert ALL.redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails the Luhn check: an order number, not a card
        "order 12345 on 2024-05-01 at 10:30",
        "pi is 3.14159265358979",
        "ts 1700000000000000",
        "version 1.2.3, 42 tokens, latency 1234.5 ms",
        "span 5b8efff798038103d269b633813fc60c",
        # near misses of the wider patterns
        "the risk-assessment-framework-2024 report",  # `sk-` inside a word, not random
        "task-management-system-overview",
        "call_llm_with_retries_and_backoff",
        "the token limitation of gpt-4o",  # `token` followed by a word, not a secret
        "max_tokens=1024 temperature=0.7",
        "token_count: 12345678, prompt_tokens: 123456789",
        "tokenizer: cl100k_base_encoding",
        "The key point: everything matters here",
        "keyboard=logitech-mx-keys",
        "secret: the cake",
        "xoxo-everyone-here-hugs",  # Slack tokens hold digits
        "p=0.4111111111111111 and 3.1415926535897932",  # decimals, not cards
        "order 1234.5678.9012.3457",  # card-shaped, fails the Luhn check
        "4111.1111.1111.1111.2222",  # a longer dotted sequence
        "4111.1111 1111-1111",  # separators that change along the way
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert ALL.redact_text(text) == text


def test_values_under_secret_names_are_masked_whole() -> None:
    value = {
        "api_key": "short1",
        "headers": {"X-Api-Key": "abc", "Accept": "json"},
        "accessToken": ["t1", "t2"],
        "password": "hunter2",
        "max_tokens": 100,
        "token_count": "12",
        "tier": "pro",
    }
    assert Redactor.from_config({}).redact_value(value) == {
        "api_key": "[REDACTED_TOKEN]",
        "headers": {"X-Api-Key": "[REDACTED_TOKEN]", "Accept": "json"},
        "accessToken": ["[REDACTED_TOKEN]", "[REDACTED_TOKEN]"],
        "password": "[REDACTED_TOKEN]",
        "max_tokens": 100,
        "token_count": "12",
        "tier": "pro",
    }
    assert Redactor.from_config({"patterns": ["card"]}).redact_value(value) == value  # `bearer` is off


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")


def test_defaults_mask_secrets_and_cards_but_not_emails() -> None:
    default = Redactor.from_config({})
    assert default.redact_text("sk-abcdefghijklmnopqrstuvwx") == "[REDACTED_API_KEY]"
    assert default.redact_text("4111111111111111") == "[REDACTED_CARD]"
    assert default.redact_text("bob@example.com") == "bob@example.com"


def test_user_regexes_run_first_with_their_own_label() -> None:
    r = Redactor.from_config({"patterns": ["phone"], "custom": {"ssn": r"\b\d{3}-\d{2}-\d{4}\b"}})
    assert r.redact_text("ssn 123-45-6789") == "ssn [REDACTED_SSN]"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"patterns": ["nope"]}, "unknown redaction pattern"),
        ({"custom": {"x": "("}}, "not a valid regex"),
        ({"mode": "sometimes"}, "redaction.mode"),
        ({"colour": "red"}, "unknown redaction keys"),
    ],
)
def test_bad_config_names_the_problem(config: dict[str, object], message: str) -> None:
    with pytest.raises(RedactionConfigError, match=message):
        Redactor.from_config(config)


def _span() -> Span:
    return Span(
        trace_id="t" * 32,
        span_id="s" * 16,
        kind="llm",
        model="gpt-4o",
        prompt="my email is ann@example.com",
        response="sure, ann@example.com",
        input_messages=[{"role": "user", "content": "card 4111 1111 1111 1111"}],
        tool_args={"key": "sk-abcdefghijklmnopqrstuvwx"},
        documents=[{"id": "d1", "content": "call +44 20 7946 0958"}],
        metadata={"note": "ann@example.com", "tier": "pro"},
        attributes={"gen_ai.prompt.0.content": "ann@example.com", "http.method": "POST"},
        prompt_tokens=12,
    )


def test_span_fields_and_nested_json_are_masked() -> None:
    span = _span()
    ALL.redact_span(span)
    assert span.prompt == "my email is [REDACTED_EMAIL]"
    assert span.input_messages == [{"role": "user", "content": "card [REDACTED_CARD]"}]
    assert span.tool_args == {"key": "[REDACTED_API_KEY]"}
    assert span.documents == [{"id": "d1", "content": "call [REDACTED_PHONE]"}]
    assert span.metadata == {"note": "[REDACTED_EMAIL]", "tier": "pro"}
    assert span.attributes["gen_ai.prompt.0.content"] == "[REDACTED_EMAIL]"
    assert span.prompt_tokens == 12


def test_metadata_only_keeps_no_text() -> None:
    r = Redactor.from_config({"mode": "metadata_only"})
    span = _span()
    span.tool_calls = [{"id": "c1", "name": "search", "arguments": '{"q": "secret"}'}]
    r.redact_span(span)
    for name in ("prompt", "response", "input_messages", "tool_args", "documents", "retrieval_query"):
        assert getattr(span, name) is None
    assert span.tool_calls == [{"id": "c1", "name": "search"}]
    assert "gen_ai.prompt.0.content" not in span.attributes
    assert span.attributes["http.method"] == "POST"
    assert span.model == "gpt-4o" and span.prompt_tokens == 12
    fb = Feedback(feedback_id="f", message_id="m", feedback_type="thumbs_down", timestamp_us=1, feedback_text="bad")
    r.redact_feedback(fb)
    assert fb.feedback_text is None


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_redact_text_never_fails_and_is_stable(text: str) -> None:
    once = ALL.redact_text(text)
    assert ALL.redact_text(once) == once


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"4[0-9]{15}", fullmatch=True))
def test_every_luhn_valid_card_is_masked(number: str) -> None:
    masked = ALL.redact_text(f"pay with {number} please")
    assert (number not in masked) == luhn_valid(number)


_PIECES = ["sk-", "proj-", "llm_", "AKIA", "AIza", "ghp_", "xoxb-", "api_key", "apiKey", "Token", "bearer ", "password"]
_PIECES += [
    "=",
    ":",
    " ",
    '"',
    "?",
    "&",
    ".",
    "-",
    "_",
    "4111",
    "0",
    "9",
    "Ab3",
    "xyz",
    "[",
    "]",
    "\u212a",
    "\u017f",
    "ß",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_scanning_only_where_matches_start_finds_what_the_regex_finds(text: str) -> None:
    for pattern in BUILTIN.values():
        if pattern.starts:
            expected = pattern.regex.sub(pattern.replacement, text)
            assert _sub_where_matches_start(pattern, text, pattern.replacement) == expected
