"""Online evaluators: their throughput (checks, and LLM judge calls against the stand-in provider playing the
judge), and the ingest throughput while they run beside it, against a real `llmlens serve`.

    .venv/bin/python -m benchmarks.bench_evaluators [--quick]

Throughput: N calls are stored at once, then timed until each has its score (so it includes the evaluator
thread's look interval, 0.2 s here). Ingest: 4 clients post 500-event batches to the default project with
its evaluator rules off, then on (a judge on a sample of the calls, a check on all of them), twice each in
turn; the rules run in the server's evaluator thread while ingest commits. Both share the machine's cores,
so what is measured is the whole server's cost, not only the ingest path's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from typing import Any

import httpx
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

from .bench_ingest import measure

JUDGE = "gpt-4.1-nano"  # a priced model name the stand-in answers as a judge
BENCH = "online evaluators"


def _calls(n: int, feature: str) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "type": "llm",
            "trace_id": uuid.uuid4().hex,
            "span_id": uuid.uuid4().hex[:16],
            "timestamp": now,
            "model": "gpt-4o-mini",
            "feature": feature,
            "input_messages": [{"role": "user", "content": f"Question {i}: how do I reset my password quickly?"}],
            "response": '{"answer": "Open Settings, choose Security and press Reset."}',
            "prompt_tokens": 20,
            "completion_tokens": 12,
        }
        for i in range(n)
    ]


def _scored(c: httpx.Client, name: str) -> int:
    r = c.post("/api/v1/sql", json={"query": f"SELECT count(*) FROM scores WHERE name = '{name}'"})
    return int(r.json()["rows"][0][0])


def _throughput(srv: LLMLensServer, project: str, rule: dict[str, Any], score: str, n: int) -> float:
    """Scores a second: `n` calls stored at once, timed until the rule has scored every one."""
    headers = {"X-LLMLens-Project": project}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=120) as c:
        assert c.post("/api/v1/evaluators/rules", json=rule).status_code == 201
        events = _calls(n, rule["feature"])
        started = time.perf_counter()
        for i in range(0, n, 500):
            assert c.post("/api/v1/ingest", json=events[i : i + 500]).json()["accepted"] == len(events[i : i + 500])
        deadline = time.monotonic() + 600
        while _scored(c, score) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{score}: only {_scored(c, score)} of {n} scored in 600 s")
            time.sleep(0.05)
        return n / (time.perf_counter() - started)


def _set_rules(srv: LLMLensServer, rules: list[dict[str, Any]], enabled: bool) -> None:
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        for rule in rules:
            r = c.put(f"/api/v1/evaluators/rules/{rule['name']}", json={**rule, "enabled": enabled})
            assert r.status_code == 200, r.text


def _evaluations(srv: LLMLensServer) -> int:
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        rules = c.get("/api/v1/evaluators/rules").json()["rules"]
    return sum(int(r["since_start"]["evaluated"]) for r in rules)


def run(quick: bool = False) -> list[dict[str, Any]]:
    checks_n, judged_n = (500, 100) if quick else (2_000, 400)
    ingest_events = 4_000 if quick else 12_000
    results: list[dict[str, Any]] = []
    with FakeProvider() as fp:
        fp.judge_models = {JUDGE}
        env = {
            "OPENAI_API_KEY": "sk-bench",
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "LLMLENS_QUALITY": json.dumps({"inferred": False, "evaluator_interval_s": 0.2}),
            "LLMLENS_JUDGE": json.dumps({"model": JUDGE, "concurrency": 8}),
        }
        args = ["--upstream", f"openai={fp.openai_base_url}", "--upstream", f"anthropic={fp.anthropic_base_url}"]
        with LLMLensServer(args=args, env=env) as srv:
            assert srv.proc is not None
            check = {"name": "valid json", "evaluator": "json_valid", "feature": "checked", "daily_budget_usd": 0}
            rate = _throughput(srv, "bench-checks", check, "json_valid", checks_n)
            results.append(
                {
                    "benchmark": BENCH,
                    "case": f"check (json_valid), {checks_n:,} calls",
                    "value": round(rate),
                    "unit": "scores/s",
                }
            )
            judge = {"name": "judged", "evaluator": "helpfulness", "feature": "judged", "daily_budget_usd": 0}
            rate = _throughput(srv, "bench-judge", judge, "helpfulness", judged_n)
            results.append(
                {
                    "benchmark": BENCH,
                    "case": f"LLM judge (helpfulness) against the stand-in, concurrency 8, {judged_n:,} calls",
                    "value": round(rate, 1),
                    "unit": "scores/s",
                }
            )
            rules = [
                {
                    "name": "judge a sample",
                    "evaluator": "helpfulness",
                    "feature": "chat",
                    "sample_rate": 0.05,
                    "daily_budget_usd": 0,
                },
                {"name": "check all", "evaluator": "json_valid", "daily_budget_usd": 0},
            ]
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                for rule in rules:
                    assert c.post("/api/v1/evaluators/rules", json={**rule, "enabled": False}).status_code == 201
            phases: dict[bool, list[dict[str, float]]] = {False: [], True: []}
            evaluated = 0
            # A first run warms the server (its caches, the writer, the OS); then off and on in turn.
            measure(srv.url, batch=500, clients=4, total_events=ingest_events // 2, server_pid=srv.proc.pid)
            for enabled in (False, True) * (2 if quick else 3):
                _set_rules(srv, rules, enabled)
                before = _evaluations(srv)
                phases[enabled].append(
                    measure(srv.url, batch=500, clients=4, total_events=ingest_events, server_pid=srv.proc.pid)
                )
                if enabled:
                    evaluated += _evaluations(srv) - before
            off = statistics.mean(p["rate"] for p in phases[False])
            on = statistics.mean(p["rate"] for p in phases[True])
            ratio = on / off
            results.append(
                {
                    "benchmark": BENCH,
                    "case": "ingest, 4 clients × 500-event batches, evaluator rules off",
                    "value": round(off),
                    "unit": "events/s committed",
                }
            )
            results.append(
                {
                    "benchmark": BENCH,
                    "case": f"same, rules on (judge 5 % of chat calls, json_valid on all; {evaluated:,} calls "
                    "evaluated during the runs)",
                    "value": round(on),
                    "unit": "events/s committed",
                    "peer": "rules off",
                    "peer_value": round(off),
                    "ratio": round(ratio, 3),
                    "target": "no slowdown beyond noise (>= 0.95x)",
                    "met": ratio >= 0.95,
                }
            )
            for enabled in (False, True):
                p50 = statistics.mean(p["p50_ms"] for p in phases[enabled])
                cpu = statistics.mean(p["server_cpu_us"] for p in phases[enabled])
                results.append(
                    {
                        "benchmark": BENCH,
                        "case": f"ingest request p50, rules {'on' if enabled else 'off'} (server CPU {cpu:,.0f} µs an event)",
                        "value": round(p50, 1),
                        "unit": "ms",
                    }
                )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    options = parser.parse_args()
    found = run(options.quick)
    for row in found:
        extra = f"  ({row['ratio']}x of {row['peer_value']:,})" if "ratio" in row else ""
        print(f"{row['case']:<100} {row['value']:>10,} {row['unit']}{extra}")
    if options.json:
        with open(options.json, "w") as out:
            json.dump(found, out, indent=2)
