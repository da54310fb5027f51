"""Built-in checks of an answer: valid JSON, a JSON schema, a regex, a text it must contain, length bounds,
refusal, language. Each is a pure function of the answer text that returns a `CheckOutcome`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmlens.model import ScoreDataType

BOOLEAN = ScoreDataType.BOOLEAN.value
NUMERIC = ScoreDataType.NUMERIC.value
CATEGORICAL = ScoreDataType.CATEGORICAL.value


class CheckConfigError(ValueError):
    """A check's parameters cannot be used (a bad regex, a schema that is not one); names the parameter."""


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    value: float | None = None  # booleans as 1.0 / 0.0
    label: str | None = None  # categorical checks (language)
    comment: str | None = None  # why, in words, when it failed


CheckFunction = Callable[[str | None], CheckOutcome]


def _passed(ok: bool, why: str | None = None) -> CheckOutcome:
    return CheckOutcome(1.0 if ok else 0.0, comment=None if ok else why)


def json_valid() -> CheckFunction:
    def check(answer: str | None) -> CheckOutcome:
        try:
            json.loads(_strip_fence(answer or ""))
        except ValueError as exc:
            return _passed(False, f"not valid JSON: {exc}")
        return _passed(True)

    return check


def _strip_fence(text: str) -> str:
    """An answer wrapped in a Markdown code fence is judged on what the fence holds."""
    stripped = text.strip()
    match = re.fullmatch(r"```[A-Za-z0-9_-]*\s*\n(.*?)\n?```", stripped, re.DOTALL)
    return match.group(1) if match else stripped


def json_schema(schema: Any) -> CheckFunction:
    from jsonschema import exceptions, validators

    if not isinstance(schema, Mapping):
        raise CheckConfigError("json_schema needs `schema`: a JSON schema object")
    try:
        validator_class = validators.validator_for(schema)
        validator_class.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise CheckConfigError(f"schema is not a valid JSON schema: {exc.message}") from None
    validator = validator_class(schema)

    def check(answer: str | None) -> CheckOutcome:
        try:
            doc = json.loads(_strip_fence(answer or ""))
        except ValueError as exc:
            return _passed(False, f"not valid JSON: {exc}")
        error = next(iter(validator.iter_errors(doc)), None)
        if error is None:
            return _passed(True)
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return _passed(False, f"{where}: {error.message}")

    return check


def regex(pattern: str, *, must_match: bool = True) -> CheckFunction:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise CheckConfigError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None

    def check(answer: str | None) -> CheckOutcome:
        found = compiled.search(answer or "") is not None
        if found == must_match:
            return _passed(True)
        return _passed(False, f"{'no' if must_match else 'a'} match of {pattern!r}")

    return check


def contains(text: str, *, case_sensitive: bool = False) -> CheckFunction:
    if not text:
        raise CheckConfigError("contains needs a non-empty `text`")
    needle = text if case_sensitive else text.lower()

    def check(answer: str | None) -> CheckOutcome:
        haystack = (answer or "") if case_sensitive else (answer or "").lower()
        return _passed(needle in haystack, f"does not contain {text!r}")

    return check


def length(min_chars: int | None = None, max_chars: int | None = None) -> CheckFunction:
    if min_chars is None and max_chars is None:
        raise CheckConfigError("length needs min_chars, max_chars or both")
    if min_chars is not None and max_chars is not None and min_chars > max_chars:
        raise CheckConfigError(f"min_chars ({min_chars}) is above max_chars ({max_chars})")

    def check(answer: str | None) -> CheckOutcome:
        n = len(answer or "")
        if min_chars is not None and n < min_chars:
            return _passed(False, f"{n} characters, fewer than {min_chars}")
        if max_chars is not None and n > max_chars:
            return _passed(False, f"{n} characters, more than {max_chars}")
        return _passed(True)

    return check


# Phrases a model uses to decline, checked near the start of the answer (a refusal leads with them; an
# answer that quotes one further down is not a refusal).
_REFUSALS = re.compile(
    r"\b(i(?:'m| am) (?:sorry|afraid),? (?:but )?i (?:can(?:'|no)?t|cannot|am unable|won't)"
    r"|i (?:can(?:'|no)?t|cannot|won't|will not|am (?:not able|unable)) (?:help|assist|provide|do|answer|comply"
    r"|share|fulfil)"
    r"|(?:as an ai|as a language model)[^.]{0,60}\b(?:can(?:'|no)?t|cannot|don't|do not|unable)"
    r"|i(?:'m| am) not able to (?:help|assist|provide|answer)"
    r"|(?:this|that) (?:request|question) (?:violates|goes against)"
    r"|i must (?:decline|refuse))",
    re.IGNORECASE,
)
_REFUSAL_WINDOW = 300


def refusal() -> CheckFunction:
    """1 when the answer declines to help (lower is better)."""

    def check(answer: str | None) -> CheckOutcome:
        head = (answer or "")[:_REFUSAL_WINDOW].replace("\u2019", "'")
        match = _REFUSALS.search(head)
        if match is None:
            return CheckOutcome(0.0)
        return CheckOutcome(1.0, comment=f"declines: {match.group(0)!r}")

    return check


# Shorter texts say too little about their language to tell.
_MIN_LANGUAGE_CHARS = 12


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (CLD2's model, compiled into pycld2); None when it cannot tell."""
    if len(text.strip()) < _MIN_LANGUAGE_CHARS:
        return None
    import pycld2

    try:
        _, _, found = pycld2.detect(text.encode("utf-8", "replace"))
    except pycld2.error:  # bytes CLD2 refuses (control characters it calls invalid)
        return None
    code = str(found[0][1])  # the likeliest language, as "fr" or "zh-Hant"
    return None if code in ("un", "xxx") else code.split("-")[0].lower()


def language(expected: str | None = None) -> CheckFunction:
    """Without `expected`: the detected language as a category. With it: 1 when the answer is in it."""
    wanted = expected.strip().lower() if expected else None

    def check(answer: str | None) -> CheckOutcome:
        found = detect_language(answer or "")
        if wanted is None:
            return CheckOutcome(label=found or "unknown")
        if found is None:
            return CheckOutcome(None, comment="too short to tell its language")
        return _passed(found == wanted, f"written in {found}, not {wanted}")

    return check
