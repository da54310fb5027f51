"""`llmlens sql "QUERY"`: read-only SQL over the article's views, from a server or a store."""

from __future__ import annotations

import argparse
import sys

from ._common import CliError, add_target_options, resolve_target
from ._output import print_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "query",
        help="one SELECT over llm_logs, tool_logs, retrieval_logs, feedback_events, spans, scores "
        "('-' reads it from standard input)",
    )
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    add_target_options(parser)


def run(args: argparse.Namespace) -> int:
    query = sys.stdin.read() if args.query == "-" else args.query
    if not query.strip():
        raise CliError("the query is empty")
    result = resolve_target(args).sql(query)
    print_result(result.columns, result.rows, args.format)
    if result.truncated:
        print("(result truncated at the row limit)", file=sys.stderr)
    return 0
