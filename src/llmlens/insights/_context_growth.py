"""Context growth: conversations whose prompt grows with every turn past a threshold, because the
history is resent whole and never trimmed or summarised; the cost of the tokens past the threshold."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ._context import FindingContext, counted, num
from ._model import Chart, Insight, confidence_for

KIND = "context_growth"
THRESHOLD_TOKENS = 4_000  # a history trimmed or summarised to this many tokens is the comparison
MIN_TURNS = 5
GROWING_STEPS = 0.8  # share of turn-to-turn steps where the prompt grew
MAX_ROWS = 200_000


@dataclass(slots=True)
class _Feature:
    sessions: int = 0
    tail_calls: int = 0
    tail_tokens: float = 0.0
    usd: float = 0.0
    unpriced_calls: int = 0
    examples: list[str] = field(default_factory=list)
    curves: list[tuple[str, list[int]]] = field(default_factory=list)


def growing(tokens: list[int]) -> bool:
    """The prompt grew at most steps and at least doubled from the first turn to the last."""
    if len(tokens) < MIN_TURNS or tokens[0] <= 0:
        return False
    steps = list(pairwise(tokens))
    grew = sum(1 for a, b in steps if b > a)
    return grew >= GROWING_STEPS * len(steps) and tokens[-1] >= 2 * tokens[0]


def find_context_growth(ctx: FindingContext) -> list[Insight]:
    rows = ctx.rows(
        "SELECT session_id, COALESCE(feature, '(none)') AS feature, model, provider, timestamp, prompt_tokens, "
        f"trace_id FROM spans WHERE {ctx.llm_where()} AND prompt_tokens > 0 AND session_id IN ("
        f"SELECT session_id FROM spans WHERE {ctx.llm_where()} AND session_id IS NOT NULL AND prompt_tokens > 0 "
        f"GROUP BY session_id HAVING COUNT(*) >= {MIN_TURNS} AND MAX(prompt_tokens) > {THRESHOLD_TOKENS}) "
        f"ORDER BY session_id, timestamp LIMIT {MAX_ROWS}",
        [*ctx.llm_params(), *ctx.llm_params()],
    )
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        sessions[str(r["session_id"])].append(r)
    features: dict[str, _Feature] = defaultdict(_Feature)
    for session, calls in sessions.items():
        tokens = [int(num(c["prompt_tokens"])) for c in calls]
        if not growing(tokens):
            continue
        feature = features[str(calls[-1]["feature"])]
        feature.sessions += 1
        feature.curves.append((session, tokens))
        for c, n in zip(calls, tokens, strict=True):
            if n <= THRESHOLD_TOKENS:
                continue
            feature.tail_calls += 1
            feature.tail_tokens += n - THRESHOLD_TOKENS
            rates = ctx.prices.rates(c["provider"], c["model"])
            if rates is None:
                feature.unpriced_calls += 1
            else:
                feature.usd += (n - THRESHOLD_TOKENS) * rates.input
            if c["trace_id"] not in feature.examples and len(feature.examples) < 5:
                feature.examples.append(str(c["trace_id"]))
    return [_insight(ctx, name, f) for name, f in features.items() if f.tail_calls]


def _insight(ctx: FindingContext, name: str, f: _Feature) -> Insight:
    curves = sorted(f.curves, key=lambda c: -max(c[1]))[:3]
    turns = max(len(tokens) for _, tokens in curves)
    assumptions = [
        f"Trimming or summarising the history would keep each prompt at about {THRESHOLD_TOKENS:,} tokens; the "
        "tokens above that are priced at the model's input price (the summary's own cost is not counted).",
        "Answers stay as good with the shorter history: check with a replay of a few long turns first.",
    ]
    if f.unpriced_calls:
        assumptions.append(f"{f.unpriced_calls} calls of models without a price are counted at $0.")
    return Insight(
        kind=KIND,
        title=f"{counted(f.sessions, 'conversation')} in {name} resend a growing history "
        f"({counted(f.tail_calls, 'turn')} past "
        f"{THRESHOLD_TOKENS:,} tokens)",
        scope={"feature": name},
        saving_usd=round(f.usd, 6),
        saving_usd_per_month=round(ctx.per_month(f.usd), 6),
        saving_ms_per_trace=None,
        calls_affected=f.tail_calls,
        confidence=confidence_for(f.sessions, high=50, medium=5),
        method=(
            f"Sessions with {MIN_TURNS}+ LLM calls and a prompt over {THRESHOLD_TOKENS:,} tokens are read turn by "
            f"turn; a session grows when its prompt grew at {GROWING_STEPS:.0%} or more of the steps and at least "
            f"doubled from the first turn to the last. The tokens its turns send past {THRESHOLD_TOKENS:,} are the "
            "tail that trimming or summarising would cut."
        ),
        example_trace_ids=f.examples,
        assumptions=assumptions,
        traces_affected=f.tail_calls,
        summary=f"{f.tail_tokens:,.0f} prompt tokens past {THRESHOLD_TOKENS:,} in {f.tail_calls} turns of "
        f"{f.sessions} sessions.",
        chart=Chart(
            title="Prompt tokens per turn, longest sessions",
            categories=[f"turn {i + 1}" for i in range(turns)],
            series=[
                {"label": session[:24], "values": [*tokens, *([None] * (turns - len(tokens)))]}
                for session, tokens in curves
            ],
            kind="line",
        ),
        evidence=[{"session_id": s, "turns": len(t), "first": t[0], "last": t[-1]} for s, t in curves],
        details={"sessions": f.sessions, "tail_tokens": round(f.tail_tokens), "threshold_tokens": THRESHOLD_TOKENS},
    )
