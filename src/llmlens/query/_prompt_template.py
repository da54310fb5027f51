"""A prompt template's text recovered from the filled prompts of its calls, and the line diff of two texts."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VARYING = "{{…}}"  # where the calls' texts differ in a way no variable explains
# The attribute OpenInference instrumentations record the template's own text in.
TEMPLATE_ATTRIBUTE = "llm.prompt_template.template"
_MIN_VALUE_CHARS = 3  # shorter variable values ("a", "1") would match by chance
_BOUNDARY = re.compile(r"[\s.,;:!?()\[\]{}\"'<>/=-]")


@dataclass(slots=True)
class DiffLine:
    op: str  # " " in both, "-" only before, "+" only after
    text: str


def recorded_template(attributes: Any) -> str | None:
    """The template text an instrumentation recorded on the call, if any."""
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except ValueError:
            return None
    if not isinstance(attributes, Mapping):
        return None
    text = attributes.get(TEMPLATE_ATTRIBUTE)
    return text if isinstance(text, str) and text.strip() else None


def fill_back(prompt: str, variables: Any) -> str | None:
    """`prompt` with each variable's value written back as `{{name}}` (whole words only, longest values
    first); None when no value occurs in it (a call that did not fill this template, e.g. a follow-up)."""
    if isinstance(variables, str):
        try:
            variables = json.loads(variables)
        except ValueError:
            return None
    if not isinstance(variables, Mapping):
        return None
    values = sorted(
        (
            (str(v), str(k))
            for k, v in variables.items()
            if isinstance(v, str | int | float) and not isinstance(v, bool)
        ),
        key=lambda pair: -len(pair[0]),
    )
    text, found = prompt, False
    for value, name in values:
        if len(value) < _MIN_VALUE_CHARS:
            continue
        pattern = re.compile(r"(?<!\w)" + re.escape(value) + r"(?!\w)")
        placeholder = "{{" + name + "}}"
        text, n = pattern.subn(placeholder.replace("\\", "\\\\"), text)  # a backslash in a name stays one
        found = found or n > 0
    return text if found else None


def recover_template(texts: Sequence[str]) -> str:
    """One text for many filled prompts of a template: what they all share, with the part in which they
    differ (beyond their variables) marked VARYING. Cut at word boundaries, so no word is split."""
    if not texts:
        return ""
    first = texts[0]
    if all(t == first for t in texts):
        return first
    shortest = min(len(t) for t in texts)
    prefix = 0
    while prefix < shortest and all(t[prefix] == first[prefix] for t in texts):
        prefix += 1
    suffix = 0
    while suffix < shortest - prefix and all(t[-1 - suffix] == first[-1 - suffix] for t in texts):
        suffix += 1
    # Back to the nearest boundary, so that "lorem ips" does not pass for shared text.
    while prefix and _inside_word(first[prefix - 1]) and any(_inside_word(t[prefix : prefix + 1]) for t in texts):
        prefix -= 1
    while (
        suffix and _inside_word(first[-suffix]) and any(_inside_word(t[-suffix - 1 : len(t) - suffix]) for t in texts)
    ):
        suffix -= 1
    return first[:prefix] + VARYING + (first[len(first) - suffix :] if suffix else "")


def _inside_word(char: str) -> bool:
    return bool(char) and not _BOUNDARY.match(char)


def template_diff(before: str, after: str) -> list[DiffLine]:
    """Line diff of two template texts: every line, marked as kept, removed or added."""
    a, b = before.splitlines(), after.splitlines()
    lines: list[DiffLine] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            lines += [DiffLine(" ", line) for line in a[i1:i2]]
        else:
            lines += [DiffLine("-", line) for line in a[i1:i2]] + [DiffLine("+", line) for line in b[j1:j2]]
    return lines
