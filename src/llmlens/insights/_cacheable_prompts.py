"""Cacheable prompts: identical requests repeated within the cache's lifetime, per feature; then
near-duplicates that differ only in whitespace, dates and ids; then, when an embedding model is
configured, prompts that ask the same thing in other words.

Exact tier: every LLM call's request (model, prompt, tools, parameters, temperature, max_tokens) is
hashed in SQL; the repeated hashes come back in time order and an exact-match cache with the gateway's
TTL is replayed over them: the first call of a hash is a miss and is kept for `cache_ttl_s`, calls
within that time are hits, the next call after it a miss again. A hit saves the call's cost and its
latency. Near tier: the same replay over the most recent calls with their prompt normalised.
Semantic tier: over the most recent of those, a call is a hit when a kept call of the same request
parameters has a prompt embedding within `insights_semantic_threshold` (cosine) of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
import re
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import duckdb

from ._context import FindingContext, counted, num, short
from ._embeddings import EmbeddingError, text_key
from ._model import Action, Chart, Insight, confidence_for, lower

KIND = "cacheable_prompts"
MAX_ROWS = 200_000  # repeated calls read back per refresh; the replay stops there
NEAR_SAMPLE = 10_000  # most recent calls normalised for the near-duplicate tier
SEMANTIC_SAMPLE = 2_000  # most recent calls embedded for the semantic tier
MIN_HITS = 2
HEAD = 128  # leading dimensions compared for every pair of prompts; the rest only for pairs that may be similar

# The request as one string: what an exact-match cache keys on. (`||`, not concat_ws: ClickHouse 18.16 has none.)
_REQUEST = " || '|' || ".join(
    f"COALESCE(CAST({column} AS VARCHAR), '')"
    for column in ("model", "prompt", "tools", "request_params", "temperature", "max_tokens")
)
_OK = "prompt IS NOT NULL AND (status IS NULL OR status <> 'error')"

# What a near-duplicate may differ in: UUIDs, dates, times, ids with digits, numbers (one pass, all of them
# contain a digit), and whitespace.
_VARYING = re.compile(
    r"\b(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}:\d{2}(?::\d{2})?|[a-z]+[-_]\d+|\d+\.\d+|[0-9a-f]*\d[0-9a-f]*)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")


def normalise(text: str) -> str:
    """The prompt with whitespace collapsed and every id, date, time and number replaced by `#`."""
    text = " ".join(text.split())
    return _VARYING.sub("#", text) if _DIGIT.search(text) else text


@dataclass(slots=True)
class _Tally:
    hits: int = 0
    usd: float = 0.0
    ms: float = 0.0
    calls: int = 0
    warm: bool = False  # a hit had a temperature above 0: its answer may not be reusable
    examples: list[str] = field(default_factory=list)
    requests: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (preview, hits)

    def hit(self, r: dict[str, Any], request: str, preview: str) -> None:
        """Call `r` answered from the cache entry of `request` (shown as `preview`)."""
        self.hits += 1
        self.usd += num(r["cost_usd"])
        self.ms += num(r["latency_ms"])
        self.warm = self.warm or num(r.get("temperature")) > 0
        if r["trace_id"] not in self.examples and len(self.examples) < 5:
            self.examples.append(str(r["trace_id"]))
        shown, n = self.requests.get(request, (preview, 0))
        self.requests[request] = (shown, n + 1)


def replay_cache(rows: Iterable[dict[str, Any]], key: str, ttl_s: float) -> dict[str, _Tally]:
    """Hits per feature of an exact-match cache with `ttl_s` over `rows` sorted by `key` then time."""
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    current: Any = None
    kept_until = None
    for r in rows:
        tally = tallies[str(r["feature"])]
        tally.calls += 1
        t = r["timestamp"]
        if r[key] != current:
            current, kept_until = r[key], None
        if kept_until is not None and t < kept_until:
            tally.hit(r, str(r[key]), str(r.get("preview") or ""))
        else:
            kept_until = t + dt.timedelta(seconds=ttl_s)
    return tallies


def find_cacheable_prompts(ctx: FindingContext) -> list[Insight]:
    rows = ctx.rows(
        f"WITH calls AS (SELECT COALESCE(feature, '(none)') AS feature, model, timestamp, cost_usd, latency_ms, "
        f"trace_id, temperature, substr(prompt, 1, 80) AS preview, {ctx.hash_sql(_REQUEST)} AS request_hash "
        f"FROM spans WHERE {ctx.llm_where()} AND {_OK}) "
        "SELECT * FROM calls WHERE request_hash IN "
        "(SELECT request_hash FROM calls GROUP BY request_hash HAVING COUNT(*) > 1) "
        f"ORDER BY request_hash, timestamp LIMIT {MAX_ROWS}",
        ctx.llm_params(),
    )
    exact = replay_cache(rows, "request_hash", ctx.cache_ttl_s)
    out = [
        _insight(ctx, feature, tally, tier="exact", capped=len(rows) >= MAX_ROWS)
        for feature, tally in exact.items()
        if tally.hits >= MIN_HITS
    ]
    out += _near_duplicates(ctx)
    return out


def _near_duplicates(ctx: FindingContext) -> list[Insight]:
    """Hits an exact cache misses but a cache keyed on the normalised prompt would get (recent calls)."""
    sample = ctx.rows(
        "SELECT COALESCE(feature, '(none)') AS feature, model, timestamp, cost_usd, latency_ms, trace_id, "
        "temperature, prompt, substr(prompt, 1, 80) AS preview, COALESCE(CAST(tools AS VARCHAR), '') AS tools, "
        "CAST(input_messages AS VARCHAR) AS messages, "
        "COALESCE(CAST(request_params AS VARCHAR), '') AS params, COALESCE(CAST(max_tokens AS VARCHAR), '') AS mt "
        f"FROM spans WHERE {ctx.llm_where()} AND {_OK} ORDER BY timestamp DESC LIMIT {NEAR_SAMPLE}",
        ctx.llm_params(),
    )
    if not sample:
        return []
    for r in sample:
        rest = f"{r['model']}|{r['tools']}|{r['params']}|{r['temperature']}|{r['mt']}"
        r["rest_key"] = rest
        r["exact_key"] = f"{rest}|{r['prompt']}"
        r["near_key"] = f"{rest}|{normalise(str(r['prompt']))}"
    exact = replay_cache(sorted(sample, key=lambda r: (r["exact_key"], r["timestamp"])), "exact_key", ctx.cache_ttl_s)
    near = replay_cache(sorted(sample, key=lambda r: (r["near_key"], r["timestamp"])), "near_key", ctx.cache_ttl_s)
    scale = _scale(ctx, len(sample), NEAR_SAMPLE)
    out = _tier_findings(ctx, near, exact, scale, "near", {"sample_calls": len(sample)})
    if ctx.embeddings is not None:
        try:
            out += _semantic_duplicates(ctx, sample[:SEMANTIC_SAMPLE])
        except EmbeddingError as exc:
            ctx.problems.append(f"the semantic tier of cacheable prompts is skipped: {exc}")
    return out


def replay_semantic_cache(
    rows: list[dict[str, Any]], similar: Mapping[int, Mapping[int, float]], threshold: float, ttl_s: float
) -> dict[str, _Tally]:
    """Hits per feature of a cache that answers a call from a kept call of the same `rest_key` whose prompt is
    `threshold` similar or more; `rows` in time order, each with `rest_key` and `u` (its prompt's number), and
    `similar[u][v]` the similarity of prompts u and v when it is `threshold` or more (absent when less)."""
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    kept: dict[str, list[tuple[int, float, str]]] = defaultdict(list)  # (prompt, kept until, preview)
    for r in rows:
        tally = tallies[str(r["feature"])]
        tally.calls += 1
        t = r["timestamp"].timestamp()
        entries = kept[r["rest_key"]]
        close = similar.get(r["u"], {})
        best, best_preview = -1.0, None
        if close:
            # The most similar live entry, the earliest of equals.
            for u, until, preview in entries:
                if until > t and (s := close.get(u, -1.0)) > best:
                    best, best_preview = s, preview
        if best_preview is not None and best >= threshold:
            tally.hit(r, best_preview, best_preview)
            continue
        entries.append((r["u"], t + ttl_s, str(r.get("preview") or "")))
    return tallies


# Every pair of prompts (u, v) of one group, once: each prompt with those before it in its group.
_PAIRS = """
WITH member AS (SELECT unnest($groups::INTEGER[]) AS g, unnest($prompts::INTEGER[]) AS u,
                       generate_subscripts($prompts::INTEGER[], 1) AS pos),
before AS (SELECT u, list(u) OVER (PARTITION BY g ORDER BY pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS vs
           FROM member)
SELECT u, unnest(vs) AS v FROM before
"""
# The exact similarity of the candidate pairs (u, v) with u in one of `shares`, when `threshold` or more, as
# lists by prompt both ways round. (One lambda per prompt over its candidates takes a third less time than a
# row per pair, and lists come back quicker than millions of rows when most pairs are alike.)
_EXACT = """
WITH pair AS MATERIALIZED (
    SELECT u, unnest(vs) AS v, unnest(list_transform(vs, lambda w: list_dot_product(x[u + 1], x[w + 1]))) AS s
    FROM (SELECT u, list(v) AS vs FROM candidate WHERE u % $shares = $share GROUP BY u), vector
), close AS (SELECT u, v, s FROM pair WHERE s >= $threshold)
SELECT u, list(v), list(s) FROM close GROUP BY u
UNION ALL SELECT v, list(u), list(s) FROM close GROUP BY v
"""


def similar_pairs(
    vectors: Sequence[array[float]], groups: Iterable[Sequence[int]], threshold: float
) -> dict[int, dict[int, float]]:
    """Cosine similarity (the dot product of unit vectors) of the prompts u and v of a group, when it is
    `threshold` or more: `{u: {v: similarity}}`, both ways round, and each prompt with itself.

    2,000 prompts in one group make ~2M pairs, too many for Python: DuckDB first bounds each pair's similarity
    from above with its first HEAD dimensions (their dot product, plus the product of the lengths of the rest,
    which the dot product of the rest cannot exceed), which rules out unrelated prompts at a twelfth of the
    work; the pairs left get their exact similarity, in Python when they are few (as DuckDB would take longer
    to be given their vectors), else in DuckDB on two threads."""
    similar: dict[int, dict[int, float]] = defaultdict(dict)
    group_of: list[int] = []
    prompt_of: list[int] = []
    for g, members in enumerate(groups):
        group_of += [g] * len(members)
        prompt_of += members
        for u in members:
            if (s := math.hypot(*vectors[u]) ** 2) >= threshold:
                similar[u][u] = s
    cut = threshold - 1e-3  # lower than the threshold by more than float32 sums can be out
    with duckdb.connect() as db:
        db.execute(
            f"CREATE TABLE candidate AS SELECT u, v FROM ({_PAIRS}), "
            "(SELECT $heads::FLOAT[][] AS head, $rests::DOUBLE[] AS rest) "
            "WHERE list_dot_product(head[u + 1], head[v + 1]) + rest[u + 1] * rest[v + 1] >= $cut",
            {
                "groups": group_of,
                "prompts": prompt_of,
                "heads": [v[:HEAD].tolist() for v in vectors],
                "rests": [math.hypot(*v[HEAD:]) for v in vectors],
                "cut": cut,
            },
        )
        needed = {u for (u,) in db.execute("SELECT u FROM candidate UNION SELECT v FROM candidate").fetchall()}
        (pairs,) = db.execute("SELECT count(*) FROM candidate").fetchone() or (0,)
        if pairs <= 10 * len(needed):
            full = {u: vectors[u].tolist() for u in needed}
            for u, v in db.execute("SELECT u, v FROM candidate").fetchall():
                if (s := sum(map(operator.mul, full[u], full[v]))) >= threshold:
                    similar[u][v] = similar[v][u] = s
        else:
            x = [v.tolist() if u in needed else None for u, v in enumerate(vectors)]
            db.execute("CREATE TABLE vector AS SELECT $x::FLOAT[][] AS x", {"x": x})

            def exact(share: int) -> list[tuple[int, list[int], list[float]]]:
                with db.cursor() as cursor:
                    found = cursor.execute(_EXACT, {"shares": 2, "share": share, "threshold": threshold})
                    return found.fetchall()

            with ThreadPoolExecutor(2) as pool:  # DuckDB lets go of the GIL while a query runs
                for part in pool.map(exact, range(2)):
                    for u, vs, ss in part:
                        similar[u].update(zip(vs, ss, strict=True))
    return dict(similar)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text") or "") if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def question_and_context(messages: str | None, prompt: str) -> tuple[str, str]:
    """What a semantic cache compares (the last user message) and what must be equal for a hit (the other
    messages: system prompt, history). A long shared system prompt would make every question look alike."""
    try:
        parsed = json.loads(messages) if messages else None
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and parsed:
        users = [i for i, m in enumerate(parsed) if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            question = _message_text(parsed[users[-1]])
            rest = parsed[: users[-1]] + parsed[users[-1] + 1 :]
            return question, json.dumps(rest, sort_keys=True, ensure_ascii=False)
    return prompt, ""


def _semantic_duplicates(ctx: FindingContext, recent: list[dict[str, Any]]) -> list[Insight]:
    """Hits neither an exact nor a normalised key gets, but a cache on prompt embeddings would (recent calls)."""
    assert ctx.embeddings is not None
    if len(recent) < 2:
        return []
    for r in recent:
        r["question"], context = question_and_context(r.get("messages"), str(r["prompt"]))
        r["rest_key"] = f"{r['rest_key']}|{context}"
    vectors = ctx.embeddings.vectors(ctx.project, [r["question"] for r in recent])
    semantic = semantic_cache_tallies(recent, vectors, ctx.embeddings.threshold, ctx.cache_ttl_s)
    near = replay_cache(sorted(recent, key=lambda r: (r["near_key"], r["timestamp"])), "near_key", ctx.cache_ttl_s)
    details = {
        "sample_calls": len(recent),
        "embedding_model": ctx.embeddings.model.name,
        "threshold": ctx.embeddings.threshold,
    }
    return _tier_findings(ctx, semantic, near, _scale(ctx, len(recent), SEMANTIC_SAMPLE), "semantic", details)


def semantic_cache_tallies(
    recent: list[dict[str, Any]], vectors: Mapping[str, array[float]], threshold: float, ttl_s: float
) -> dict[str, _Tally]:
    """The semantic cache replayed over `recent` (each with `question` and `rest_key`), `vectors` by text key."""
    number: dict[str, int] = {}  # text key -> prompt number
    groups: dict[str, dict[int, None]] = defaultdict(dict)  # rest_key -> its prompts, in order
    for r in recent:
        r["u"] = number.setdefault(text_key(r["question"]), len(number))
        groups[r["rest_key"]][r["u"]] = None
    similar = similar_pairs([vectors[k] for k in number], [list(g) for g in groups.values()], threshold)
    in_time = sorted(recent, key=lambda r: r["timestamp"])
    return replay_semantic_cache(in_time, similar, threshold, ttl_s)


def _scale(ctx: FindingContext, sampled: int, cap: int) -> float:
    """Calls of the window per sampled call, when the sample stopped at `cap` (else 1)."""
    if sampled < cap:
        return 1.0
    total = ctx.rows(f"SELECT COUNT(*) AS n FROM spans WHERE {ctx.llm_where()} AND {_OK}", ctx.llm_params())
    return max(num(total[0]["n"]) / sampled, 1.0) if total else 1.0


def _tier_findings(
    ctx: FindingContext,
    tallies: dict[str, _Tally],
    stricter: dict[str, _Tally],
    scale: float,
    tier: str,
    details: dict[str, Any],
) -> list[Insight]:
    """A finding per feature for the hits `tallies` gets beyond the `stricter` key's over the same calls;
    dollars and calls scaled to the window."""
    out = []
    for feature, tally in tallies.items():
        base = stricter.get(feature, _Tally())
        extra = _Tally(
            hits=tally.hits - base.hits,
            usd=(tally.usd - base.usd) * scale,
            ms=tally.ms - base.ms,
            calls=tally.calls,
            warm=tally.warm,
            examples=[t for t in tally.examples if t not in base.examples][:5] or tally.examples[:5],
            requests=dict(tally.requests),
        )
        if extra.hits < MIN_HITS or extra.usd <= 0:
            continue
        insight = _insight(ctx, feature, extra, tier=tier, capped=False)
        insight.calls_affected = round(extra.hits * scale)
        insight.details.update(details, scale=round(scale, 4))
        out.append(insight)
    return out


def _insight(ctx: FindingContext, feature: str, tally: _Tally, *, tier: str, capped: bool) -> Insight:
    ttl_min = ctx.cache_ttl_s / 60
    per_hit_ms = tally.ms / tally.hits if tally.hits else None
    confidence = confidence_for(tally.hits, high=50, medium=10)
    assumptions = [
        f"An exact-match cache keeps each answer for {ttl_min:g} minutes (the gateway's cache_ttl_s) and has room "
        "for every request.",
        "A hit costs nothing and answers at once: it saves the call's cost and its whole latency.",
        "Only calls that go through the llmlens gateway can be served from its cache.",
    ]
    if tally.warm:
        confidence = lower(confidence)
        assumptions.append(
            "Some repeats were sent with a temperature above 0: a cached answer is one of the possible answers, "
            "which is fine only if any of them will do."
        )
    if tier == "semantic":
        confidence = lower(confidence)
        model = ctx.embeddings.model.name if ctx.embeddings else "?"
        threshold = ctx.embeddings.threshold if ctx.embeddings else 0.0
        title = f"{counted(tally.hits, 'prompt')} in {feature} ask what an earlier prompt asked, in other words"
        method = (
            f"The most recent calls (up to {SEMANTIC_SAMPLE:,}) have their last user message embedded with {model}; "
            "replaying a cache over them in time order, a call is a hit when a call kept in the cache with the same "
            "model, tools, parameters and other messages (system prompt, history) has a last user message at "
            f"cosine similarity {threshold:g} or more. The hits neither an "
            "exact nor a normalised key would get are counted, scaled to every call of the window when the "
            "sample is smaller."
        )
        assumptions.append(
            "An answer to a prompt this similar would do for the other: read the examples side by side first. "
            "The llmlens gateway caches exact requests only; this saving needs a semantic cache in the app."
        )
    elif tier == "near":
        confidence = lower(confidence)
        title = f"{counted(tally.hits, 'near-duplicate prompt')} in {feature} (same but for ids, dates, numbers)"
        method = (
            "The most recent calls (up to 10,000) are keyed on their request with the prompt normalised: "
            "whitespace collapsed, dates, times, UUIDs, hex ids and numbers replaced by placeholders; the "
            "exact-match cache is replayed over them and the hits an exact key would not get are counted, "
            "scaled to every call of the window when the sample is smaller."
        )
        assumptions.append(
            "The answer does not depend on the parts that differ (an id, a date): check the examples before "
            "caching on a normalised key; the gateway's cache matches exact requests only."
        )
    else:
        title = f"{counted(tally.hits, 'repeated identical request')} in {feature} could be answered from a cache"
        method = (
            "Requests are identical when model, prompt, tools, parameters, temperature and max_tokens are. "
            f"An exact-match cache with a {ttl_min:g}-minute lifetime is replayed over the calls in time order; "
            "each hit saves its call's recorded cost and latency."
        )
        if capped:
            assumptions.append(f"Only the first {MAX_ROWS:,} repeated calls were replayed: the saving is a floor.")
    top = sorted(tally.requests.values(), key=lambda v: -v[1])[:6]
    chart = Chart(
        title="Hits per repeated request",
        categories=[short(p, 40) or "(empty)" for p, _ in top],
        series=[{"label": "cache hits", "values": [n for _, n in top]}],
    )
    action = None
    if feature != "(none)" and tier != "semantic":
        action = Action(
            kind="enable_cache",
            label=f"Switch on the gateway cache for {feature}",
            method="PUT",
            url=f"/api/v1/gateway/cache/features/{quote(feature, safe='')}",
            note="Calls through the gateway with X-LLMLens-Feature: "
            f"{feature} are then answered from the cache when identical.",
        )
    return Insight(
        kind=KIND,
        title=title,
        scope={"feature": feature, **({"tier": tier} if tier != "exact" else {})},
        saving_usd=round(tally.usd, 6),
        saving_usd_per_month=round(ctx.per_month(tally.usd), 6),
        saving_ms_per_trace=round(per_hit_ms, 1) if per_hit_ms is not None else None,
        calls_affected=tally.hits,
        confidence=confidence,
        method=method,
        example_trace_ids=tally.examples,
        assumptions=assumptions,
        saving_s_per_month=round(ctx.per_month(tally.ms) / 1000, 1),
        traces_affected=tally.hits,
        summary=f"{tally.hits} of {tally.calls} calls to repeated requests would have been cache hits.",
        chart=chart,
        evidence=[{"request": p, "hits": n} for p, n in top],
        action=action,
        details={"hits": tally.hits, "repeated_calls": tally.calls, "ttl_s": ctx.cache_ttl_s},
    )
