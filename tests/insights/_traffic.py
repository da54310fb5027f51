"""Generated traffic where the right insights are known: a clean baseline with none of the patterns,
and functions that plant one pattern each and return the size the finding must come out with.

Everything is native events (docs/events.md) at explicit times in the last hours, sent over HTTP.
Costs are explicit (`cost_usd`) wherever a finding's dollars depend on them, so the expected saving
is arithmetic on what was sent; findings that price tokens use the same price book as the server.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from llmlens.pricing import PriceBook

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "music",
    "paper",
    "garden",
    "window",
    "silver",
    "orange",
    "planet",
    "forest",
    "bridge",
    "candle",
    "letter",
    "mountain",
    "ocean",
    "pencil",
    "rocket",
    "shadow",
    "summer",
    "thunder",
    "valley",
    "winter",
    "yellow",
    "anchor",
    "basket",
    "castle",
    "desert",
    "engine",
    "falcon",
    "glacier",
    "harbor",
    "island",
    "jungle",
    "kettle",
    "lantern",
    "meadow",
    "needle",
    "orchard",
    "pepper",
    "quartz",
    "saddle",
    "tunnel",
    "umbrella",
    "velvet",
    "walnut",
    "zebra",
    "copper",
    "dragon",
    "feather",
    "hammer",
    "marble",
    "nectar",
    "oyster",
    "prism",
    "ribbon",
]

_BOOK = PriceBook.load()
# Each model's time to first token on every streamed call: findings that use it get one clear value.
TTFT_MS = {"gpt-4o": 500.0, "gpt-4o-mini": 300.0}


def input_rate(model: str, provider: str = "openai") -> float:
    priced = _BOOK.cost_for_usage(model=model, provider=provider, prompt_tokens=1_000_000, completion_tokens=0)
    assert priced is not None, model
    return priced.input_per_mtok / 1e6


def cached_discount(model: str, provider: str = "openai") -> float:
    priced = _BOOK.cost_for_usage(model=model, provider=provider, prompt_tokens=1_000_000, completion_tokens=0)
    assert priced is not None, model
    return (priced.input_per_mtok - priced.cache_read_per_mtok) / 1e6


@dataclass
class Traffic:
    """Builds events ending `now` (epoch seconds). Deterministic for a seed."""

    seed: int = 3
    now: float = field(default_factory=lambda: float(int(time.time())))
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._n = 0

    # -- ids and building blocks -----------------------------------------------------------------

    def trace_id(self) -> str:
        self._n += 1
        return f"{self.seed:04x}{self._n:028x}"

    def span_id(self) -> str:
        self._n += 1
        return f"{self.seed:02x}{self._n:014x}"

    def sentence(self, words: int = 12) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(words))

    def at(self, hours_ago: float) -> float:
        return self.now - hours_ago * 3600

    def llm(self, t: float, **fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "llm",
            "trace_id": fields.pop("trace_id", None) or self.trace_id(),
            "span_id": self.span_id(),
            "timestamp": t,
            "model": "gpt-4o-mini",
            "provider": "openai",
            "prompt": f"Question: {self.sentence()}",
            "response": f"Answer: {self.sentence(20)}",
            "prompt_tokens": self.rng.randint(300, 900),
            "completion_tokens": self.rng.randint(100, 300),
            "max_tokens": 512,
            "finish_reason": "stop",
            "streamed": True,
            "latency_ms": self.rng.uniform(1500, 2500),
            "status": "ok",
            "user_id": f"user-{self.rng.randint(1, 30):02d}",
            "environment": "production",
        }
        event.update(fields)
        if event["streamed"] and "ttft_ms" not in event:
            event["ttft_ms"] = TTFT_MS.get(event["model"], 300.0)
        self.events.append(event)
        return event

    # -- traffic without any of the patterns -------------------------------------------------------

    def clean(self, calls: int = 300, *, feature: str = "answers", hours: float = 6.0) -> None:
        """Unique prompts, one model per feature, streamed, limits that fit, stable sizes, sessions that do not
        grow, one LLM call per trace (with a tool the model asked for), no errors."""
        for i in range(calls):
            t = self.at(hours * (1 - i / calls))
            trace = self.trace_id()
            root = self.span_id()
            self.events.append(
                {
                    "type": "span",
                    "kind": "request",
                    "name": "POST /chat",
                    "trace_id": trace,
                    "span_id": root,
                    "timestamp": t,
                    "latency_ms": 2600.0,
                    "feature": feature,
                }
            )
            wants_tool = i % 5 == 0
            call = self.llm(
                t + 0.01,
                trace_id=trace,
                parent_span_id=root,
                feature=feature,
                session_id=f"sess-{feature}-{i // 3}",
                message_id=f"msg-{feature}-{i}",
                **({"tool_calls": [{"name": "lookup", "arguments": {"q": i}}]} if wants_tool else {}),
            )
            if wants_tool:
                self.events.append(
                    {
                        "type": "tool",
                        "trace_id": trace,
                        "span_id": self.span_id(),
                        "parent_span_id": root,
                        "timestamp": t + 0.01 + call["latency_ms"] / 1000 + 0.005,
                        "tool_name": "lookup",
                        "args": {"q": i},
                        "result": {"found": i},
                        "latency_ms": 40.0,
                        "success": True,
                        "feature": feature,
                    }
                )
            if i % 4 == 0:
                self.events.append(
                    {
                        "type": "feedback",
                        "message_id": f"msg-{feature}-{i}",
                        "feedback_type": "thumbs_up" if i % 8 else "thumbs_down",
                        "timestamp": t + 30,
                    }
                )

    # -- planted patterns: each returns what the finding must report -------------------------------

    def duplicates(self, feature: str = "faq", distinct: int = 5, repeats: int = 8) -> dict[str, float]:
        """`distinct` requests, each sent `repeats` times two minutes apart (well inside a one-hour cache)."""
        questions = [f"How do I {self.sentence(6)}?" for _ in range(distinct)]
        for q, question in enumerate(questions):
            for r in range(repeats):
                self.llm(
                    self.at(3) + q * 7 + r * 120,
                    feature=feature,
                    model="gpt-4o",
                    prompt=question,
                    prompt_tokens=400,
                    completion_tokens=150,
                    cost_usd=0.02,
                    latency_ms=1200.0,
                    temperature=0.0,
                )
        hits = distinct * (repeats - 1)
        return {"calls_affected": hits, "saving_usd": hits * 0.02, "saving_ms_per_trace": 1200.0}

    def paraphrases(self, feature: str = "support", distinct: int = 4, repeats: int = 6) -> dict[str, float]:
        """`distinct` 30-word questions, each asked `repeats` times two minutes apart: first as written, then each
        time with one other word swapped for a word it does not contain (no exact or normalised repeat)."""
        for q in range(distinct):
            words = self.rng.sample(WORDS, 31)
            question, spare = words[:30], words[30]
            for r in range(repeats):
                asked = list(question)
                if r:
                    asked[(r * 7) % 30] = spare
                self.llm(
                    self.at(2) + q * 5 + r * 120,
                    feature=feature,
                    model="gpt-4o",
                    prompt=" ".join(asked),
                    prompt_tokens=500,
                    completion_tokens=150,
                    cost_usd=0.02,
                    latency_ms=1200.0,
                    temperature=0.0,
                )
        hits = distinct * (repeats - 1)
        return {"calls_affected": hits, "saving_usd": hits * 0.02, "saving_ms_per_trace": 1200.0}

    def sequential(self, trace_type: str = "report.build", traces: int = 20) -> dict[str, float]:
        """Traces whose two LLM calls run one after the other though neither reads the other's answer, and
        as many traces whose second call does read the first one's answer (not a finding)."""
        for i in range(traces):
            for dependent in (False, True):
                t = self.at(4) + i * 60 + (30 if dependent else 0)
                trace, parent = self.trace_id(), self.span_id()
                self.events.append(
                    {
                        "type": "span",
                        "kind": "chain",
                        "name": trace_type if not dependent else "report.refine",
                        "trace_id": trace,
                        "span_id": parent,
                        "timestamp": t,
                        "latency_ms": 2600.0,
                        "feature": "reports",
                    }
                )
                first = f"Summary of section A: {self.sentence(15)}"
                self.llm(
                    t + 0.01,
                    trace_id=trace,
                    parent_span_id=parent,
                    feature="reports",
                    prompt=f"Summarise section A: {self.sentence(30)}",
                    response=first,
                    latency_ms=1000.0,
                )
                second_prompt = (
                    f"Improve this summary: {first}" if dependent else f"Summarise section B: {self.sentence(30)}"
                )
                self.llm(
                    t + 1.05,
                    trace_id=trace,
                    parent_span_id=parent,
                    feature="reports",
                    prompt=second_prompt,
                    latency_ms=1500.0,
                )
        return {"saving_ms_per_trace": 1000.0, "traces": traces, "calls_affected": 2 * traces}

    def truncation(self, feature: str = "summaries", cut: int = 12, whole: int = 30) -> dict[str, float]:
        """`cut` answers stopped at max_tokens among `whole` that finished."""
        for i in range(cut + whole):
            is_cut = i < cut
            self.llm(
                self.at(5) + i * 30,
                feature=feature,
                max_tokens=256,
                completion_tokens=256 if is_cut else self.rng.randint(120, 200),
                finish_reason="length" if is_cut else "stop",
                cost_usd=0.004 if is_cut else 0.003,
            )
        return {"calls_affected": cut, "saving_usd": cut * 0.004}

    def caching_break(self, feature: str = "docs_qa", calls: int = 30) -> dict[str, float]:
        """Template v1 reads 60 % of its input from the provider's cache; v2 reads nothing."""
        tokens = 3000
        for i in range(calls):
            for version, cached in (("v1", int(tokens * 0.6)), ("v2", 0)):
                self.llm(
                    self.at(5 if version == "v1" else 2) + i * 40,
                    feature=feature,
                    model="gpt-4o",
                    template_id="docs_answer",
                    template_version=version,
                    prompt=f"{version} {self.sentence(40)}",
                    prompt_tokens=tokens,
                    cached_tokens=cached,
                    latency_ms=1800.0,
                )
        lost = 0.6 * tokens * calls
        return {"calls_affected": calls, "saving_usd": lost * cached_discount("gpt-4o")}

    def context_growth(self, feature: str = "tutor", sessions: int = 6, turns: int = 8) -> dict[str, float]:
        """Sessions whose prompt grows by 1,000 tokens a turn: 1,000, 2,000, ..., 8,000."""
        tail_tokens = 0
        for s in range(sessions):
            for turn in range(turns):
                tokens = 1000 * (turn + 1)
                tail_tokens += max(tokens - 4000, 0)
                self.llm(
                    self.at(5) + s * 600 + turn * 45,
                    feature=feature,
                    session_id=f"tutor-{s}",
                    prompt_tokens=tokens,
                    latency_ms=1800.0,
                )
        tail_calls = sessions * sum(1 for t in range(turns) if 1000 * (t + 1) > 4000)
        return {"calls_affected": tail_calls, "saving_usd": tail_tokens * input_rate("gpt-4o-mini")}

    def rate_limit_burst(self, model: str = "gpt-4.1-mini", errors: int = 40) -> dict[str, float]:
        """`errors` calls refused with 429 within two minutes, 150 ms each."""
        for i in range(errors):
            self.llm(
                self.at(1) + i * 3,
                feature="bulk",
                model=model,
                status="error",
                error_type="rate_limit",
                error="Error code: 429 - Rate limit reached",
                prompt_tokens=0,
                completion_tokens=0,
                latency_ms=150.0,
                streamed=False,
                ttft_ms=None,
            )
        return {"calls_affected": errors, "saving_ms_per_trace": 150.0}

    def cost_outliers(self, feature: str = "research", baseline: int = 40, outliers: int = 4) -> dict[str, float]:
        """`baseline` calls at $0.01 and `outliers` at $2.50 with 60,000-token prompts."""
        for i in range(baseline + outliers):
            big = i >= baseline
            self.llm(
                self.at(3) + i * 20,
                feature=feature,
                model="gpt-4o",
                prompt_tokens=60_000 if big else 1000,
                cost_usd=2.5 if big else 0.01,
            )
        return {"calls_affected": outliers, "saving_usd": outliers * (2.5 - 0.01)}

    def not_streamed(self, feature: str = "chat_ui", calls: int = 15) -> dict[str, float]:
        """Long answers waited for whole (6 s) on a model whose streamed calls show text after 500 ms."""
        for i in range(30):  # the model's streamed calls: its time to first token (TTFT_MS)
            self.llm(self.at(2) + i * 30, feature="live", model="gpt-4o", latency_ms=1900.0)
        for i in range(calls):
            self.llm(
                self.at(2) + i * 30 + 7,
                feature=feature,
                model="gpt-4o",
                streamed=False,
                ttft_ms=None,
                latency_ms=6000.0,
                completion_tokens=250,
            )
        return {"calls_affected": calls, "saving_ms_per_trace": 5500.0}

    def smaller_model(self, feature: str = "classify", calls: int = 80) -> dict[str, float]:
        """gpt-4o at $0.02 a call and gpt-4o-mini at $0.001 answer one feature, both rated up 3 times in 4."""
        for model, cost in (("gpt-4o", 0.02), ("gpt-4o-mini", 0.001)):
            for i in range(calls):
                message = f"msg-{feature}-{model}-{i}"
                self.llm(self.at(4) + i * 45, feature=feature, model=model, cost_usd=cost, message_id=message)
                self.events.append(
                    {
                        "type": "feedback",
                        "message_id": message,
                        "feedback_type": "thumbs_down" if i % 4 == 0 else "thumbs_up",
                        "timestamp": self.at(4) + i * 45 + 20,
                    }
                )
        return {"calls_affected": calls, "saving_usd": calls * (0.02 - 0.001)}
