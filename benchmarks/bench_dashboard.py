"""Server time of every dashboard page over a DuckDB store holding N LLM calls (default 1M).

    .venv/bin/python benchmarks/bench_dashboard.py [--calls 1000000] [--data /tmp/llmlens-bench] [--runs 5]

Fills the store once (reused when the data directory already holds it) straight through
`Store.write`, in large batches of synthetic traces spread over 30 days: a request span and an LLM
call per turn, a tool call for one in five, feedback on three in ten. Then times each page's
context builder (exactly what the HTML page and its /api/v1 twin run) per time range, prints a
table and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from starlette.datastructures import QueryParams

from llmlens.model import Feedback, Span
from llmlens.query import Scope, parse_window
from llmlens.server import build_state
from llmlens.server._params import PageParams
from llmlens.server.pages import PAGES
from llmlens.settings import Settings
from llmlens.store.duckdb import DuckDBStore

DAY_US = 86_400_000_000
MODELS = [
    ("gpt-4o", 0.012),
    ("gpt-4o-mini", 0.0006),
    ("claude-3-5-sonnet-20241022", 0.015),
    ("llama-3-8b-instruct", None),
]
FEATURES = ["code_generation", "text_summarization", "support_chat", "research_assistant"]
TEMPLATES = {
    "code_generation": "code_review",
    "text_summarization": "summarize",
    "support_chat": "support_answer",
    "research_assistant": "research",
}
TOOLS = [("search_web", 0.4), ("fetch_user_data", 0.97), ("calculator", 0.99)]
FEEDBACK = ["thumbs_up", "thumbs_up", "thumbs_down", "retry", "edit", "abandon"]
PROJECT = "default"


def fill(store: DuckDBStore, calls: int, batch: int = 100_000) -> None:
    rng = random.Random(1)
    now = time.time_ns() // 1000
    start = now - 30 * DAY_US
    step = 30 * DAY_US // calls
    spans: list[Span] = []
    feedback: list[Feedback] = []
    t0 = time.perf_counter()
    for i in range(calls):
        t = start + i * step
        trace = f"{i:032x}"
        feature = FEATURES[i % 4]
        model, price = MODELS[rng.randrange(4)]
        user = f"user-{rng.randrange(2000):04d}"
        session = f"sess-{i // 4:08x}"
        latency = rng.lognormvariate(7.3, 0.7)
        failed = rng.random() < 0.03
        prompt_tokens = rng.randint(200, 6000)
        completion_tokens = rng.randint(20, 900)
        common = {"trace_id": trace, "project": PROJECT, "user_id": user, "session_id": session, "feature": feature}
        spans.append(
            Span(
                span_id=f"{2 * i:016x}",
                kind="request",
                name="POST /api/chat",
                start_us=t,
                latency_ms=latency + 5,
                http_status=500 if failed else 200,
                status="error" if failed else "ok",
                **common,
            )
        )
        version = "v2" if i > calls * 0.8 else "v1"
        spans.append(
            Span(
                span_id=f"{2 * i + 1:016x}",
                parent_span_id=f"{2 * i:016x}",
                kind="llm",
                start_us=t + 1000,
                latency_ms=latency,
                model=model,
                provider="openai",
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
                cost_usd=None if price is None else price * (prompt_tokens + 4 * completion_tokens) / 1000,
                cost_source="unpriced" if price is None else "library",
                ttft_ms=latency * 0.2,
                tokens_per_second=completion_tokens / max(latency / 1000, 0.1),
                status="error" if failed else "ok",
                error_type="rate_limit" if failed else None,
                template_id=TEMPLATES[feature],
                template_version=version,
                message_id=f"m{i:x}",
                prompt=f"user question {i} about billing and passwords",
                response=f"answer {i}",
                metadata={"tier": "pro" if user < "user-0400" else "free"},
                **common,
            )
        )
        if i % 5 == 0:
            name, ok_rate = TOOLS[i % 3]
            ok = rng.random() < ok_rate
            spans.append(
                Span(
                    span_id=f"t{i:015x}",
                    parent_span_id=f"{2 * i + 1:016x}",
                    kind="tool",
                    start_us=t + 2000,
                    latency_ms=rng.uniform(5, 3000),
                    tool_name=name,
                    tool_args={"q": i},
                    tool_success=ok,
                    status="ok" if ok else "error",
                    error_message=None if ok else "boom",
                    **common,
                )
            )
        if i % 10 < 3:
            feedback.append(
                Feedback(
                    feedback_id=f"f{i:x}",
                    message_id=f"m{i:x}",
                    feedback_type=rng.choice(FEEDBACK),
                    timestamp_us=t + 10_000_000,
                    project=PROJECT,
                    user_id=user,
                    session_id=session,
                )
            )
        if len(spans) >= batch:
            store.write(spans, feedback)
            spans, feedback = [], []
            done = i + 1
            rate = done / (time.perf_counter() - t0)
            print(f"  {done:>9,} calls written ({rate:,.0f}/s)", file=sys.stderr, end="\r")
    store.write(spans, feedback)
    print(f"\n  filled in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/llmlens-bench"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ranges", default="24h,7d,30d")
    args = parser.parse_args()
    db = args.data / f"bench-{args.calls}.duckdb"
    store = DuckDBStore(db)
    have = store.query("SELECT COUNT(*) FROM spans WHERE kind = 'llm'").rows[0][0]
    if have < args.calls:
        print(f"filling {db} with {args.calls:,} LLM calls...", file=sys.stderr)
        fill(store, args.calls)
    have = store.query("SELECT COUNT(*) FROM spans WHERE kind = 'llm'").rows[0][0]
    total = store.query("SELECT COUNT(*) FROM spans").rows[0][0]
    state = build_state(Settings(data_dir=args.data), store)
    trace = store.query(
        "SELECT trace_id, session_id FROM spans WHERE kind = 'llm' ORDER BY timestamp DESC LIMIT 1"
    ).rows[0]
    path_params = {
        "prompt": {"template_id": "support_answer"},
        "trace": {"trace_id": trace[0]},
        "session": {"session_id": trace[1]},
    }
    extra = {
        "sql": {
            "q": "SELECT feature, SUM(cost_usd) as total_cost, COUNT(*) as calls FROM llm_logs WHERE timestamp > NOW() - INTERVAL 7 DAY GROUP BY feature ORDER BY total_cost DESC"
        }
    }
    results: list[dict[str, Any]] = []
    print(f"\n{have:,} LLM calls, {total:,} spans; server time per page (median / max of {args.runs} runs, ms)\n")
    ranges = args.ranges.split(",")
    print(f"{'page':<12}" + "".join(f"{r:>20}" for r in ranges))
    for page in PAGES:
        line = f"{page.name:<12}"
        for range_ in ranges:
            query = QueryParams({"range": range_, **extra.get(page.name, {})})
            params = PageParams(Scope(PROJECT, parse_window(range_)), query)
            timings = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                page.build(state, params, path_params.get(page.name, {}))
                timings.append((time.perf_counter() - t0) * 1000)
            med, worst = statistics.median(timings), max(timings)
            results.append({"page": page.name, "range": range_, "median_ms": round(med, 1), "max_ms": round(worst, 1)})
            flag = " !" if med > 300 else "  "
            line += f"{med:>11.0f} / {worst:>5.0f}{flag}"
        print(line)
    out = Path(__file__).parent / "results" / "bench_dashboard.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"llm_calls": have, "spans": total, "runs": args.runs, "results": results}, indent=2))
    print(f"\n! = over 300 ms. JSON: {out}")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
