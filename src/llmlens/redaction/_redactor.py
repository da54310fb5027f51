"""Redactor: masks sensitive text in spans and feedback before they are stored (or sent, in the SDK).

Built from a plain dict (`settings.redaction` on the server, `llmlens.init(redact=...)` in the SDK):

    mode = "redact"            # or "metadata_only" (store no prompt/response text) or "off"
    patterns = ["api_key", "bearer", "card", "email", "phone"]
    custom = {employee_id = "EMP-[0-9]{6}"}   # name -> regex, masked as [REDACTED_EMPLOYEE_ID]

Stdlib only: the SDK imports it without pulling anything heavy.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from ._patterns import BUILTIN, DEFAULT_PATTERNS, Pattern

MODES = ("redact", "metadata_only", "off")

# Span fields holding free text or JSON with text in it.
SPAN_TEXT_FIELDS = ("prompt", "response", "retrieval_query", "error_message")
SPAN_JSON_FIELDS = (
    "input_messages",
    "output_messages",
    "tool_args",
    "tool_result",
    "tool_calls",
    "documents",
    "variables",
    "request_params",
    "metadata",
    "attributes",
)
# What "metadata only" drops: every field that carries what users or models said.
CONTENT_FIELDS = (
    "prompt",
    "response",
    "input_messages",
    "output_messages",
    "tool_args",
    "tool_result",
    "retrieval_query",
    "documents",
    "variables",
)
# Attribute keys (OTel GenAI, OpenInference, OpenLLMetry) that carry content, dropped in metadata-only mode.
_CONTENT_ATTRIBUTE = re.compile(
    r"(^|\.)(prompt|prompts|completion|completions|content|input\.value|output\.value|input_messages|"
    r"output_messages|messages|documents|arguments|query|text)(\.|$)",
    re.IGNORECASE,
)


class RedactionConfigError(ValueError):
    """A bad `redaction` setting; the message names the key."""


class Redactor:
    """Apply with `redact_span(span)` / `redact_feedback(fb)` (in place) or `redact_text(text)`."""

    def __init__(self, patterns: list[Pattern], mode: str = "redact") -> None:
        if mode not in MODES:
            raise RedactionConfigError(f"redaction.mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.patterns = patterns
        self.mode = mode
        # Object keys that name a secret (`api_key`, `password`): their values are masked whole.
        self._secret_keys = [(p.secret_keys, f"[REDACTED_{_label(p)}]") for p in patterns if p.secret_keys is not None]
        self._secret_key_masks: dict[str, str | None] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | bool | None) -> Redactor:
        """`True`/`None`/`{}`: the defaults; `False`: off; a dict: see the module docstring."""
        if config is False:
            return cls([], "off")
        if config is None or config is True:
            config = {}
        if not isinstance(config, Mapping):
            raise RedactionConfigError("redaction must be a table (dict) or a boolean")
        unknown = set(config) - {"mode", "patterns", "custom", "enabled"}
        if unknown:
            raise RedactionConfigError(f"unknown redaction keys: {', '.join(sorted(unknown))}")
        if config.get("enabled") is False:
            return cls([], "off")
        mode = str(config.get("mode", "redact"))
        names = config.get("patterns", list(DEFAULT_PATTERNS))
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise RedactionConfigError("redaction.patterns must be a list of names")
        builtin: list[Pattern] = []
        for name in names:
            if name not in BUILTIN:
                raise RedactionConfigError(
                    f"unknown redaction pattern {name!r}; built-in: {', '.join(BUILTIN)} (add regexes under custom)"
                )
            builtin.append(BUILTIN[name])
        custom = config.get("custom", {})
        if isinstance(custom, list):  # [{name = "...", pattern = "..."}]
            custom = {str(c.get("name")): c.get("pattern") for c in custom if isinstance(c, Mapping)}
        if not isinstance(custom, Mapping):
            raise RedactionConfigError("redaction.custom must map names to regexes")
        # The user's own patterns run first: their labels win over a built-in that also matches.
        patterns: list[Pattern] = []
        for name, regex in custom.items():
            try:
                compiled = re.compile(str(regex))
            except re.error as exc:
                raise RedactionConfigError(f"redaction.custom.{name} is not a valid regex: {exc}") from None
            label = re.sub(r"\W+", "_", str(name)).upper()
            patterns.append(Pattern(str(name), compiled, f"[REDACTED_{label}]"))
        return cls(patterns + builtin, mode)

    @property
    def active(self) -> bool:
        return self.mode != "off" and (bool(self.patterns) or self.mode == "metadata_only")

    def redact_text(self, text: str) -> str:
        for pattern in self.patterns:
            if pattern.may_match is not None and not pattern.may_match(text):
                continue  # the cheap pre-check rules the regex out
            replacement: str | Callable[[re.Match[str]], str] = (
                pattern.replacement if pattern.check is None else functools.partial(_checked, pattern)
            )
            if pattern.starts:
                text = _sub_where_matches_start(pattern, text, replacement)
            else:
                text = pattern.regex.sub(replacement, text)
        return text

    def redact_value(self, value: Any, memo: dict[str, str] | None = None) -> Any:
        """Strings anywhere in a JSON-like value (dict keys stay; they are names, not content).

        `memo` remembers texts already redacted: a span carries its prompt in several fields.
        """
        if isinstance(value, str):
            if memo is None:
                return self.redact_text(value)
            done = memo.get(value)
            if done is None:
                done = memo[value] = self.redact_text(value)
            return done
        if isinstance(value, dict):
            if not self._secret_keys:
                return {k: self.redact_value(v, memo) for k, v in value.items()}
            out = {}
            for k, v in value.items():
                mask = self._mask_for_key(k) if isinstance(k, str) else None
                out[k] = self.redact_value(v, memo) if mask is None else _mask_strings(v, mask)
            return out
        if isinstance(value, list | tuple):
            return [self.redact_value(v, memo) for v in value]
        return value

    def _mask_for_key(self, key: str) -> str | None:
        # Spans repeat the same few keys: remember each answer (bounded; keys are names, not content).
        found = self._secret_key_masks.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = next((mask for names, mask in self._secret_keys if names.fullmatch(key)), None)
            if len(self._secret_key_masks) >= _MAX_REMEMBERED_KEYS:
                self._secret_key_masks.clear()
            self._secret_key_masks[key] = found
        return found if isinstance(found, str) else None

    def redact_span(self, span: Any) -> None:
        if self.mode == "off":
            return
        if self.mode == "metadata_only":
            for name in CONTENT_FIELDS:
                setattr(span, name, None)
            span.tool_calls = _names_only(span.tool_calls)
            if span.attributes:
                span.attributes = {k: v for k, v in span.attributes.items() if not _CONTENT_ATTRIBUTE.search(k)}
        if not self.patterns:
            return
        memo: dict[str, str] = {}
        for name in SPAN_TEXT_FIELDS:
            value = getattr(span, name)
            if value:
                setattr(span, name, self.redact_value(value, memo))
        for name in SPAN_JSON_FIELDS:
            value = getattr(span, name)
            if value:
                setattr(span, name, self.redact_value(value, memo))

    def redact_feedback(self, feedback: Any) -> None:
        if self.mode == "off":
            return
        if self.mode == "metadata_only":
            feedback.feedback_text = None
        if not self.patterns:
            return
        if feedback.feedback_text:
            feedback.feedback_text = self.redact_text(feedback.feedback_text)
        if feedback.metadata:
            feedback.metadata = self.redact_value(feedback.metadata)


_UNSEEN = object()
_MAX_REMEMBERED_KEYS = 4096


def _label(pattern: Pattern) -> str:
    """The label of a pattern's replacement (`\\1[REDACTED_TOKEN]` -> TOKEN)."""
    found = re.search(r"\[REDACTED_(\w+)\]", pattern.replacement)
    return found.group(1) if found else pattern.name.upper()


def _mask_strings(value: Any, mask: str) -> Any:
    """Every non-empty string in `value` replaced by `mask`; numbers, booleans and structure kept."""
    if isinstance(value, str):
        return mask if value else value
    if isinstance(value, dict):
        return {k: _mask_strings(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_strings(v, mask) for v in value]
    return value


# Letters IGNORECASE matches to ASCII ones (`(?i)k` matches KELVIN SIGN) that str.lower() leaves alone.
_FOLDED_BY_REGEX_ONLY = ("\u0130", "\u0131", "\u017f", "\u212a")


def _sub_where_matches_start(pattern: Pattern, text: str, replacement: str | Callable[[re.Match[str]], str]) -> str:
    """`pattern.regex.sub(replacement, text)`, trying the regex only where one of `pattern.starts` occurs.

    The same result: `sub` takes the leftmost match, then the next one from its end, and a match can
    only begin where a start word does. Text whose lower-casing moves characters (a letter that
    lower-cases to two) or hides a start from `str.find` goes through `sub` itself.
    """
    lowered = text.lower()
    if len(lowered) != len(text) or (not text.isascii() and any(c in text for c in _FOLDED_BY_REGEX_ONLY)):
        return pattern.regex.sub(replacement, text)
    starts: set[int] = set()
    for word in pattern.starts:
        at = lowered.find(word)
        while at != -1:
            starts.add(at)
            at = lowered.find(word, at + 1)
    if not starts:
        return text
    parts: list[str] = []
    done = 0
    match = pattern.regex.match
    for at in sorted(starts):
        if at < done:
            continue
        found = match(text, at)
        if found is None:
            continue
        parts.append(text[done:at])
        parts.append(found.expand(replacement) if isinstance(replacement, str) else replacement(found))
        done = found.end()
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _checked(pattern: Pattern, match: re.Match[str]) -> str:
    text = match.group(0)
    return pattern.replacement if pattern.check is not None and pattern.check(text) else text


def _names_only(tool_calls: Any) -> Any:
    """Tool calls keep which tool was called, not the arguments."""
    if not isinstance(tool_calls, list):
        return None
    return [{k: v for k, v in c.items() if k in ("id", "name", "type")} for c in tool_calls if isinstance(c, dict)]
