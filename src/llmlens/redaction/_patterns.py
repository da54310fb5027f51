"""The built-in redaction patterns: secrets (provider API keys, bearer tokens) and PII (emails, phones, cards).

Each pattern is a compiled regex plus an optional check on the match (the Luhn checksum for cards,
a digit count for phone numbers) so that order numbers and timestamps are not masked by accident,
and an optional cheap pre-check (`may_match`: a few substring tests) that is False only when the
regex cannot match, so most text skips the regex scan entirely.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pattern:
    """One kind of sensitive text: what it looks like, and what replaces it."""

    name: str
    regex: re.Pattern[str]
    replacement: str
    check: Callable[[str], bool] | None = None
    may_match: Callable[[str], bool] | None = None
    # JSON object keys (`api_key`, `password`, `x-api-key`) whose string values are secrets whole.
    secret_keys: re.Pattern[str] | None = None
    # Lower-case words every match begins with: the regex is tried only where one of them occurs
    # (found with str.find), not at every position of the text, which is ~70 ns a character.
    starts: tuple[str, ...] = ()


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_check(text: str) -> bool:
    # `\d` also matches other scripts' digits (full-width, Arabic-Indic): checksum their values too.
    digits = "".join(str(int(ch)) for ch in text if ch.isdecimal())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _phone_check(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return 9 <= digits <= 15


_ASCII_DIGITS = "0123456789"


def _may_hold_digits(text: str) -> bool:
    # `\d` also matches non-ASCII digits: only pure-ASCII text (an O(1) check) is ruled out cheaply.
    return not text.isascii() or any(d in text for d in _ASCII_DIGITS)


def _may_hold_api_key(text: str) -> bool:
    # Every alternative of API_KEY starts with one of these literals.
    return (
        "sk-" in text
        or ("A" in text and ("AKIA" in text or "ASIA" in text or "AIza" in text))
        or "xox" in text
        or ("_" in text and ("gh" in text or "llm_" in text))
    )


def _may_hold_email(text: str) -> bool:
    return "@" in text


# Provider prefixes no ordinary word contains: a key is found even glued to the text before it
# (`key_sk-proj-...`, `xsk-ant-...`, `tokenghp_...`). Its body runs as far as its own alphabet does.
_DISTINCT_KEYS = (
    r"sk-(?:ant|proj|svcacct|admin)-[A-Za-z0-9_-]{16,}"  # Anthropic; OpenAI project, service, admin keys
    r"|AIza[0-9A-Za-z_-]{35}"  # Google
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub
    r"|xox[abeoprs]-(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9-]{10,}"  # Slack (its tokens always hold digits)
    r"|(?<![0-9A-Z])(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids: a boundary is where A-Z0-9 stops
)
# `sk-` and `llm_` also end ordinary words (`task-`, `call_llm_`): a key there starts a token, or,
# glued to a word, has the mixed letters and digits of random text.
_RANDOM_BODY = r"(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[A-Z])"
_SHORT_PREFIX_KEYS = (
    r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}"  # OpenAI
    r"|(?<![A-Za-z0-9_-])llm_[A-Za-z0-9_-]{20,}"  # llmlens' own keys
    rf"|sk-{_RANDOM_BODY}[A-Za-z0-9_-]{{16,}}"
    rf"|llm_{_RANDOM_BODY}[A-Za-z0-9_-]{{20,}}"
)
API_KEY = Pattern(
    "api_key",
    re.compile(f"(?:{_DISTINCT_KEYS}|{_SHORT_PREFIX_KEYS})"),
    "[REDACTED_API_KEY]",
    may_match=_may_hold_api_key,
    starts=("sk-", "aiza", "gh", "xox", "akia", "asia", "llm_"),
)

# Names under which a secret is handed over: `api_key=`, `"apiKey": "`, `X-Api-Key:`, `access_token=`,
# `OPENAI_API_KEY=`, `client_secret=`, `password=`. Whatever the name is glued to (`openai_`, `x-`,
# `access`) comes before it and is kept; the name must end right before the separator, so that
# `max_tokens=`, `token_count:` and `tokenizer:` are not secrets. A bare `key` is not a name
# (`sort_key=`, `key: point`).
_SECRET_NAME = r"(?:(?:api|access|secret|private)[_-]?key|secret|token|passw(?:or)?d|credentials?)"
# What a secret value is made of; `[`/`]` stay out so that a masked value is never masked again.
_SECRET_VALUE = r"[A-Za-z0-9._~+/%!#$*^@-]{8,}=*"
BEARER = Pattern(
    "bearer",
    re.compile(
        r"(?i)("
        rf"{_SECRET_NAME}[\"']?[ \t]*[:=][ \t]*[\"']?"  # name=value, "name": "value", Name: value
        r"|\bbearer\s+"  # Authorization: Bearer <token>
        r"|\btoken\s+(?=\S*[0-9])"  # Authorization: Token <token>, not "the token limit"
        rf"){_SECRET_VALUE}"
    ),
    r"\1[REDACTED_TOKEN]",
    starts=("api", "access", "secret", "private", "token", "passw", "credential", "bearer"),
    # The name ends the key; before it, anything ending in a non-letter (`openai_`, `x-`) or a
    # camel-case hump (`access`Token).
    secret_keys=re.compile(rf"(?i)(?:.*(?:[^A-Za-z]|(?-i:[a-z](?=[A-Z]))))?{_SECRET_NAME}"),
)
# Card numbers: unbroken, or split by spaces or dashes anywhere, or in the usual groups (4-4-4-4 up to
# 19 digits, 4-6-5 Amex, 4-6-4 Diners) split by one other kind of separator all along: dots, slashes,
# underscores, or the no-break and thin spaces copied text carries. A number that continues a decimal
# (`0.4111...`) or a longer dotted sequence is not a card.
_CARD_SEP = "[._/\u00a0\u2007\u2009\u202f]"
CARD = Pattern(
    "card",
    re.compile(
        r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d-])"
        rf"|(?<![\d.])\d{{4}}({_CARD_SEP})(?:\d{{4}}\1\d{{4}}\1\d{{1,7}}|\d{{6}}\1\d{{4,5}})(?!\d|\1\d)"
    ),
    "[REDACTED_CARD]",
    _card_check,
    _may_hold_digits,
)
EMAIL = Pattern(
    "email",
    re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    "[REDACTED_EMAIL]",
    may_match=_may_hold_email,
)
PHONE = Pattern(
    "phone",
    re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?![\w-])"),
    "[REDACTED_PHONE]",
    _phone_check,
    _may_hold_digits,
)

BUILTIN: dict[str, Pattern] = {p.name: p for p in (API_KEY, BEARER, CARD, EMAIL, PHONE)}
# On unless the configuration names its own list: secrets and card numbers are never worth keeping.
DEFAULT_PATTERNS: tuple[str, ...] = ("api_key", "bearer", "card")
