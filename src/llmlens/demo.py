"""Realistic demo traffic: providers, tiers, features, template versions, sessions, tools, retrieval,
feedback, errors, and one cost spike and one prompt-length jump in the last day.

Deterministic for a seed and a clock, so tests can rely on its shape.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from llmlens.model import now_us

if TYPE_CHECKING:
    from llmlens.ingest import IngestPipeline

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US

# model -> (provider, tokens/s, base TTFT ms)
MODELS: dict[str, tuple[str, float, float]] = {
    "gpt-4o": ("openai", 40.0, 450.0),
    "gpt-4o-mini": ("openai", 80.0, 250.0),
    "claude-3-5-sonnet-20241022": ("anthropic", 60.0, 600.0),
    "claude-3-5-haiku-20241022": ("anthropic", 90.0, 300.0),
    "claude-3-opus-20240229": ("anthropic", 25.0, 1200.0),
    "gemini-1.5-flash": ("google", 110.0, 300.0),
    "llama-3-8b-instruct": ("vllm", 120.0, 120.0),  # self-hosted, no public price: shown as unpriced
}

# feature -> (models with weights, template id, completion tokens range, uses retrieval, tools)
FEATURES: dict[str, dict[str, Any]] = {
    "code_generation": {
        "models": [("gpt-4o", 5), ("claude-3-5-sonnet-20241022", 4), ("claude-3-opus-20240229", 0.2)],
        "template": "code_review",
        "completion": (400, 1600),
        "prompt": (1500, 6000),
        "retrieval": False,
        "tools": [],
    },
    "text_summarization": {
        "models": [("gpt-4o-mini", 8), ("gemini-1.5-flash", 2)],
        "template": "summarize",
        "completion": (60, 220),
        "prompt": (600, 2500),
        "retrieval": False,
        "tools": [],
    },
    "support_chat": {
        "models": [("claude-3-5-haiku-20241022", 6), ("gpt-4o-mini", 3), ("llama-3-8b-instruct", 1)],
        "template": "support_answer",
        "completion": (80, 400),
        "prompt": (400, 1400),
        "retrieval": True,
        "tools": ["fetch_user_data"],
    },
    "research_assistant": {
        "models": [("gpt-4o", 6), ("claude-3-5-sonnet-20241022", 3)],
        "template": "research",
        "completion": (200, 700),
        "prompt": (800, 2400),
        "retrieval": True,
        "tools": ["search_web", "calculator"],
    },
}
FEATURE_WEIGHTS = {"code_generation": 3, "text_summarization": 4, "support_chat": 5, "research_assistant": 2}

# template -> [(version, rolled out this many hours ago)]; the newest applies after its rollout.
TEMPLATES: dict[str, list[tuple[str, float]]] = {
    "code_review": [("2026-03-01", 1e9), ("2026-03-15", 7 * 24)],
    "summarize": [("v1", 1e9), ("v2", 5 * 24)],
    "support_answer": [("v3", 1e9), ("v4", 9 * 24), ("v5", 20)],  # v5: the prompt-length jump
    "research": [("1", 1e9), ("2", 3 * 24)],
}

TOOLS: dict[str, dict[str, Any]] = {
    "search_web": {
        "success": 0.4,
        "latency": (300, 2500),
        "errors": ["HTTP 503 from search backend", "timeout after 2s", "no results parsed"],
    },
    "fetch_user_data": {"success": 0.97, "latency": (1800, 4200), "errors": ["user not found"]},
    "calculator": {"success": 0.99, "latency": (2, 15), "errors": ["division by zero"]},
}

QUESTIONS = [
    "How do I reset my password?",
    "Why was I charged twice this month?",
    "Can I export my data to CSV?",
    "Summarise the attached meeting notes.",
    "Refactor this function to be async.",
    "What is the capital of Australia?",
    "Compare Postgres and DuckDB for analytics.",
    "Write unit tests for the parser module.",
    "Translate the release notes into French.",
    "Explain the difference between p95 and p99 latency.",
    "Why does my build fail on Python 3.12?",
]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def _template_version(template: str, age_hours: float) -> str:
    version = TEMPLATES[template][0][0]
    for name, rolled_out_hours_ago in TEMPLATES[template]:
        if age_hours <= rolled_out_hours_ago:
            version = name
    return version


class _Generator:
    def __init__(self, seed: int, now: int, days: int) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.days = days
        self.events: list[dict[str, Any]] = []
        self.users = [(f"user-free-{i:02d}", "free") for i in range(1, 31)] + [
            (f"user-pro-{i:02d}", "pro") for i in range(1, 11)
        ]

    def run(self) -> list[dict[str, Any]]:
        start = self.now - self.days * DAY_US
        t = start
        while t < self.now - 5 * 60_000_000:
            hour_of_day = (t // HOUR_US) % 24
            # Daytime traffic is heavier; one session starts every few minutes.
            rate = 10 if 8 <= hour_of_day <= 20 else 4
            t += int(self.rng.expovariate(rate / HOUR_US))
            if t >= self.now:
                break
            user, tier = self.rng.choice(self.users)
            self._session(t, user, tier)
        self._cost_spike()
        # Drawn last, from a generator of their own: the traffic above is the same with or without them.
        _InsightPatterns(self, random.Random(self.rng.random())).plant()
        return self.events

    def _session(
        self,
        t: int,
        user: str,
        tier: str,
        *,
        feature: str | None = None,
        model: str | None = None,
        turns: int | None = None,
    ) -> None:
        rng = self.rng
        feature = feature or _pick(rng, [(k, v) for k, v in FEATURE_WEIGHTS.items()])
        session_id = f"sess-{_hex(rng, 10)}"
        for _ in range(turns or rng.randint(1, 5)):
            t = self._turn(t, user, tier, feature, session_id, model)
            t += int(rng.uniform(20, 240) * 1_000_000)
            if t >= self.now:
                break

    def _turn(self, t: int, user: str, tier: str, feature: str, session_id: str, forced_model: str | None) -> int:
        rng = self.rng
        spec = FEATURES[feature]
        trace_id = _hex(rng, 32)
        request_id = _hex(rng, 16)
        chain_id = _hex(rng, 16)
        age_hours = (self.now - t) / HOUR_US
        template = spec["template"]
        version = _template_version(template, age_hours)
        ctx = {
            "user_id": user,
            "session_id": session_id,
            "feature": feature,
            "environment": "production",
            "service": "acme-assistant",
        }
        cursor = t + 2_000
        children_end = cursor
        question = rng.choice(QUESTIONS)
        if spec["retrieval"]:
            latency = rng.uniform(40, 220)
            docs = [
                {
                    "id": f"kb-{rng.randint(1, 400)}",
                    "content": f"Knowledge base article about {question[:30]}",
                    "score": round(rng.uniform(0.55, 0.95) - i * 0.08, 3),
                }
                for i in range(rng.randint(2, 5))
            ]
            self.events.append(
                {
                    "type": "retrieval",
                    "trace_id": trace_id,
                    "span_id": _hex(rng, 16),
                    "parent_span_id": chain_id,
                    "timestamp": cursor / 1e6,
                    "query": question,
                    "documents": docs,
                    "latency_ms": round(latency, 2),
                    **ctx,
                }
            )
            cursor += int(latency * 1000)
        model = forced_model or _pick(rng, spec["models"])
        llm_end, message_id, llm_latency, ok = self._llm(
            cursor, trace_id, chain_id, model, feature, template, version, question, ctx, tier
        )
        cursor = llm_end
        if ok and spec["tools"] and rng.random() < 0.6:
            for tool in spec["tools"]:
                cursor = self._tool(cursor, trace_id, chain_id, tool, question, ctx)
            llm_end, message_id, more, ok = self._llm(
                cursor,
                trace_id,
                chain_id,
                model,
                feature,
                template,
                version,
                question,
                ctx,
                tier,
                followup=True,
            )
            llm_latency += more
            cursor = llm_end
        children_end = cursor
        chain_latency = (children_end - t - 1_000) / 1000
        self.events.append(
            {
                "type": "span",
                "kind": "chain",
                "name": f"{feature}.answer",
                "trace_id": trace_id,
                "span_id": chain_id,
                "parent_span_id": request_id,
                "timestamp": (t + 1_000) / 1e6,
                "latency_ms": round(chain_latency, 3),
                "status": "ok" if ok else "error",
                "template_id": template,
                "template_version": version,
                **ctx,
            }
        )
        status = 200 if ok else rng.choice([429, 500, 504])
        self.events.append(
            {
                "type": "span",
                "kind": "request",
                "name": "POST /api/chat",
                "trace_id": trace_id,
                "span_id": request_id,
                "timestamp": t / 1e6,
                "latency_ms": round((children_end - t) / 1000 + rng.uniform(1, 8), 3),
                "http_method": "POST",
                "http_route": "/api/chat",
                "http_status": status,
                "http_request_bytes": rng.randint(300, 4000),
                "http_response_bytes": rng.randint(200, 9000),
                "status": "ok" if status < 500 else "error",
                **ctx,
            }
        )
        if ok and message_id:
            self._feedback(t, message_id, llm_latency, ctx, version)
        return children_end

    def _llm(
        self,
        t: int,
        trace_id: str,
        parent: str,
        model: str,
        feature: str,
        template: str,
        version: str,
        question: str,
        ctx: dict[str, Any],
        tier: str,
        followup: bool = False,
    ) -> tuple[int, str, float, bool]:
        rng = self.rng
        spec = FEATURES[feature]
        provider, tps, base_ttft = MODELS[model]
        prompt_tokens = rng.randint(*spec["prompt"])
        if template == "support_answer" and version == "v5":
            prompt_tokens *= 2  # the new template leaks the whole conversation history
        if model == "claude-3-opus-20240229":
            prompt_tokens = rng.randint(40_000, 90_000)
        completion_tokens = rng.randint(*spec["completion"])
        cached = int(prompt_tokens * rng.choice([0, 0, 0.3, 0.6])) if provider == "openai" else 0
        streamed = rng.random() < 0.6
        load = 1.0 + (0.6 if 9 <= (t // HOUR_US) % 24 <= 11 else 0.0)
        ttft = base_ttft * load * rng.lognormvariate(0, 0.35) + prompt_tokens * 0.02
        gen_ms = completion_tokens / (tps * rng.uniform(0.8, 1.15)) * 1000
        latency = ttft + gen_ms
        span_id = _hex(rng, 16)
        message_id = f"msg-{_hex(rng, 12)}"
        system = f"You are the {feature.replace('_', ' ')} assistant. Template {template}@{version}."
        filler = " Context: " + "lorem ipsum " * max(1, prompt_tokens // 40)
        user_text = (question + filler) if not followup else "Here are the tool results. Answer the user."
        event: dict[str, Any] = {
            "type": "llm",
            "trace_id": trace_id,
            "span_id": span_id,
            "parent_span_id": parent,
            "timestamp": t / 1e6,
            "model": model,
            "provider": provider,
            "message_id": message_id,
            "prompt": [{"role": "system", "content": system}, {"role": "user", "content": user_text}],
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cached_tokens": cached,
            "streamed": streamed,
            "temperature": 0.2,
            "max_tokens": 2048,
            "template_id": template,
            "template_version": version,
            "variables": {"question": question, "tier": tier},
            "metadata": {"tier": tier, "app_version": "1.8.2"},
            **ctx,
        }
        if streamed:
            event["ttft_ms"] = round(ttft, 2)
            event["tokens_per_second"] = round(completion_tokens / (gen_ms / 1000), 2)
        roll = rng.random()
        ok = True
        if roll < 0.02:
            ok = False
            latency = rng.uniform(80, 400)
            event.update(
                status="error",
                error_type="rate_limit",
                completion_tokens=0,
                prompt_tokens=0,
                error="Error code: 429 - Rate limit reached for requests",
                cached_tokens=0,
                response=None,
                finish_reason=None,
            )
            event.pop("ttft_ms", None)
            event.pop("tokens_per_second", None)
        elif roll < 0.03:
            ok = False
            latency = 30_000.0
            event.update(
                status="error",
                error_type="timeout",
                completion_tokens=0,
                prompt_tokens=0,
                error="Request timed out after 30s",
                cached_tokens=0,
                finish_reason=None,
            )
            event.pop("ttft_ms", None)
            event.pop("tokens_per_second", None)
        else:
            wants_tool = bool(spec["tools"]) and not followup and rng.random() < 0.6
            if wants_tool:
                event["finish_reason"] = "tool_calls"
                event["tool_calls"] = [
                    {"id": f"call_{_hex(rng, 8)}", "name": name, "arguments": {"query": question}}
                    for name in spec["tools"]
                ]
                event["response"] = ""
            else:
                event["finish_reason"] = "stop" if rng.random() > 0.05 else "length"
                event["response"] = f"[{model}] Answer about: {question} " + "detail " * (completion_tokens // 10)
        event["latency_ms"] = round(latency, 2)
        self.events.append(event)
        return t + int(latency * 1000), message_id, latency, ok

    def _tool(self, t: int, trace_id: str, parent: str, tool: str, question: str, ctx: dict[str, Any]) -> int:
        rng = self.rng
        spec = TOOLS[tool]
        latency = rng.uniform(*spec["latency"])
        ok = rng.random() < spec["success"]
        args = (
            {"query": question}
            if tool == "search_web"
            else ({"user_id": ctx["user_id"]} if tool == "fetch_user_data" else {"expression": "17 * 23"})
        )
        self.events.append(
            {
                "type": "tool",
                "trace_id": trace_id,
                "span_id": _hex(rng, 16),
                "parent_span_id": parent,
                "timestamp": t / 1e6,
                "tool_name": tool,
                "args": args,
                "result": ({"items": rng.randint(1, 8)} if ok else None),
                "latency_ms": round(latency, 2),
                "success": ok,
                "error": None if ok else rng.choice(spec["errors"]),
                **ctx,
            }
        )
        return t + int(latency * 1000)

    def _feedback(self, t: int, message_id: str, latency_ms: float, ctx: dict[str, Any], version: str) -> None:
        rng = self.rng
        if rng.random() > 0.45:
            return
        # Slow answers get more thumbs down; the article's fast/medium/slow buckets show it.
        p_up = 0.85 if latency_ms < 1000 else 0.65 if latency_ms < 3000 else 0.4
        if version in ("v5",):
            p_up -= 0.15
        roll = rng.random()
        if roll < 0.75:
            kind = "thumbs_up" if rng.random() < p_up else "thumbs_down"
        else:
            kind = rng.choice(["retry", "edit", "abandon"])
        self.events.append(
            {
                "type": "feedback",
                "message_id": message_id,
                "feedback_type": kind,
                "feedback_text": "Too slow and missed the point"
                if kind == "thumbs_down" and rng.random() < 0.3
                else None,
                "user_id": ctx["user_id"],
                "session_id": ctx["session_id"],
                "timestamp": (t + int(latency_ms * 1000) + rng.randint(2, 90) * 1_000_000) / 1e6,
            }
        )

    def _cost_spike(self) -> None:
        """One free-tier user hammers gpt-4o code generation in the last hour: a spend spike."""
        start = self.now - 50 * 60_000_000
        for i in range(60):
            self._session(
                start + i * 45_000_000,
                "user-free-07",
                "free",
                feature="code_generation",
                model="gpt-4o",
                turns=1,
            )


_WORDS = sorted({w.strip("?.,").lower() for q in QUESTIONS for w in q.split()} - {""})


# Each: a question as first asked, then as asked again in other words.
_PARAPHRASES = [
    [
        "Our finance team needs every invoice for the last quarter sent to a shared mailbox instead of my personal "
        "address, how do I change the billing email on the company account",
        "Our finance team wants every invoice for the last quarter sent to a shared mailbox instead of my personal "
        "address, how do I change the billing email on the company account",
        "How do I change the billing email on the company account, our finance team needs every invoice for the "
        "last quarter sent to a shared mailbox instead of my personal address",
        "Our finance team needs every invoice for the last quarter sent to a shared mailbox instead of my own "
        "address, how do I change the billing email on the company account",
    ],
    [
        "After upgrading to the team plan yesterday my colleagues still cannot see the shared dashboards I created "
        "last month, do I need to invite them again or change a permission setting",
        "After moving to the team plan yesterday my colleagues still cannot see the shared dashboards I created "
        "last month, do I need to invite them again or change a permission setting",
        "Do I need to invite them again or change a permission setting, after upgrading to the team plan yesterday "
        "my colleagues still cannot see the shared dashboards I created last month",
    ],
    [
        "The mobile app keeps logging me out whenever I switch between wifi and cellular data on my phone, is there "
        "a setting that keeps me signed in for longer periods",
        "The mobile app keeps signing me out whenever I switch between wifi and cellular data on my phone, is there "
        "a setting that keeps me signed in for longer periods",
        "Is there a setting that keeps me signed in for longer periods, the mobile app keeps logging me out whenever "
        "I switch between wifi and cellular data on my phone",
    ],
]


class _InsightPatterns:
    """What the Insights page finds in the demo (docs/insights.md), planted in the last day and a half:
    repeated FAQ questions, a report whose two independent summaries run one after the other, a template
    version that broke prompt caching, tutoring sessions that resend their whole history, a cheap model
    that answers a feature as well as an expensive one, a burst of rate limits, a tool retried with the
    same failing arguments. (Cut-off answers, unstreamed long answers and costly outliers are in the
    traffic above already.)"""

    def __init__(self, gen: _Generator, rng: random.Random) -> None:
        self.gen = gen
        self.rng = rng
        self.start = gen.now - 36 * HOUR_US

    def plant(self) -> None:
        self._faq()
        self._help_center_paraphrases()
        self._reports()
        self._docs_caching_break()
        self._tutor_sessions()
        self._ticket_classifier()
        self._rate_limit_burst()
        self._tool_retries()

    def _t(self, hours: float) -> int:
        return self.start + int(hours * HOUR_US)

    def _llm(self, t: int, model: str, feature: str, **fields: Any) -> dict[str, Any]:
        rng = self.rng
        user, tier = rng.choice(self.gen.users)
        provider = MODELS[model][0]
        words = " ".join(rng.choice(_WORDS) for _ in range(14))  # a request of its own: not a duplicate
        event: dict[str, Any] = {
            "type": "llm",
            "prompt": [
                {"role": "system", "content": f"You are the {feature.replace('_', ' ')} assistant."},
                {"role": "user", "content": words},
            ],
            "trace_id": _hex(rng, 32),
            "span_id": _hex(rng, 16),
            "timestamp": t / 1e6,
            "model": model,
            "provider": provider,
            "message_id": f"msg-{_hex(rng, 12)}",
            "prompt_tokens": rng.randint(300, 700),
            "completion_tokens": rng.randint(60, 180),
            "streamed": True,
            "ttft_ms": round(MODELS[model][2] * rng.uniform(0.8, 1.2), 2),
            "latency_ms": round(rng.uniform(900, 1900), 2),
            "temperature": 0.0,
            "max_tokens": 400,
            "finish_reason": "stop",
            "user_id": user,
            "feature": feature,
            "environment": "production",
            "service": "acme-assistant",
            "metadata": {"tier": tier, "app_version": "1.8.2"},
        }
        event.update(fields)
        self.gen.events.append(event)
        return event

    def _faq(self) -> None:
        """Six help-centre questions, each asked again and again within the hour."""
        questions = QUESTIONS[:6]
        for hour in range(0, 30, 3):
            for i, question in enumerate(questions):
                for repeat in range(3):
                    t = self._t(hour + i * 0.1 + repeat * 0.15)
                    self._llm(t, "gpt-4o-mini", "faq_bot", prompt=question, response=f"Here is how: {question}")

    def _help_center_paraphrases(self) -> None:
        """Four account questions asked again within the hour in other words: one word swapped or the clauses
        turned around, so no exact or normalised key repeats (the semantic tier finds them)."""
        system = {"role": "system", "content": "You are the help centre assistant for Acme accounts."}
        for hour in (4, 12, 20, 28):
            for i, variants in enumerate(_PARAPHRASES):
                for n, question in enumerate(variants):
                    t = self._t(hour + i * 0.05 + n * 0.12)
                    self._llm(t, "gpt-4o", "help_center", prompt=[system, {"role": "user", "content": question}])

    def _reports(self) -> None:
        """Two section summaries that do not need each other, run one after the other."""
        rng = self.rng
        for i in range(40):
            t = self._t(1 + i * 0.8)
            trace_id, parent = _hex(rng, 32), _hex(rng, 16)
            first_ms, second_ms = rng.uniform(1800, 2600), rng.uniform(2000, 3200)
            self.gen.events.append(
                {
                    "type": "span",
                    "kind": "chain",
                    "name": "report.build",
                    "trace_id": trace_id,
                    "span_id": parent,
                    "timestamp": t / 1e6,
                    "latency_ms": round(first_ms + second_ms + 20, 2),
                    "feature": "report_builder",
                }
            )
            cursor = t + 1000
            for section, ms in (("revenue", first_ms), ("support tickets", second_ms)):
                self._llm(
                    cursor,
                    "gpt-4o",
                    "report_builder",
                    trace_id=trace_id,
                    parent_span_id=parent,
                    prompt=f"Summarise the {section} section of weekly report {i}: " + "figures " * 40,
                    response=f"The {section} section of report {i}: steady, with two items to watch.",
                    latency_ms=round(ms, 2),
                    streamed=False,
                    ttft_ms=None,
                    max_tokens=300,
                )
                cursor += int(ms * 1000) + 5000

    def _docs_caching_break(self) -> None:
        """docs_answer v1 reads half its prompt from OpenAI's cache; v2 puts a timestamp first and reads none."""
        for i in range(60):
            version = "v1" if i < 30 else "v2"
            tokens = self.rng.randint(2800, 3200)
            self._llm(
                self._t(i * 0.5),
                "gpt-4o",
                "docs_qa",
                template_id="docs_answer",
                template_version=version,
                prompt_tokens=tokens,
                cached_tokens=tokens // 2 if version == "v1" else 0,
                prompt=("" if version == "v1" else f"[{i:04d}] ") + "Answer from the product docs. " + "docs " * 60,
            )

    def _tutor_sessions(self) -> None:
        """Tutoring conversations that resend the whole history every turn."""
        for s in range(8):
            session = f"sess-tutor-{s:02d}"
            for turn in range(9):
                self._llm(
                    self._t(2 + s * 3 + turn * 0.05),
                    "gpt-4o-mini",
                    "tutor",
                    session_id=session,
                    prompt_tokens=1500 * (turn + 1) + self.rng.randint(0, 200),
                )

    def _ticket_classifier(self) -> None:
        """classify_ticket runs on gpt-4o and gpt-4o-mini; users rate both the same. The ratings are laid out,
        not drawn: drawn, the two models differed significantly for 3 of 9 demo clocks five minutes apart
        (1 of 60 an hour apart), and the finding, and the browser test that opens it, went missing."""
        for model in ("gpt-4o", "gpt-4o-mini"):
            for i in range(120):
                t = self._t(i * 0.25 + (0.1 if model == "gpt-4o-mini" else 0))
                call = self._llm(t, model, "classify_ticket", prompt_tokens=self.rng.randint(500, 800))
                if i % 5 < 3:  # three calls in five rated, five ratings in six up, on both models
                    self.gen.events.append(
                        {
                            "type": "feedback",
                            "message_id": call["message_id"],
                            "feedback_type": "thumbs_down" if i % 10 == 1 else "thumbs_up",
                            "user_id": call["user_id"],
                            "timestamp": (t + 30_000_000) / 1e6,
                        }
                    )

    def _rate_limit_burst(self) -> None:
        """A bulk job that hits gpt-4o-mini's rate limit: 45 refusals in three minutes."""
        for i in range(45):
            self._llm(
                self._t(20) + i * 4_000_000,
                "gpt-4o-mini",
                "bulk_tagging",
                status="error",
                error_type="rate_limit",
                error="Error code: 429 - Rate limit reached for requests",
                prompt_tokens=0,
                completion_tokens=0,
                streamed=False,
                ttft_ms=None,
                finish_reason=None,
                latency_ms=round(self.rng.uniform(80, 200), 2),
            )

    def _tool_retries(self) -> None:
        """An agent that calls fetch_user_data again with the same unknown user id after it failed."""
        rng = self.rng
        for i in range(12):
            t = self._t(4 + i * 2)
            trace_id, parent = _hex(rng, 32), _hex(rng, 16)
            for attempt in range(3):
                self.gen.events.append(
                    {
                        "type": "tool",
                        "trace_id": trace_id,
                        "span_id": _hex(rng, 16),
                        "parent_span_id": parent,
                        "timestamp": (t + attempt * 3_000_000) / 1e6,
                        "tool_name": "fetch_user_data",
                        "args": {"user_id": f"user-missing-{i}"},
                        "result": None,
                        "latency_ms": round(rng.uniform(1800, 2600), 2),
                        "success": False,
                        "error": "user not found",
                        "feature": "support_chat",
                    }
                )


def demo_events(*, days: int = 14, seed: int = 7, now: int | None = None) -> list[dict[str, Any]]:
    """Native events (docs/events.md) for `days` of traffic ending at `now` (µs; default: the clock)."""
    clock = now if now is not None else now_us()
    return _Generator(seed, clock - clock % 60_000_000, days).run()


def load_demo(pipeline: IngestPipeline, *, project: str = "default", days: int = 14, seed: int = 7) -> int:
    from llmlens.codec.native import decode_events

    events = demo_events(days=days, seed=seed)
    decoded = decode_events(events, project=project)
    if decoded.rejected:
        raise RuntimeError(f"demo data has invalid events: {decoded.rejected[:3]}")
    for start in range(0, len(decoded.spans), 20_000):
        pipeline.ingest_sync(decoded.spans[start : start + 20_000], [])
    pipeline.ingest_sync([], decoded.feedback)
    return len(events)
