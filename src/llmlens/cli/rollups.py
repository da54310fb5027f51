"""`llmlens rollups rebuild [--since]`: recompute the dashboards' hourly/daily rollups from raw spans."""

from __future__ import annotations

import argparse
import time

from ._common import CliError, add_target_options, resolve_target
from ._times import SINCE_HELP, time_option_us


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["rebuild"], help="rebuild: recompute the rollups from the stored spans")
    parser.add_argument("--since", help=f"only the days from this time on: {SINCE_HELP}")
    add_target_options(parser)


def run(args: argparse.Namespace) -> int:
    since_us = time_option_us(args.since, "--since") if args.since else None
    target = resolve_target(args)
    if target.url:
        raise CliError("rollups rebuild opens the store itself: stop the server, then run it with --data DIR")
    store = target.open_store(read_only=False)
    try:
        rebuild = getattr(store, "rebuild_rollups", None)
        if rebuild is None:
            raise CliError(f"{store.url} keeps its own rollups (nothing to rebuild)")
        started = time.perf_counter()
        rebuild(since_us)
        print(f"rollups rebuilt in {time.perf_counter() - started:.1f} s")
    finally:
        store.close()
    return 0
