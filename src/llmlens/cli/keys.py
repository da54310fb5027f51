"""`llmlens keys create|list|revoke`: API keys are shown once and stored as SHA-256 hashes.

`--role server-admin` makes a key that is also the server's admin (budget defaults, server-wide alert
rules, all of /metrics). Only this command makes one: it needs the data folder (or, on a shared ClickHouse
store, its credentials), not an API call.
`--langfuse` prints the key as a Langfuse pair (`LANGFUSE_PUBLIC_KEY=pk-lf-...`,
`LANGFUSE_SECRET_KEY=sk-lf-...`), for apps traced with the Langfuse SDK.
"""

from __future__ import annotations

import argparse
import datetime as dt

from ._auth_common import add_data_options, open_auth
from ._common import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("--project", required=True)
    create.add_argument(
        "--role",
        choices=("ingest", "read", "admin", "server-admin"),
        default="ingest",
        help="server-admin: the project's admin, and may change settings that apply to every project",
    )
    create.add_argument("--name", help="a label, e.g. the app that uses the key")
    create.add_argument("--create-project", action="store_true", help="create the project if it does not exist")
    create.add_argument(
        "--langfuse",
        action="store_true",
        help="print a Langfuse key pair (LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY) for the Langfuse SDK",
    )
    add_data_options(create)
    listing = sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--project")
    add_data_options(listing)
    revoke = sub.add_parser("revoke", help="revoke a key by id (stops working within seconds)")
    revoke.add_argument("key_id")
    add_data_options(revoke)


def run(args: argparse.Namespace) -> int:
    from llmlens.auth import SERVER_ADMIN_ROLE, AuthError, StateUnavailable

    auth = open_auth(args)
    try:
        if args.action == "create":
            if args.create_project:
                auth.ensure_project(args.project)
            if args.langfuse:
                if args.role == SERVER_ADMIN_ROLE:
                    raise CliError("--langfuse makes an ingest, read or admin key, not a server-admin one")
                key, public, secret = auth.create_langfuse_key(args.project, args.role, name=args.name)
                print(f"LANGFUSE_PUBLIC_KEY={public}")
                print(f"LANGFUSE_SECRET_KEY={secret}")
                print(
                    f"# {key.id}: role {key.role} in project {key.project}. Shown once: store it now. "
                    "Point LANGFUSE_HOST (or LANGFUSE_BASE_URL) at this server."
                )
                return 0
            if args.role == SERVER_ADMIN_ROLE:
                key, secret = auth.create_server_admin_key(args.project, name=args.name)
            else:
                key, secret = auth.create_key(args.project, args.role, name=args.name)
            print(secret)
            print(
                f"# {key.id}: role {key.role} in project {key.project}. Shown once: store it now.",
            )
        elif args.action == "revoke":
            if not auth.revoke_key(args.key_id):
                raise CliError(f"no live key {args.key_id!r}")
            print(f"revoked {args.key_id}")
        else:
            for key in auth.keys(args.project):
                created = dt.datetime.fromtimestamp(key.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
                state = "revoked" if key.revoked_at else "live"
                print(f"{key.id}\t{key.project}\t{key.role}\t{key.display}\t{state}\t{created}\t{key.name or ''}")
    except (AuthError, StateUnavailable) as exc:
        raise CliError(str(exc)) from None
    finally:
        auth.close()
    return 0
