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
    digits = "".join(ch for ch in text if ch.isdigit())
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


def _may_hold_bearer(text: str) -> bool:
    # str.lower folds like the regex's IGNORECASE for these letters (e.g. KELVIN SIGN -> k).
    lowered = text.lower()
    return "bearer" in lowered or "token" in lowered


def _may_hold_email(text: str) -> bool:
    return "@" in text


API_KEY = Pattern(
    "api_key",
    re.compile(
        r"(?<![A-Za-z0-9_-])(?:"
        r"sk-ant-[A-Za-z0-9_-]{16,}"  # Anthropic
        r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}"  # OpenAI
        r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
        r"|AIza[0-9A-Za-z_-]{35}"  # Google
        r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub
        r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
        r"|llm_[A-Za-z0-9_-]{20,}"  # llmlens' own keys
        r")"
    ),
    "[REDACTED_API_KEY]",
    may_match=_may_hold_api_key,
)
BEARER = Pattern(
    "bearer",
    re.compile(r"(?i)\b(bearer|token)(\s+|=|:\s*)[A-Za-z0-9._~+/-]{8,}=*"),
    r"\1\2[REDACTED_TOKEN]",
    may_match=_may_hold_bearer,
)
CARD = Pattern(
    "card",
    re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d-])"),
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
