"""`llmlens projects create|list|set-retention`."""

from __future__ import annotations

import argparse

from ._auth_common import add_data_options, open_auth
from ._common import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a project")
    create.add_argument("name")
    create.add_argument("--retention-days", type=int, help="delete its data after this many days (0: keep)")
    add_data_options(create)
    listing = sub.add_parser("list", help="list projects")
    add_data_options(listing)
    retention = sub.add_parser("set-retention", help="set a project's retention (omit DAYS for the server default)")
    retention.add_argument("name")
    retention.add_argument("days", type=int, nargs="?")
    add_data_options(retention)


def run(args: argparse.Namespace) -> int:
    from llmlens.auth import AuthError, StateUnavailable

    auth = open_auth(args)
    try:
        if args.action == "create":
            auth.create_project(args.name, retention_days=args.retention_days)
            print(f"created project {args.name}")
        elif args.action == "set-retention":
            auth.set_retention(args.name, args.days)
            shown = "the server default" if args.days is None else f"{args.days} days"
            print(f"project {args.name}: retention {shown}")
        else:
            for name, days in auth.projects():
                print(f"{name}\tretention={'default' if days is None else days}")
    except (AuthError, StateUnavailable) as exc:
        raise CliError(str(exc)) from None
    finally:
        auth.close()
    return 0
