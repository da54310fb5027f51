"""Chat sessions generated with known labels: which calls a user retried, edited or abandoned.

The generator plays users of a coding assistant. Beside the signals it plants hard cases: a different
question that differs from the previous one by a single word, asked quickly (not a retry), a "thanks"
that ends a satisfied session (not an abandon), paraphrased retries and edits small enough to look
like retries. The labels are what the user did, not what the rules say, so precision measured
against them is honest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

SUBJECTS = [
    "a list",
    "a dictionary",
    "a CSV file",
    "a JSON document",
    "a date string",
    "an HTTP response",
    "a database table",
    "a log file",
    "a binary tree",
    "a linked list",
    "an image",
    "a config file",
]
ACTIONS = ["sort", "reverse", "parse", "validate", "merge", "filter", "serialize", "compress", "cache", "paginate"]
LANGS = ["Python", "Go", "Rust", "TypeScript", "Java", "Ruby", "Kotlin", "C#"]
TEMPLATES = [
    "How do I {a} {s} in {l}?",
    "What is the fastest way to {a} {s} with {l}?",
    "Can you show me code to {a} {s} using {l}?",
    "Explain how to {a} {s} in {l} without extra libraries.",
    "Why does my {l} code crash when I {a} {s}?",
    "Write a unit test that checks how we {a} {s} in {l}.",
]
CONSTRAINTS = [
    " Keep it under 20 lines.",
    " Use only the standard library.",
    " Show the time complexity too.",
    " It must also handle empty input.",
]
THANKS = ["Thanks, that works!", "Great, thank you.", "Perfect, that fixed it.", "ok thanks"]


@dataclass
class Call:
    span_id: str
    message_id: str
    trace_id: str
    start: float
    latency_s: float
    messages: list[dict[str, str]]
    answer: str
    labels: set[str] = field(default_factory=set)

    @property
    def end(self) -> float:
        return self.start + self.latency_s


@dataclass
class Generated:
    events: list[dict[str, Any]]
    labels: dict[str, set[str]]  # span id -> {"retry", "edit", "abandon"}
    llm_calls: int


def _question(rng: random.Random) -> tuple[str, dict[str, str]]:
    slots = {"a": rng.choice(ACTIONS), "s": rng.choice(SUBJECTS), "l": rng.choice(LANGS)}
    template = rng.choice(TEMPLATES)
    return template.format(**slots), {"template": template, **slots}


REVIEW_SYSTEM = "You review diffs for bugs. Answer with the problems you find, most serious first."
FILES = ["billing.py", "auth.py", "cache.py", "views.py", "models.py", "tasks.py"]
CHANGES = ["x = 1", "return None", "timeout = 30", "retries += 1", "user = get_user(id)", "items.sort()"]


def _diff(rng: random.Random) -> str:
    old, new = rng.sample(CHANGES, 2)
    return f"Review this diff of {rng.choice(FILES)} for bugs:\n- {old}\n+ {new}"


def _review_session(rng: random.Random, session: _Session) -> None:
    """A stateless app: every call sends the system prompt and one diff, never the conversation. Its calls
    look alike (same earlier messages, similar text) without any of them being an edit of another."""
    for _ in range(rng.randrange(1, 4)):
        session.call(
            [{"role": "system", "content": REVIEW_SYSTEM}, {"role": "user", "content": _diff(rng)}], rng.uniform(5, 200)
        )
    if rng.random() < 0.25:  # the same diff sent again: a retry
        session.calls[-1].labels.add("retry")
        session.call(session.calls[-1].messages, rng.uniform(3, 60))


def _near_duplicate(rng: random.Random, question: str) -> str:
    """The same question typed again: case, punctuation, a typo or a word of politeness."""
    kind = rng.choice(["lower", "punct", "typo", "please", "same"])
    if kind == "lower":
        return question.lower()
    if kind == "punct":
        return question.rstrip("?.") + ("??" if question.endswith("?") else "!")
    if kind == "typo":
        i = rng.randrange(1, len(question) - 2)
        return question[:i] + question[i + 1] + question[i] + question[i + 2 :]
    if kind == "please":
        return "Please, " + question[0].lower() + question[1:]
    return question


def _edited(rng: random.Random, parts: dict[str, str]) -> str:
    """The question changed on purpose: another subject, language or action, or a constraint added."""
    changed = dict(parts)
    kind = rng.choice(["s", "l", "a", "constraint"])
    if kind == "constraint":
        return parts["template"].format(**parts) + rng.choice(CONSTRAINTS)
    options = {"s": SUBJECTS, "l": LANGS, "a": ACTIONS}[kind]
    changed[kind] = rng.choice([o for o in options if o != parts[kind]])
    return parts["template"].format(**changed)


def _next_question(rng: random.Random, parts: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A genuinely new question of the conversation; sometimes one word away from the last one."""
    if rng.random() < 0.3:
        changed = dict(parts)
        key = rng.choice(["s", "l"])
        changed[key] = rng.choice([o for o in {"s": SUBJECTS, "l": LANGS}[key] if o != parts[key]])
        return parts["template"].format(**changed), changed
    return _question(rng)


class _Session:
    """One session's calls, one after another in time."""

    def __init__(self, rng: random.Random, ids: _Ids, start: float) -> None:
        self.rng, self.ids, self.t = rng, ids, start
        self.calls: list[Call] = []

    def call(self, messages: list[dict[str, str]], gap: float) -> Call:
        self.t += gap
        c = Call(
            span_id=self.ids.hex(16),
            message_id=f"msg-{self.ids.hex(12)}",
            trace_id=self.ids.hex(32),
            start=self.t,
            latency_s=self.rng.uniform(0.8, 6.0),
            messages=[dict(m) for m in messages],
            answer=f"Here is how: step {self.rng.randrange(100)}.",
        )
        self.t = c.end
        self.calls.append(c)
        return c


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))


def generate(*, sessions: int, now: float, seed: int = 7, prefix: str = "gen") -> Generated:
    """`sessions` sessions that all ended between 20 minutes and 3 hours before `now`."""
    rng = random.Random(seed)
    ids = _Ids(rng)
    events: list[dict[str, Any]] = []
    labels: dict[str, set[str]] = {}
    llm_calls = 0
    for n in range(sessions):
        session_id = f"{prefix}-{n:04d}"
        user = f"user-{rng.randrange(40)}"
        t = now - rng.uniform(1200, 3 * 3600) - 1500
        history: list[dict[str, str]] = []
        session = _Session(rng, ids, t)
        call, calls = session.call, session.calls
        question, parts = _question(rng)
        kind = rng.choices(
            ["normal", "regenerate", "asked_again", "edit", "quick_followup", "review"],
            weights=[32, 10, 12, 15, 15, 16],
        )[0]
        feature = "code_review" if kind == "review" else "assistant"
        if kind == "review":
            _review_session(rng, session)
        for _ in range(0 if kind == "review" else rng.randrange(0, 3)):  # some earlier, unremarkable turns
            c = call([*history, {"role": "user", "content": question}], rng.uniform(5, 120))
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": c.answer}]
            question, parts = _next_question(rng, parts)
            if rng.random() < 0.5:
                question, parts = _question(rng)
        a = (
            session.calls[-1]
            if kind == "review"
            else call([*history, {"role": "user", "content": question}], rng.uniform(5, 60))
        )
        if kind == "regenerate":
            a.labels.add("retry")
            call(a.messages, rng.uniform(2, 60))
        elif kind == "asked_again":
            a.labels.add("retry")
            again = _near_duplicate(rng, question)
            after = [*a.messages, {"role": "assistant", "content": a.answer}, {"role": "user", "content": again}]
            call(after, rng.uniform(5, 90))
        elif kind == "edit":
            a.labels.add("edit")
            # Some edits only fix a typo: to the rules that is the same question asked again (a retry).
            edited = _near_duplicate(rng, question) if rng.random() < 0.15 else _edited(rng, parts)
            call([*history, {"role": "user", "content": edited}], rng.uniform(8, 240))
        elif kind == "quick_followup":
            follow, _ = _next_question(rng, parts)
            after = [*a.messages, {"role": "assistant", "content": a.answer}, {"role": "user", "content": follow}]
            call(after, rng.uniform(5, 90))
        # A quarter of the apps log a flat prompt (the user's message) rather than the message list: the
        # rules then cannot see whether a message replaced the previous turn.
        flat = rng.random() < 0.25
        # The stateless review app has no conversation to say thanks in.
        ending = rng.choices(
            ["leave", "thumbs", "activity", "thanks"], weights=[35, 30, 25, 0 if kind == "review" else 10]
        )[0]
        last = calls[-1]
        extra: list[dict[str, Any]] = []
        if ending == "leave":
            last.labels.add("abandon")
            if rng.random() < 0.5:  # the page that showed the answer, loaded just after it
                extra.append(_request(ids, session_id, user, last.end + rng.uniform(0.2, 8)))
        elif ending == "thumbs":
            extra.append(
                {
                    "type": "feedback",
                    "message_id": last.message_id,
                    "feedback_type": rng.choice(["thumbs_up", "thumbs_down"]),
                    "session_id": session_id,
                    "user_id": user,
                    "timestamp": last.end + rng.uniform(2, 30),
                }
            )
        elif ending == "activity":  # the user went on working in the app for a while
            for k in range(rng.randrange(1, 4)):
                extra.append(_request(ids, session_id, user, last.end + 60 + 120 * k + rng.uniform(0, 60)))
        else:
            history = [*last.messages, {"role": "assistant", "content": last.answer}]
            call([*history, {"role": "user", "content": rng.choice(THANKS)}], rng.uniform(5, 40))
        for c in calls:
            llm_calls += 1
            labels[c.span_id] = set(c.labels)
            events.append(
                {
                    "type": "llm",
                    "model": "gpt-4o-mini",
                    "prompt": c.messages[-1]["content"] if flat else c.messages,
                    "response": c.answer,
                    "prompt_tokens": 20 * len(c.messages),
                    "completion_tokens": 12,
                    "latency_ms": c.latency_s * 1000,
                    "timestamp": c.start,
                    "trace_id": c.trace_id,
                    "span_id": c.span_id,
                    "message_id": c.message_id,
                    "session_id": session_id,
                    "user_id": user,
                    "feature": feature,
                }
            )
        events.extend(extra)
    return Generated(events, labels, llm_calls)


def _request(ids: _Ids, session_id: str, user: str, at: float) -> dict[str, Any]:
    return {
        "type": "span",
        "kind": "request",
        "name": "GET /chat",
        "trace_id": ids.hex(32),
        "span_id": ids.hex(16),
        "timestamp": at,
        "latency_ms": 40.0,
        "session_id": session_id,
        "user_id": user,
        "status": "ok",
    }


def precision_recall(predicted: set[tuple[str, str]], labels: dict[str, set[str]], name: str) -> tuple[float, float]:
    truth = {(span, name) for span, names in labels.items() if name in names}
    found = {p for p in predicted if p[1] == name}
    precision = len(found & truth) / len(found) if found else 0.0
    recall = len(found & truth) / len(truth) if truth else 0.0
    return precision, recall
