"""The `llmlens` command. Each subcommand imports its subsystem lazily, so `--help` is instant."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ._common import CliError

# name -> (module, help). Each module has `add_arguments(parser)` and `run(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("llmlens.cli.serve", "run the llmlens server (UI, APIs, OTLP, gateway) on an embedded store"),
    "sql": (
        "llmlens.cli.sql",
        "run a read-only SQL query over llm_logs, tool_logs, retrieval_logs, feedback_events",
    ),
    "import": ("llmlens.cli.import_logs", "import JSON log files written by the article's logger"),
    "demo": ("llmlens.cli.demo", "send realistic demo traffic to a running server"),
    "reprice": ("llmlens.cli.reprice", "recompute stored costs after a price change"),
    "rollups": ("llmlens.cli.rollups", "rebuild the dashboards' hourly/daily rollups from the stored spans"),
    "migrate": ("llmlens.cli.migrate", "copy all data between stores, e.g. from DuckDB to ClickHouse"),
    "projects": ("llmlens.cli.projects", "create and list projects, set a project's retention"),
    "keys": ("llmlens.cli.keys", "create, list and revoke API keys (shown once, stored hashed)"),
    "users": ("llmlens.cli.users", "create UI users, set passwords, grant per-project roles"),
    "proxy": ("llmlens.cli.proxy", "run only the LLM gateway (/proxy/<upstream>/...) and its budget API"),
    "alerts": ("llmlens.cli.alerts", "evaluate the alert rules once and print what would fire (for cron)"),
    "export": ("llmlens.cli.export", "export llm_logs, tool_logs, ... to Parquet, JSON Lines or CSV"),
    "report": ("llmlens.cli.report", "cost, latency or tools report as tables in the terminal"),
    "insights": (
        "llmlens.cli.insights",
        "what to change in your app and what it saves per month, computed from its own traffic",
    ),
    "tail": ("llmlens.cli.tail", "live stream of LLM calls as they arrive"),
    "replay": ("llmlens.cli.replay", "replay a stored LLM call (or a whole trace) against the same or other models"),
    "compare": ("llmlens.cli.compare", "replay stored calls against several models and compare them side by side"),
    "experiment": (
        "llmlens.cli.experiment",
        "run a dataset through model or prompt variants with evaluators; exit 1 when one is significantly worse",
    ),
}


def _load(
    module_name: str,
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    import importlib

    module = importlib.import_module(module_name)
    return module.add_arguments, module.run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmlens", description="LLM observability: trace, cost, latency, prompts.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments, run = _load(module_name)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmlens")
    except PackageNotFoundError:
        return "llmlens (development)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        code: int = args._run(args)
        return code
    except CliError as exc:
        print(f"llmlens {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
