"""`llmlens reprice [--since]`: recompute stored costs with the current prices."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import CliError, add_target_options, load_cli_settings, resolve_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", help="only calls at or after this time (ISO 8601 or epoch seconds)")
    parser.add_argument("--price-file", type=Path, help="custom prices (TOML or YAML)")
    add_target_options(parser)


def run(args: argparse.Namespace) -> int:
    from llmlens.model import parse_timestamp_us

    since_us = None
    if args.since:
        try:
            since_us = parse_timestamp_us(args.since)
        except ValueError as exc:
            raise CliError(f"--since: {exc}") from None
    target = resolve_target(args)
    if target.url:
        payload: dict[str, object] = {"since": args.since}
        doc = target.post("/api/v1/admin/reprice", payload, timeout=3600)
        print(f"repriced {doc['updated']} calls with prices {doc['price_version']}")
        return 0
    from llmlens.ingest.reprice import reprice
    from llmlens.pricing import PriceBook, PriceFileError

    settings = load_cli_settings(args, price_file=args.price_file)
    try:
        prices = PriceBook.load(settings.price_file)
    except PriceFileError as exc:
        raise CliError(str(exc)) from None
    store = target.open_store(read_only=False)
    try:
        updated = reprice(store, prices, since_us=since_us)
    finally:
        store.close()
    print(f"repriced {updated} calls with prices {prices.version}")
    return 0
