"""What every finder reads: the store confined to one project, the examined window, token prices."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmlens.pricing import PriceBook
from llmlens.store import Store

from ._model import Examined

if TYPE_CHECKING:
    from ._embeddings import Embeddings

# The calls every finding is about: LLM calls the application made, not replays or experiments run from
# llmlens, and not answers the gateway's cache already gave (those cost nothing and waited for nothing).
_LLM_CALLS = "kind = 'llm' AND replay_of IS NULL AND (cache_hit IS NULL OR NOT cache_hit)"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9 _.:-]+")


@dataclass(frozen=True, slots=True)
class TokenRates:
    """USD per token for one model, as the price book applies them."""

    input: float
    output: float
    cache_read: float
    cache_write: float


class Prices:
    """Token rates per (provider, model) from the server's price book, looked up once per refresh."""

    def __init__(self, book: PriceBook | None) -> None:
        self.book = book
        self._memo: dict[tuple[str | None, str | None], TokenRates | None] = {}

    def rates(self, provider: str | None, model: str | None) -> TokenRates | None:
        key = (provider, model)
        if key in self._memo:
            return self._memo[key]
        found: TokenRates | None = None
        if self.book is not None and model:
            priced = self.book.cost_for_usage(
                model=model, provider=provider, prompt_tokens=1_000_000, completion_tokens=0
            )
            if priced is not None:
                found = TokenRates(
                    input=priced.input_per_mtok / 1e6,
                    output=priced.output_per_mtok / 1e6,
                    cache_read=priced.cache_read_per_mtok / 1e6,
                    cache_write=priced.cache_write_per_mtok / 1e6,
                )
        self._memo[key] = found
        return found


@dataclass(slots=True)
class FindingContext:
    store: Store  # confined to `project`
    project: str
    start: dt.datetime  # the requested window
    end: dt.datetime
    examined: Examined
    prices: Prices
    rollups: bool = False  # the store keeps rollups and sketches (DuckDB)
    cache_ttl_s: float = 3600.0  # the gateway cache's TTL: what an exact-match cache would keep
    backend: str = "duckdb"  # or "clickhouse": the few functions that differ (hashing) follow it
    embeddings: Embeddings | None = None  # the semantic tier's prompt embeddings, when a model is configured
    problems: list[str] = field(default_factory=list)  # what a finder had to leave out, reported as errors

    def hash_sql(self, expr: str) -> str:
        """A hash of a text expression, as a value to group on (DuckDB's md5; ClickHouse 18.16 has no hex)."""
        return f"sipHash64({expr})" if self.backend == "clickhouse" else f"md5({expr})"

    def llm_where(self, alias: str = "") -> str:
        """The LLM calls of the examined window (bind `llm_params()`)."""
        p = f"{alias}." if alias else ""
        calls = _LLM_CALLS if not alias else re.sub(r"\b(kind|replay_of|cache_hit)\b", rf"{p}\1", _LLM_CALLS)
        return f"{p}project = ? AND {p}timestamp >= ? AND {p}timestamp < ? AND {calls}"

    def llm_params(self) -> list[Any]:
        return [self.project, self.examined.start, self.examined.end]

    def span_where(self, alias: str = "") -> str:
        """Every span of the examined window (bind `llm_params()`)."""
        p = f"{alias}." if alias else ""
        return f"{p}project = ? AND {p}timestamp >= ? AND {p}timestamp < ? AND {p}replay_of IS NULL"

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.store.query(sql, list(params)).dicts()

    def per_month(self, amount: float) -> float:
        return self.examined.per_month(amount)


def num(value: Any, default: float = 0.0) -> float:
    """A float from a database value; NULL and NaN become `default`."""
    if value is None:
        return default
    x = float(value)
    return default if math.isnan(x) else x


def rule_name(text: str) -> str:
    """An alert rule name (letters, digits, spaces, _.:-; at most 80 characters) from free text."""
    return _SAFE_NAME.sub("-", text).strip(" -")[:80] or "insight"


def short(text: str | None, limit: int = 60) -> str:
    """One line of at most `limit` characters, for chart labels."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def example_traces(
    ctx: FindingContext, where: str, params: Sequence[Any], *, order_by: str = "cost_usd", limit: int = 5
) -> list[str]:
    """Up to `limit` traces with LLM calls matching `where` in the examined window, largest `order_by` first."""
    found = ctx.rows(
        f"SELECT trace_id, MAX({order_by}) AS k FROM spans WHERE {ctx.llm_where()} AND ({where}) "
        f"GROUP BY trace_id ORDER BY k DESC, trace_id LIMIT {int(limit)}",
        [*ctx.llm_params(), *params],
    )
    return [str(r["trace_id"]) for r in found]


def anthropic_shaped(provider: str | None, model: str | None) -> bool:
    """Anthropic reports input tokens without the cached ones; OpenAI and the others include them."""
    p, m = (provider or "").lower(), (model or "").lower()
    return p in ("anthropic", "aws", "bedrock") or m.startswith(("claude", "anthropic."))


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 call`, `2 calls`: titles read right whatever the count."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"
