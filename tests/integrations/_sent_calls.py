"""The LLM and tool calls the report tests send, and the figures `llmlens report` must print for them,
worked out here from the calls themselves (sums, counts, percentiles), never read back from llmlens."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.llmlens_server import LLMLensServer

# Tier budgets (USD a month) of the server's default `[budgets]`: the article's free and pro tiers.
TIER_BUDGETS = {"free": 1.0, "pro": 50.0}
# The dashboards' percentiles come from sketches kept within 1 % of the exact value (docs/benchmarks.md).
PERCENTILE_TOLERANCE = 0.01


@dataclass(frozen=True)
class SentCall:
    model: str
    user_id: str
    tier: str | None
    feature: str
    cost_usd: float
    latency_ms: float
    ttft_ms: float
    timestamp: float  # epoch seconds


@dataclass(frozen=True)
class SentTool:
    tool_name: str
    latency_ms: float
    success: bool
    timestamp: float


_USERS = (("u-alice", "pro"), ("u-bob", "free"), ("u-carol", None))
_FEATURES = ("chat", "summarize", "code_generation")
# Latencies per model, ms; the gpt-4o calls are the slowest, so it heads the latency report.
_LATENCIES = {
    "gpt-4o": (2400.0, 3100.0, 900.0, 1750.0, 5200.0, 1333.0, 2890.0, 4100.0, 760.0, 1980.0, 2222.0),
    "gpt-4o-mini": (420.0, 610.0, 380.0, 455.0, 1210.0, 333.0, 512.0, 700.0, 298.0, 389.0),
    "claude-3-5-haiku-20241022": (1250.0, 980.0, 1430.0, 2010.0, 875.0, 1111.0),
}
# USD per call, before a per-call variation; gpt-4o calls cost dollars, the others fractions of a cent.
_BASE_COST = {"gpt-4o": 0.41, "gpt-4o-mini": 0.00137, "claude-3-5-haiku-20241022": 0.0052}
_TOOLS = {
    "search_web": ((310.0, True), (1450.0, False), (280.0, True), (5000.0, False), (295.0, True), (330.0, True)),
    "calculator": ((3.0, True), (4.5, True), (2.0, True), (6.0, True)),
}


def sent_calls(now: float) -> list[SentCall]:
    """Every call in the last quarter hour before `now`, users and features taken in turn."""
    calls: list[SentCall] = []
    for model, latencies in _LATENCIES.items():
        for latency in latencies:
            i = len(calls)
            user, tier = _USERS[i % len(_USERS)]
            calls.append(
                SentCall(
                    model=model,
                    user_id=user,
                    tier=tier,
                    feature=_FEATURES[(i // 2) % len(_FEATURES)],
                    cost_usd=round(_BASE_COST[model] * (1 + (i % 5) * 0.37), 8),
                    latency_ms=latency,
                    ttft_ms=round(latency * 0.18 + 40, 1),
                    timestamp=now - 30 - 25 * i,
                )
            )
    return calls


def sent_tools(now: float) -> list[SentTool]:
    return [
        SentTool(tool_name=name, latency_ms=latency, success=success, timestamp=now - 40 - 20 * i)
        for name, runs in _TOOLS.items()
        for i, (latency, success) in enumerate(runs)
    ]


def events(calls: Iterable[SentCall], tools: Iterable[SentTool]) -> list[dict[str, Any]]:
    """The calls as ingest events, each with the cost its caller reports."""
    out: list[dict[str, Any]] = []
    for i, c in enumerate(calls):
        out.append(
            {
                "type": "llm",
                "model": c.model,
                "user_id": c.user_id,
                "feature": c.feature,
                "prompt": f"question {i}",
                "response": f"answer {i}",
                "prompt_tokens": 100 + i,
                "completion_tokens": 20 + i,
                "cost_usd": c.cost_usd,
                "latency_ms": c.latency_ms,
                "ttft_ms": c.ttft_ms,
                "timestamp": c.timestamp,
                "metadata": {"tier": c.tier} if c.tier else {},
            }
        )
    for t in tools:
        out.append(
            {
                "type": "tool",
                "tool_name": t.tool_name,
                "args": {"q": t.tool_name},
                "result": "ok" if t.success else None,
                "latency_ms": t.latency_ms,
                "success": t.success,
                "error": None if t.success else "upstream timed out",
                "timestamp": t.timestamp,
            }
        )
    return out


def percentile_cont(values: Iterable[float], q: float) -> float:
    """SQL's `percentile_cont(q)`, the definition the docs' queries use: the value at rank q·(n-1) of the
    sorted values, interpolated linearly between its two neighbours."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def month_start(now: float) -> float:
    """The first instant of the current UTC month, in epoch seconds: month-to-date spend starts here."""
    today = dt.datetime.fromtimestamp(now, dt.UTC)
    return today.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def assert_printed(cell: str, value: float | None, what: str) -> None:
    """A printed figure (`$2.88`, `$0.052`, `5.8%`, `1.4×`, `—` for none) is `value` to the digits shown."""
    if value is None:
        assert cell == "—", f"{what}: printed {cell!r}, expected none"
        return
    text = cell.removeprefix("$").removesuffix("%").removesuffix("×").replace(",", "")
    decimals = len(text.partition(".")[2])
    shown = value * 100 if cell.endswith("%") else value
    # Half the last digit shown, and a hair more for the float the figure was rounded from.
    assert abs(float(text) - shown) <= 0.5 * 10**-decimals * (1 + 1e-9), f"{what}: printed {cell!r}, exact {shown}"


def ms_from_cell(cell: str) -> tuple[float, float]:
    """A printed duration (`850 ms`, `2.40 s`) in ms, and half its last printed digit (the rounding)."""
    if cell.endswith(" ms"):
        return float(cell.removesuffix(" ms")), 0.5
    assert cell.endswith(" s"), cell
    return float(cell.removesuffix(" s")) * 1000, 5.0


def table_rows(output: str) -> dict[str, list[str]]:
    """The cells of every row of the Rich tables printed, keyed by their first cell."""
    rows: dict[str, list[str]] = {}
    for line in output.splitlines():
        if "│" not in line:
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        rows.setdefault(cells[0], cells)
    return rows


@dataclass
class SentServer:
    """A server holding only the calls sent to it, and those calls."""

    srv: LLMLensServer
    now: float
    calls: list[SentCall]
    tools: list[SentTool]


@contextmanager
def serve_sent_calls(data: Path) -> Iterator[SentServer]:
    """A fresh server with the calls of the last quarter hour in it (on disk once ingest answers)."""
    now = time.time()
    calls, tools = sent_calls(now), sent_tools(now)
    with LLMLensServer(data) as srv:
        answer = srv.ingest(events(calls, tools))
        assert (answer["accepted"], answer["rejected"]) == (len(calls) + len(tools), [])
        yield SentServer(srv, now, calls, tools)


def sums(calls: Iterable[SentCall], key: Callable[[SentCall], str]) -> dict[str, tuple[float, int]]:
    """(cost, calls) per key, most expensive first."""
    totals: dict[str, tuple[float, int]] = {}
    for c in calls:
        cost, n = totals.get(key(c), (0.0, 0))
        totals[key(c)] = (cost + c.cost_usd, n + 1)
    return dict(sorted(totals.items(), key=lambda item: -item[1][0]))


def assert_near_percentile(got: float, exact: float, rounding: float, what: str) -> None:
    """Within the documented sketch accuracy of the exact percentile, plus the rounding of the figure."""
    assert abs(got - exact) <= PERCENTILE_TOLERANCE * exact + rounding, f"{what}: {got} vs exact {exact}"
