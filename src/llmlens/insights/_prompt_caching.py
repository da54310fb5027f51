"""Provider prompt caching: a long stable prefix that never gets cached tokens, a drop in the cached-token
share at a template version, and a prompt-length jump at a template change (the article's "someone
broke prompt caching or is leaking context").
"""

from __future__ import annotations

import os
from collections import defaultdict
from itertools import pairwise
from typing import Any

from ._context import FindingContext, TokenRates, anthropic_shaped, example_traces, num, rule_name, short
from ._model import Action, Chart, Insight, confidence_for

KIND = "prompt_caching"
MIN_PREFIX_TOKENS = 1024  # OpenAI and Anthropic cache prompts from about this length on
MIN_CALLS = 5
SHARE_BEFORE = 0.2  # a version "had caching" from this cached share of its input on
JUMP = 1.5  # the article's 50 % overnight jump
_CACHING_PROVIDERS = ("openai", "azure", "anthropic", "google", "gemini", "vertex", "deepseek", "bedrock", "aws")
_CACHING_MODELS = ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "claude", "gemini", "deepseek")


def supports_caching(provider: str | None, model: str | None) -> bool:
    p, m = (provider or "").lower(), (model or "").lower()
    return any(name in p for name in _CACHING_PROVIDERS) or m.startswith(_CACHING_MODELS)


def find_prompt_caching(ctx: FindingContext) -> list[Insight]:
    versions = ctx.rows(
        "SELECT COALESCE(feature, '(none)') AS feature, template_id, template_version, model, provider, "
        "COUNT(*) AS calls, SUM(prompt_tokens) AS prompt_tokens, SUM(COALESCE(cached_tokens, 0)) AS cached, "
        f"MIN(timestamp) AS first_seen FROM spans WHERE {ctx.llm_where()} AND template_id IS NOT NULL "
        "AND template_version IS NOT NULL AND prompt_tokens > 0 "
        "GROUP BY COALESCE(feature, '(none)'), template_id, template_version, model, provider",
        ctx.llm_params(),
    )
    return [*_missed(ctx), *_broken(ctx, versions), *_length_jumps(ctx, versions)]


# -- a long stable prefix, no cached tokens ------------------------------------------------------------


def _missed(ctx: FindingContext) -> list[Insight]:
    cached_pairs = {
        (r["feature"], r["model"])
        for r in ctx.rows(
            "SELECT COALESCE(feature, '(none)') AS feature, model FROM spans "
            f"WHERE {ctx.llm_where()} AND cached_tokens > 0 GROUP BY COALESCE(feature, '(none)'), model",
            ctx.llm_params(),
        )
    }
    groups = ctx.rows(
        "SELECT COALESCE(feature, '(none)') AS feature, model, provider, substr(prompt, 1, 200) AS head, "
        "COUNT(*) AS calls, SUM(prompt_tokens) AS prompt_tokens, SUM(length(prompt)) AS chars, "
        "MIN(prompt) AS lo, MAX(prompt) AS hi FROM spans "
        f"WHERE {ctx.llm_where()} AND prompt IS NOT NULL AND prompt_tokens >= ? "
        f"GROUP BY COALESCE(feature, '(none)'), model, provider, substr(prompt, 1, 200) "
        f"HAVING COUNT(*) >= {MIN_CALLS}",
        [*ctx.llm_params(), MIN_PREFIX_TOKENS],
    )
    by_pair: dict[tuple[str, str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for g in groups:
        if (g["feature"], g["model"]) in cached_pairs or not supports_caching(g["provider"], g["model"]):
            continue
        rates = ctx.prices.rates(g["provider"], g["model"])
        if rates is None or rates.cache_read >= rates.input:
            continue
        chars = num(g["chars"])
        # The prefix every prompt of the group shares is the one its smallest and largest share.
        prefix_chars = len(os.path.commonprefix([str(g["lo"]), str(g["hi"])]))  # noqa: RUF071 - characters wanted
        prefix_tokens = prefix_chars * num(g["prompt_tokens"]) / chars if chars else 0.0
        if prefix_tokens < MIN_PREFIX_TOKENS:
            continue
        g["prefix_tokens"] = prefix_tokens
        g["saving"] = _prefix_saving(int(g["calls"]), prefix_tokens, rates)
        by_pair[(str(g["feature"]), str(g["model"]), g["provider"])].append(g)
    out = []
    for (feature, model, provider), found in by_pair.items():
        saving = sum(g["saving"] for g in found)
        calls = sum(int(g["calls"]) for g in found)
        if saving <= 0:
            continue
        prefix = max(g["prefix_tokens"] for g in found)
        out.append(
            Insight(
                kind=KIND,
                title=f"{model} in {feature}: a stable {prefix:,.0f}-token prompt prefix gets no cached tokens",
                scope={"feature": feature, "model": model, "check": "missed"},
                saving_usd=round(saving, 6),
                saving_usd_per_month=round(ctx.per_month(saving), 6),
                saving_ms_per_trace=None,
                calls_affected=calls,
                confidence=confidence_for(calls, high=200, medium=20),
                method=(
                    "Calls of one feature and model whose prompts start with the same 200 characters are grouped; "
                    "the prefix all of them share is the common prefix of the group's smallest and largest "
                    "prompt, in tokens at the group's own characters-per-token. Groups with a shared prefix of "
                    f"{MIN_PREFIX_TOKENS:,}+ tokens, on a provider that caches prompts, where no call of that "
                    "feature and model reported cached tokens, are counted."
                ),
                example_trace_ids=example_traces(
                    ctx, "COALESCE(feature, '(none)') = ? AND model = ?", [feature, model], order_by="prompt_tokens"
                ),
                assumptions=[
                    "Every call after the first in a group would read the shared prefix from the provider's cache "
                    "at the cached-input price (calls far apart may find the cache expired: a ceiling).",
                    "One cache write per group, at the provider's cache-write price where it differs.",
                    "Anthropic caches only prompts marked with cache_control; OpenAI caches a prefix that stays "
                    "byte-identical at the start of the prompt (move timestamps and ids to the end).",
                ],
                summary=f"{calls} calls repeat a {prefix:,.0f}-token prefix at full input price.",
                chart=Chart(
                    title="Calls per shared prefix",
                    categories=[short(g["head"], 40) for g in found[:6]],
                    series=[{"label": "calls", "values": [int(g["calls"]) for g in found[:6]]}],
                ),
                evidence=[
                    {
                        "prefix": short(g["head"], 80),
                        "calls": int(g["calls"]),
                        "prefix_tokens": round(g["prefix_tokens"]),
                    }
                    for g in found[:10]
                ],
                details={"provider": provider, "prefix_tokens": round(prefix)},
            )
        )
    return out


def _prefix_saving(calls: int, prefix_tokens: float, rates: TokenRates) -> float:
    write_premium = max(rates.cache_write - rates.input, 0.0)
    return (calls - 1) * prefix_tokens * (rates.input - rates.cache_read) - prefix_tokens * write_premium


# -- the cached share drops at a template version --------------------------------------------------------


def _input(row: dict[str, Any]) -> float:
    """All input tokens of a group, cached ones included whatever the provider's convention."""
    pt, cached = num(row["prompt_tokens"]), num(row["cached"])
    return pt + cached if anthropic_shaped(row["provider"], row["model"]) else pt


def _broken(ctx: FindingContext, versions: list[dict[str, Any]]) -> list[Insight]:
    series: dict[tuple[str, str, str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for v in versions:
        series[(v["feature"], v["template_id"], v["model"], v["provider"])].append(v)
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (feature, template, model, provider), rows in series.items():
        rows.sort(key=lambda r: r["first_seen"])
        rates = ctx.prices.rates(provider, model)
        for prev, cur in pairwise(rows):
            if int(prev["calls"]) < MIN_CALLS or int(cur["calls"]) < MIN_CALLS:
                continue
            before = num(prev["cached"]) / _input(prev) if _input(prev) else 0.0
            after = num(cur["cached"]) / _input(cur) if _input(cur) else 0.0
            if before < SHARE_BEFORE or after > before / 2:
                continue
            lost_tokens = (before - after) * _input(cur)
            saving = lost_tokens * (rates.input - rates.cache_read) if rates is not None else 0.0
            entry = found.setdefault(
                (feature, template, str(cur["template_version"])),
                {"saving": 0.0, "calls": 0, "before": [], "after": [], "prev": str(prev["template_version"])},
            )
            entry["saving"] += saving
            entry["calls"] += int(cur["calls"])
            entry["before"].append(before)
            entry["after"].append(after)
    out = []
    for (feature, template, version), e in found.items():
        before, after = max(e["before"]), min(e["after"])
        out.append(
            Insight(
                kind=KIND,
                title=f"Prompt caching broke at {template} {version}: cached share {before:.0%} → {after:.0%}",
                scope={"feature": feature, "template": template, "template_version": version, "check": "broken"},
                saving_usd=round(e["saving"], 6),
                saving_usd_per_month=round(ctx.per_month(e["saving"]), 6),
                saving_ms_per_trace=None,
                calls_affected=e["calls"],
                confidence=confidence_for(e["calls"], high=200, medium=20),
                method=(
                    "For each template, model and provider, the share of input tokens read from the provider's "
                    "cache is compared between consecutive template versions (in order of first use). A version "
                    f"whose share is under half of the previous version's ({SHARE_BEFORE:.0%} or more) broke "
                    "caching; the tokens it would have read from the cache at the old share are priced at the "
                    "difference between the input and cached-input prices."
                ),
                example_trace_ids=example_traces(
                    ctx, "template_id = ? AND template_version = ?", [template, version], order_by="prompt_tokens"
                ),
                assumptions=[
                    "Had the new version kept the old version's cached share, the same share of its input tokens "
                    "would have been cache reads.",
                    "Usually something early in the prompt now changes per call (a timestamp, an id, reordered "
                    "instructions), so the prefix no longer repeats.",
                ],
                summary=f"{e['calls']} calls of {template} {version} read {after:.0%} of their input from the "
                f"cache; {e['prev']} read {before:.0%}.",
                chart=Chart(
                    title="Cached share of input tokens",
                    categories=[e["prev"], version],
                    series=[{"label": "cached share", "values": [before, after]}],
                    unit="%",
                ),
                evidence=[{"version": e["prev"], "cached_share": before}, {"version": version, "cached_share": after}],
                action=_drift_alert(template),
                details={"previous_version": e["prev"], "share_before": before, "share_after": after},
            )
        )
    return out


# -- the prompt grows at a template change ---------------------------------------------------------------


def _length_jumps(ctx: FindingContext, versions: list[dict[str, Any]]) -> list[Insight]:
    by_version: dict[tuple[str, str], dict[str, Any]] = {}
    for v in versions:
        entry = by_version.setdefault(
            (v["template_id"], v["template_version"]),
            {"calls": 0, "tokens": 0.0, "first_seen": v["first_seen"], "models": [], "feature": v["feature"]},
        )
        entry["calls"] += int(v["calls"])
        entry["tokens"] += num(v["prompt_tokens"])
        entry["first_seen"] = min(entry["first_seen"], v["first_seen"])
        entry["models"].append(v)
    templates: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for (template, version), entry in by_version.items():
        templates[template].append((version, entry))
    out = []
    for template, items in templates.items():
        items.sort(key=lambda item: item[1]["first_seen"])
        for (prev_v, prev), (cur_v, cur) in pairwise(items):
            if prev["calls"] < 10 or cur["calls"] < 10:
                continue
            avg_prev, avg_cur = prev["tokens"] / prev["calls"], cur["tokens"] / cur["calls"]
            if avg_cur < JUMP * avg_prev:
                continue
            extra_usd = 0.0
            for m in cur["models"]:
                rates = ctx.prices.rates(m["provider"], m["model"])
                extra = num(m["prompt_tokens"]) - avg_prev * int(m["calls"])
                if rates is not None and extra > 0:
                    extra_usd += extra * rates.input
            out.append(_jump_insight(ctx, template, prev_v, cur_v, prev, cur, avg_prev, avg_cur, extra_usd, items))
    return out


def _jump_insight(
    ctx: FindingContext,
    template: str,
    prev_v: str,
    cur_v: str,
    prev: dict[str, Any],
    cur: dict[str, Any],
    avg_prev: float,
    avg_cur: float,
    extra_usd: float,
    items: list[tuple[str, dict[str, Any]]],
) -> Insight:
    growth = avg_cur / avg_prev - 1 if avg_prev else 0.0
    return Insight(
        kind=KIND,
        title=f"Prompts of {template} grew {growth:.0%} at version {cur_v} ({avg_prev:,.0f} → {avg_cur:,.0f} tokens)",
        scope={"feature": str(cur["feature"]), "template": template, "template_version": cur_v, "check": "length"},
        saving_usd=round(extra_usd, 6),
        saving_usd_per_month=round(ctx.per_month(extra_usd), 6),
        saving_ms_per_trace=None,
        calls_affected=int(cur["calls"]),
        confidence=confidence_for(int(cur["calls"]), high=100, medium=20),
        method=(
            "Average prompt tokens per template version, versions in order of first use; a version at least "
            f"{JUMP - 1:.0%} longer than the one before it is a jump. The extra input tokens of its calls over the "
            "previous version's average are priced at each model's input price."
        ),
        example_trace_ids=example_traces(
            ctx, "template_id = ? AND template_version = ?", [template, cur_v], order_by="prompt_tokens"
        ),
        assumptions=[
            "The longer prompt is not needed: history or context that leaks in, or a change that broke prompt "
            "caching. If the growth is intended, there is nothing to save.",
        ],
        summary=f"{cur['calls']} calls of {cur_v} average {avg_cur:,.0f} prompt tokens; {prev_v} averaged "
        f"{avg_prev:,.0f}.",
        chart=Chart(
            title="Average prompt tokens per version",
            categories=[v for v, _ in items],
            series=[{"label": "prompt tokens", "values": [round(e["tokens"] / e["calls"], 1) for _, e in items]}],
        ),
        evidence=[
            {"version": v, "calls": e["calls"], "avg_prompt_tokens": round(e["tokens"] / e["calls"], 1)}
            for v, e in items
        ],
        action=_drift_alert(template),
        details={"previous_version": prev_v, "avg_before": round(avg_prev, 1), "avg_after": round(avg_cur, 1)},
    )


def _drift_alert(template: str) -> Action:
    return Action(
        kind="alert",
        label=f"Alert when prompts of {template} drift again",
        method="POST",
        url="/api/v1/alerts/rules",
        body={
            "name": rule_name(f"insights prompt drift {template}"),
            "type": "prompt_drift",
            "scope": {"template": template},
            "max_change": 0.3,
        },
        note="A prompt_drift rule on this template: it fires when the average prompt length moves 30 % from its "
        "baseline.",
    )
