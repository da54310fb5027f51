"""`llmlens reprice [--since TIME] [--price-file FILE]`: recompute stored costs with current or given prices.

Against a running server (the usual case: it holds the store) the server reprices the caller's project;
the price file, when given, is read and checked here and its text sent, so the server reads no path a
client names. With `--data` the store is opened here (the server must be stopped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import CliError, Target, add_target_options, load_cli_settings, resolve_target
from ._times import SINCE_HELP, time_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", help=f"only calls at or after this time: {SINCE_HELP}")
    parser.add_argument(
        "--price-file",
        type=Path,
        help="reprice with this TOML or YAML price file instead of the configured one (against a server: "
        "for this reprice only; new calls keep the server's prices)",
    )
    add_target_options(parser)


def _read_price_file(path: Path) -> dict[str, str]:
    """The file's name and text, checked here so a mistake is reported with this machine's path."""
    from llmlens.pricing import PriceBook, PriceFileError

    try:
        PriceBook.load(path)
        content = path.read_text(encoding="utf-8")
    except (PriceFileError, OSError, UnicodeDecodeError) as exc:
        raise CliError(str(exc)) from None
    return {"name": path.name, "content": content}


def _via_server(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {"since": args.since}
    if args.price_file is not None:
        payload["price_file"] = _read_price_file(args.price_file)
    doc: dict[str, Any] = target.post("/api/v1/admin/reprice", payload, timeout=3600)
    return doc


def _via_store(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    from llmlens.ingest.reprice import reprice
    from llmlens.pricing import PriceBook, PriceFileError

    settings = load_cli_settings(args, price_file=args.price_file)
    since = time_option(args.since, "--since") if args.since else None
    try:
        prices = PriceBook.load(settings.price_file)
    except PriceFileError as exc:
        raise CliError(str(exc)) from None
    store = target.open_store(read_only=False)
    try:
        # The data directory's owner may reprice every project; --project narrows it to one.
        result = reprice(store, prices, since=since, project=target.project)
    finally:
        store.close()
    return {
        "project": target.project,
        "repriced": result.repriced,
        "unpriced": result.unpriced,
        "unpriced_models": result.unpriced_models,
        "price_version": result.price_version,
        "prices": "file" if args.price_file is not None else "settings",
    }


def _report(doc: dict[str, Any], *, via_server: bool) -> None:
    where = f" in project {doc['project']}" if doc.get("project") else ""
    print(f"repriced {doc['repriced']} calls{where} with prices {doc['price_version']}")
    if doc.get("unpriced"):
        models = ", ".join(f"{m} ({n})" for m, n in sorted(doc.get("unpriced_models", {}).items()))
        print(
            f"{doc['unpriced']} of them still have no price: {models}; add them to a price file "
            "(see `llmlens reprice --help`)",
            file=sys.stderr,
        )
    if via_server and doc.get("prices") == "sent":
        print(
            "note: new calls are still priced by the server's own price file (its `price_file` setting); "
            "add these prices there and run `llmlens reprice` again so new calls get them too",
            file=sys.stderr,
        )
    elif via_server and doc.get("server_prices_reloaded"):
        print("the server re-read its price file and prices new calls with it from now on", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.since:
        time_option(args.since, "--since")  # a bad time is refused before anything is sent or opened
    target = resolve_target(args)
    if target.url:
        _report(_via_server(target, args), via_server=True)
    else:
        _report(_via_store(target, args), via_server=False)
    return 0
