"""`python -m benchmarks [--quick] [--clickhouse]`: every bench, one table, results/latest.json.

Each bench module exposes `run(quick) -> list[dict]` (keys benchmark, case, value, unit and optionally
peer, peer_value, ratio, target, met). The SDK and gateway benches, which have their own command
lines, run as subprocesses writing JSON that is folded into the same table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
IN_PROCESS = (
    "bench_otlp",
    "bench_phoenix",
    "bench_ingest",
    "bench_flood",
    "bench_dashboard",
    "bench_evaluators",
    "bench_install",
)


def _subprocess_bench(module: str, benchmark: str, quick: bool, extra: list[str]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", f"benchmarks.{module}", "--json", str(out), *extra]
        if quick and module == "bench_sdk":
            cmd.append("--quick")
        subprocess.run(cmd, check=True, cwd=HERE.parent, stdout=subprocess.DEVNULL, timeout=900)
        doc = json.loads(out.read_text())
    rows: list[dict[str, Any]] = []
    records = doc if isinstance(doc, list) else doc.get("results", [doc])
    for rec in records:
        if not isinstance(rec, dict):
            continue
        case = str(rec.get("case") or rec.get("path") or rec.get("name") or "")
        for key, value in rec.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and key not in ("calls", "requests"):
                unit = "µs" if key.endswith("_us") else "ms" if key.endswith("_ms") else key
                rows.append({"benchmark": benchmark, "case": f"{case} {key}".strip(), "value": value, "unit": unit})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (1M dashboard store only)")
    parser.add_argument("--clickhouse", action="store_true", help="also run bench_clickhouse")
    parser.add_argument("--only", help="comma-separated bench modules to run")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    plan: list[str] = [m for m in IN_PROCESS if (HERE / f"{m}.py").exists()]
    plan += [m for m in ("bench_sdk", "bench_gateway") if (HERE / f"{m}.py").exists()]
    if args.clickhouse:
        plan.append("bench_clickhouse")
    for module in plan:
        if only and module not in only:
            continue
        t0 = time.perf_counter()
        print(f"running {module}...", file=sys.stderr)
        try:
            if module == "bench_sdk":
                rows += _subprocess_bench(module, "SDK overhead per call", args.quick, [])
            elif module == "bench_gateway":
                extra = ["--requests", "300"] if args.quick else []
                rows += _subprocess_bench(module, "gateway overhead", args.quick, extra)
            elif module == "bench_clickhouse":
                rows += _subprocess_bench(module, "ClickHouse backend", args.quick, [])
            else:
                rows += importlib.import_module(f"benchmarks.{module}").run(args.quick)
        except Exception:
            errors[module] = traceback.format_exc(limit=3)
            print(errors[module], file=sys.stderr)
        print(f"  {module}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    table = Table(title=f"llmlens benchmarks ({'quick' if args.quick else 'full'})")
    for col in ("benchmark", "case", "value", "unit", "peer", "peer value", "ratio", "target", "met"):
        table.add_column(col, overflow="fold")
    for r in rows:
        met = r.get("met")
        table.add_row(
            r["benchmark"],
            r["case"],
            f"{r['value']:,}" if isinstance(r["value"], int | float) else str(r["value"]),
            r["unit"],
            str(r.get("peer") or ""),
            f"{r['peer_value']:,}" if isinstance(r.get("peer_value"), int | float) else "",
            f"{r['ratio']}x" if r.get("ratio") else "",
            str(r.get("target") or ""),
            "" if met is None else ("yes" if met else "NO"),
        )
    Console().print(table)
    doc = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
        },
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started),
        "results": rows,
        "errors": errors,
    }
    out = HERE / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"{len(rows)} results in {doc['seconds']} s; JSON: {out}", file=sys.stderr)
    return 1 if errors else 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
