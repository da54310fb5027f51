"""`llmlens replay SPAN_ID` and `llmlens compare --filter ... --models a,b,c`: replay stored calls, print a table.

With `--url` (or a running server) the server sends the calls with its keys and upstreams (the
server's environment, not this shell's); with `--data` the store is opened here and the keys come
from this shell's environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ._common import CliError, Target, add_target_options, resolve_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_options(parser)
    parser.add_argument("span_id", nargs="?", help="the LLM call (span id) to replay")
    parser.add_argument("--trace", help="replay a whole trace (agent steps, recorded tool results) instead")
    parser.add_argument(
        "--model", "-m", action="append", default=[], help="model to replay with (repeatable; upstream:model)"
    )
    _common_options(parser)


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_options(parser)
    parser.add_argument(
        "--models", required=True, help="comma-separated models, e.g. gpt-4o,anthropic:claude-3-5-haiku-latest"
    )
    parser.add_argument("--span-id", action="append", default=[], help="a call to replay (repeatable)")
    parser.add_argument("--trace-id", help="every LLM call of this trace")
    parser.add_argument("--session-id", help="every LLM call of this session")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="select calls: feature, model, template_id, template_version, user_id, status, rated, order "
        "(worst|recent|cost|latency), limit; e.g. --filter feature=support --filter order=worst",
    )
    parser.add_argument("--template-version", help="replay with the prompt of this template version instead")
    _common_options(parser)


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--temperature", type=float, help="temperature to send (default 0)")
    parser.add_argument("--original-params", action="store_true", help="keep the original temperature")
    parser.add_argument(
        "--scorer",
        action="append",
        default=[],
        help="exact_match, json_valid, contains:TEXT, regex:PATTERN, length_ratio or module:function (repeatable)",
    )
    parser.add_argument("--format", choices=["table", "json"], default="table")


def _filter(pairs: Sequence[str]) -> dict[str, Any] | None:
    doc: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--filter must be KEY=VALUE, got {pair!r}")
        doc[key.strip()] = value.strip()
    return doc or None


def _payload(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"scorers": args.scorer, "original_params": args.original_params}
    if args.temperature is not None:
        doc["temperature"] = args.temperature
    if args.project:
        doc["project"] = args.project
    return doc


def run(args: argparse.Namespace) -> int:
    if not args.span_id and not args.trace:
        raise CliError("name a span id to replay (or --trace TRACE_ID)")
    target = resolve_target(args)
    payload = _payload(args)
    if args.trace:
        payload["models"] = args.model[:1]
        with _server_key_note(target):
            result = (
                _trace_remote(target, args.trace, payload)
                if target.url
                else _local(target, "trace", args.trace, payload)
            )
        _print_trace(result, args.format)
        return 0
    payload.update(span_ids=[args.span_id], models=args.model, group=len(args.model) > 1)
    with _server_key_note(target):
        return _compare(target, payload, args.format)


def run_compare(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    payload = _payload(args)
    payload["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    payload["span_ids"] = args.span_id
    payload["trace_id"] = args.trace_id
    payload["session_id"] = args.session_id
    payload["filter"] = _filter(args.filter)
    payload["template_version"] = args.template_version
    if not (args.span_id or args.trace_id or args.session_id or payload["filter"]):
        raise CliError("name the calls: --span-id, --trace-id, --session-id or --filter")
    with _server_key_note(target):
        return _compare(target, payload, args.format)


_MISSING_KEY = re.compile(r"has no ([A-Z][A-Z0-9_]*_API_KEY) in its environment")


@contextlib.contextmanager
def _server_key_note(target: Target) -> Iterator[None]:
    """A server that lacks a key this shell has: say so, since the shell's key is what the user just set."""
    try:
        yield
    except CliError as exc:
        found = _MISSING_KEY.search(str(exc)) if target.url else None
        if found is None or not os.environ.get(found.group(1)):
            raise
        note = f" ({found.group(1)} is set in this shell, but the server at {target.url} does not read this shell)"
        raise CliError(str(exc) + note, exc.exit_code) from None


def _compare(target: Target, payload: dict[str, Any], fmt: str) -> int:
    from rich.progress import Progress

    with Progress(transient=True, disable=fmt != "table" or not sys.stderr.isatty()) as bar:
        task = bar.add_task("replaying", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if target.url:
            result = _compare_remote(target, payload, progress)
        else:
            result = _local(target, "compare", None, payload, progress)
    _print_comparison(result, fmt)
    return 0


def _compare_remote(target: Target, payload: dict[str, Any], progress: Callable[[int, int], None]) -> dict[str, Any]:
    """One request per call, so the bar moves; the replays share one run trace."""
    ids: list[str] = target.post("/api/v1/compare", {**payload, "select_only": True}, timeout=60)["span_ids"]
    if not ids:
        raise CliError("no stored LLM call matches; nothing to replay")
    run_id = parent = None
    rows: list[dict[str, Any]] = []
    base = {k: v for k, v in payload.items() if k not in ("span_ids", "trace_id", "session_id", "filter")}
    per_call = max(1, len(payload.get("models") or [None]))
    for i, span_id in enumerate(ids):
        group = len(ids) > 1 or bool(payload.get("group"))
        doc = target.post(
            "/api/v1/compare" if payload.get("models") or payload.get("template_version") else "/api/v1/replay",
            {
                **base,
                "span_ids": [span_id],
                "span_id": span_id,
                "run_id": run_id,
                "parent_span_id": parent,
                "group": group,
            },
            timeout=600,
        )
        run_id, parent = doc["run_id"], doc["root_span_id"]
        rows.extend(doc["rows"])
        progress((i + 1) * per_call, len(ids) * per_call)
    from llmlens.replay.compare import CompareRow, summarize

    originals = target.post("/api/v1/sql", {"query": _originals_sql(ids)})
    original_rows = [dict(zip(originals["columns"], r, strict=True)) for r in originals["rows"]]
    scorers = list(dict.fromkeys(name for r in rows for name in r["scores"]))
    parsed = [CompareRow(**{**r, "diff": [tuple(d) for d in r["diff"]]}) for r in rows]
    from dataclasses import asdict

    return {
        "run_id": run_id,
        "models": list(dict.fromkeys(r["model"] for r in rows)),
        "scorers": scorers,
        "rows": rows,
        "summary": [asdict(s) for s in summarize(original_rows, parsed, scorers)],
        "url": f"{target.url}/replays/{run_id}",
    }


def _originals_sql(ids: Sequence[str]) -> str:
    quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in ids)
    return (
        "SELECT span_id, latency_ms, cost_usd, total_tokens, status, error_type, error_message "
        f"FROM llm_logs WHERE span_id IN ({quoted})"
    )


def _trace_remote(target: Target, trace_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = target.post(f"/api/v1/traces/{trace_id}/replay", payload, timeout=600)
    return doc


def _local(
    target: Target,
    what: str,
    trace_id: str | None,
    payload: dict[str, Any],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run in this process over the store (`--data`): same service as the server, keys from this shell."""
    from dataclasses import asdict

    from llmlens.replay import (
        CallFilter,
        NotFound,
        NothingToReplay,
        NotReplayable,
        ProviderError,
        Providers,
        ReplayOptions,
        ReplayService,
        ScorerError,
        Selection,
    )
    from llmlens.server._app import build_state
    from llmlens.server._jsonable import jsonable

    settings = target.settings
    store = target.open_store(read_only=False)
    state = build_state(settings, store)
    state.writer.start()
    project = payload.get("project") or settings.project
    options = ReplayOptions(temperature=payload.get("temperature"), original_params=payload["original_params"])

    async def main() -> dict[str, Any]:
        providers = Providers(settings.upstreams, os.environ, timeout_s=float(settings.replay.get("timeout_s", 120)))

        async def record(spans: Any) -> None:
            await state.pipeline.ingest(spans, [])

        service = ReplayService(store, providers, record, concurrency=int(settings.replay.get("concurrency", 4)))
        try:
            if what == "trace":
                assert trace_id is not None
                models = payload.get("models") or [None]
                result = await service.replay_trace(project, trace_id, models[0], options)
                return dict(jsonable(asdict(result)))
            spec = payload.get("filter")
            selection = Selection(
                span_ids=tuple(payload.get("span_ids") or ()),
                trace_id=payload.get("trace_id"),
                session_id=payload.get("session_id"),
                filter=CallFilter.from_mapping(spec) if spec else None,
            )
            comparison = await service.compare(
                project,
                selection,
                payload.get("models") or [],
                options,
                payload.get("scorers") or [],
                template_version=payload.get("template_version"),
                progress=progress,
                group=bool(payload.get("group")),
            )
            return dict(jsonable(asdict(comparison)))
        finally:
            await providers.aclose()

    try:
        return asyncio.run(main())
    except (NotFound, NotReplayable, NothingToReplay, ScorerError, ProviderError, ValueError) as exc:
        raise CliError(str(exc)) from None
    finally:
        state.writer.stop()
        store.close()


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "—"
    if kind == "usd":
        return f"${float(value):.6f}"
    if kind == "ms":
        return f"{float(value):.0f} ms"
    if kind == "pct":
        return f"{float(value) * 100:.1f} %"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _print_comparison(result: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    scorers: list[str] = result["scorers"]
    calls = Table(title="Replays")
    for col in ("call", "model", "response", "similarity", "latency", "tokens in/out", "cost", "finish", *scorers):
        calls.add_column(col, overflow="fold", max_width=60 if col == "response" else None)
    for r in result["rows"]:
        calls.add_row(
            r["original_span_id"][:8],
            r["model"],
            r["error"] or (r["response"] or ""),
            _fmt(r["similarity"]),
            _fmt(r["latency_ms"], "ms"),
            f"{_fmt(r['prompt_tokens'])} / {_fmt(r['completion_tokens'])}",
            _fmt(r["cost_usd"], "usd"),
            _fmt(r["finish_reason"]),
            *(_fmt(r["scores"].get(s)) for s in scorers),
        )
    console.print(calls)
    summary = Table(title="Per model")
    for col in ("model", "calls", "errors", "error rate", "mean latency", "total cost", *scorers):
        summary.add_column(col)
    for m in result["summary"]:
        summary.add_row(
            m["model"],
            str(m["calls"]),
            str(m["errors"]),
            _fmt(m["error_rate"], "pct"),
            _fmt(m["mean_latency_ms"], "ms"),
            _fmt(m["total_cost_usd"], "usd"),
            *(_fmt(m["scores"].get(s)) for s in scorers),
        )
    console.print(summary)
    console.print(f"stored as trace {result['run_id']}")


def _print_trace(result: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Trace replay × {result['model']}")
    for col in ("step", "original", "replay", "diverged"):
        table.add_column(col, overflow="fold", max_width=60)

    def action(a: dict[str, Any] | None) -> str:
        if not a:
            return "—"
        if a.get("error"):
            return str(a["error"])
        if a.get("tool_calls"):
            return "; ".join(f"{c.get('name')}({json.dumps(c.get('arguments'))})" for c in a["tool_calls"])
        return str(a.get("response") or "")

    for step in result["steps"]:
        table.add_row(str(step["index"] + 1), action(step["original"]), action(step["replay"]), step["diverged"] or "")
    console = Console()
    console.print(table)
    if result.get("stopped"):
        console.print(f"stopped: {result['stopped']}")
    console.print(f"stored as trace {result['run_id']}")
