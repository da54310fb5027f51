"""Implicit feedback from one session visit: which calls were retried, edited or abandoned, and why.

Pure functions over plain records; the service (`_service.py`) reads the records from the store.
A turn is one request of a session (its LLM calls of one trace: an agent's steps are not new questions):
its user message is the last `user` message of its first call (the template's variables when the call
filled a template, the flat prompt when it has no message list), and its answer the one of its last call.
A visit is a session's run of turns with no pause longer than `session_idle_s`. Rules, on two consecutive
turns A and B of a visit (the signal goes on A, the answer the user was not happy with):

- retry / `regenerated`: B is the same request as A (the same user message after the same earlier
  messages), sent within `retry_window_s` of A's answer (a regenerate button, or the question resent);
- retry / `asked_again`: B's user message is at least `retry_similarity` similar to A's, within the window;
- edit / `edited_message`: B's user message differs from A's but is at least `edit_similarity` similar,
  and B replaces A's turn: both carry the same earlier messages (so A's answer is not in B's context).
  That shows only in an app that sends the conversation with each call (a feature whose calls carry
  earlier answers); a stateless app's calls all carry the same earlier messages, and calls with a flat
  prompt carry none: neither gets an edit signal.

Similarity is word level (`similarity`): retyping, case, punctuation and typos keep it at 1.

On the last turn L of a visit that has ended (no span for `session_idle_s`):

- abandon / `left_after_answer`: the session's last activity (any span) ended within `abandon_after_s`
  of L's answer, and L got no thumbs up or down.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from ._settings import QualitySettings

# Long messages are compared on their first characters: similarity is quadratic in the worst case.
_COMPARED_CHARS = 2_000
_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]+")
# Two words at least this alike (difflib's character ratio) are one word with a typo.
_TYPO_SIMILARITY = 0.75


@dataclass(frozen=True, slots=True)
class Call:
    """One stored LLM call of a session, as read from the store."""

    span_id: str
    trace_id: str
    message_id: str | None
    start_s: float
    end_s: float
    input_messages: Any = None
    prompt: str | None = None
    template_id: str | None = None
    variables: Any = None
    feature: str | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """One request of a session (a trace): the user's message and the answer they got, as the rules see it.

    The signal of a turn goes on its last LLM call (whose answer the user saw)."""

    span_id: str
    trace_id: str
    message_id: str | None
    start_s: float
    end_s: float
    user_text: str | None  # the last user message (or the flat prompt, or the template's variables)
    history_key: str | None  # digest of the messages before it; None when the call carried no message list
    conversational: bool = False  # its messages carry an earlier answer: the app sends the conversation
    feature: str | None = None
    rated: bool = False  # explicit thumbs up or down on this call


@dataclass(slots=True)
class Visit:
    session_id: str
    turns: list[Turn] = field(default_factory=list)
    last_activity_s: float = 0.0  # end of the last span (of any kind) of the visit


@dataclass(frozen=True, slots=True)
class Signal:
    name: str  # retry, edit or abandon
    rule: str
    turn: Turn  # the call the signal is about
    at_s: float  # when the evidence happened
    comment: str
    detail: dict[str, Any]


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") if isinstance(p, dict) else p for p in content]
        texts = [p for p in parts if isinstance(p, str)]
        return "\n".join(texts) if texts else None
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return str(content["text"])
    return None


def _messages(input_messages: Any) -> list[Any] | None:
    if isinstance(input_messages, str):
        try:
            input_messages = json.loads(input_messages)
        except ValueError:
            return None
    return input_messages if isinstance(input_messages, list) and input_messages else None


def user_message(input_messages: Any, prompt: Any) -> tuple[str | None, str | None]:
    """(last user message, digest of the messages before it) of a call; the flat prompt when no list."""
    messages = _messages(input_messages)
    if messages is not None:
        last_user = None
        for i in range(len(messages) - 1, -1, -1):
            m = messages[i]
            if isinstance(m, dict) and m.get("role") == "user":
                last_user = i
                break
        if last_user is not None:
            earlier = [
                (m.get("role"), _content_text(m.get("content"))) if isinstance(m, dict) else (None, str(m))
                for m in messages[:last_user]
            ]
            digest = hashlib.blake2b(json.dumps(earlier, default=str).encode(), digest_size=12).hexdigest()
            return _content_text(messages[last_user].get("content")), digest
    if isinstance(prompt, str) and prompt.strip():
        return prompt, None
    return None, None


def _variables_text(variables: Any) -> str | None:
    """A template's variables are the user's input; the rendered prompt repeats the template around them."""
    if isinstance(variables, str):
        try:
            variables = json.loads(variables)
        except ValueError:
            return None
    if not isinstance(variables, dict) or not variables:
        return None
    return "\n".join(str(variables[k]) for k in sorted(variables, key=str))


def turns_from_calls(calls: Sequence[Call]) -> list[Turn]:
    """The session's requests in time order: calls of one trace are one turn (an agent's steps, a tool
    follow-up); its user message comes from its first call and its answer from its last."""
    by_trace: dict[str, list[Call]] = {}
    for call in sorted(calls, key=lambda c: (c.start_s, c.span_id)):
        by_trace.setdefault(call.trace_id, []).append(call)
    turns = []
    for trace_calls in by_trace.values():
        first, last = trace_calls[0], max(trace_calls, key=lambda c: c.end_s)
        text, history = user_message(first.input_messages, first.prompt)
        if first.template_id:
            text = _variables_text(first.variables) or text
        messages = _messages(first.input_messages) or []
        conversational = any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)
        turns.append(
            Turn(
                span_id=last.span_id,
                trace_id=last.trace_id,
                message_id=last.message_id,
                start_s=first.start_s,
                end_s=last.end_s,
                user_text=text,
                history_key=history,
                conversational=conversational,
                feature=first.feature,
            )
        )
    return sorted(turns, key=lambda t: (t.start_s, t.span_id))


def normalized(text: str) -> str:
    """Lower case, punctuation dropped, spaces collapsed: what a retyped message keeps."""
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text[:_COMPARED_CHARS].lower())).strip()


def similarity(a: str, b: str) -> float:
    """0-1: the share of words two messages have in common, in order (difflib over words).

    A word with a typo (at least `_TYPO_SIMILARITY` alike character by character) still counts as the
    same word, so a retyped question scores 1 while the same sentence about another subject (one word
    replaced by a different one) does not.
    """
    x, y = normalized(a).split(), normalized(b).split()
    if x == y:
        return 1.0
    if not x or not y:
        return 0.0
    matched = 0
    for op, i1, i2, j1, j2 in SequenceMatcher(None, x, y, autojunk=False).get_opcodes():
        if op == "equal":
            matched += i2 - i1
        elif op == "replace":
            matched += _typo_matches(x[i1:i2], y[j1:j2])
    return 2.0 * matched / (len(x) + len(y))


def _typo_matches(old: list[str], new: list[str]) -> int:
    """Words of a replaced run that are the same word mistyped: compared pairwise, in order."""
    return sum(
        1
        for u, v in zip(old, new, strict=False)
        if SequenceMatcher(None, u, v, autojunk=False).ratio() >= _TYPO_SIMILARITY
    )


def split_visits(session_id: str, turns: Sequence[Turn], activity: Iterable[float], idle_s: float) -> list[Visit]:
    """Cut a session's calls (in time order) where they pause longer than `idle_s`; `activity` holds the end
    times of all its spans, which extend the visit they fall in."""
    visits: list[Visit] = []
    for turn in turns:
        if not visits or turn.start_s - visits[-1].turns[-1].end_s > idle_s:
            visits.append(Visit(session_id))
        visits[-1].turns.append(turn)
        visits[-1].last_activity_s = max(visits[-1].last_activity_s, turn.end_s)
    starts = [v.turns[0].start_s for v in visits]
    for end in activity:
        # The visit an activity belongs to: the last one that started before it, within idle_s of its calls.
        index = next((i for i in range(len(visits) - 1, -1, -1) if starts[i] <= end), None)
        if index is None:
            continue
        visit = visits[index]
        next_start = starts[index + 1] if index + 1 < len(visits) else None
        if end - visit.turns[-1].end_s <= idle_s and (next_start is None or end < next_start):
            visit.last_activity_s = max(visit.last_activity_s, end)
    return visits


def _pair_signal(a: Turn, b: Turn, settings: QualitySettings, conversational: bool) -> Signal | None:
    if a.user_text is None or b.user_text is None:
        return None
    gap = max(0.0, b.start_s - a.end_s)
    within = gap <= settings.retry_window_s
    # The very request again (same message, same earlier messages): a regenerate button or a resend.
    resent = a.user_text.strip() == b.user_text.strip() and a.history_key == b.history_key
    same = normalized(a.user_text) == normalized(b.user_text)
    score = 1.0 if same else similarity(a.user_text, b.user_text)
    detail: dict[str, Any] = {"similarity": round(score, 3), "gap_s": round(gap, 1), "next_span_id": b.span_id}
    if within and resent:
        comment = f"the same message was sent again {gap:.0f} s later"
        return Signal("retry", "regenerated", a, b.start_s, comment, detail)
    if within and score >= settings.retry_similarity:
        return Signal(
            "retry", "asked_again", a, b.start_s, f"asked again {gap:.0f} s later ({score:.0%} similar)", detail
        )
    if same or score < settings.edit_similarity:
        return None
    # Only a message list shows that B replaced A's turn, and only in an app that sends the conversation
    # (elsewhere every call has the same earlier messages). With flat prompts a close edit cannot be told
    # from a new question one word apart (measured: docs/quality.md), so no edit is inferred there.
    if not conversational or a.history_key is None or a.history_key != b.history_key:
        return None
    return Signal(
        "edit", "edited_message", a, b.start_s, f"the message was edited and sent again ({score:.0%} similar)", detail
    )


def conversational_features(visits: Iterable[Visit]) -> set[str]:
    """Features whose calls carry earlier answers: their app sends the conversation with each call."""
    return {t.feature for v in visits for t in v.turns if t.conversational and t.feature is not None}


def infer_signals(
    visit: Visit, settings: QualitySettings, now_s: float, conversational: Iterable[str] = ()
) -> list[Signal]:
    """The signals of one visit: retry or edit on calls followed by another, abandon on the last one.

    `conversational`: features known to send the conversation (a visit's first exchange shows no earlier answer).
    """
    signals = []
    turns = visit.turns
    known = set(conversational)
    sends_conversation = any(t.conversational or (t.feature is not None and t.feature in known) for t in turns)
    for a, b in itertools.pairwise(turns):
        signal = _pair_signal(a, b, settings, sends_conversation)
        if signal is not None:
            signals.append(signal)
    if not turns:
        return signals
    last = turns[-1]
    ended = now_s - visit.last_activity_s >= settings.session_idle_s
    after = visit.last_activity_s - last.end_s
    if ended and not last.rated and after <= settings.abandon_after_s:
        signals.append(
            Signal(
                "abandon",
                "left_after_answer",
                last,
                visit.last_activity_s,
                f"the session ended {max(after, 0.0):.0f} s after this answer, with no further turn or feedback",
                {"after_s": round(max(after, 0.0), 1)},
            )
        )
    return signals
