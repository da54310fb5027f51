"""`llmlens users create|grant|passwd|server-admin|list`: UI accounts with a role (viewer, member, admin) per
project; a server admin may also change what applies to every project (budget defaults, server-wide alert
rules) and sees all of /metrics."""

from __future__ import annotations

import argparse
import getpass
import sys

from ._auth_common import add_data_options, open_auth
from ._common import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a user (password prompted, or from stdin)")
    create.add_argument("username")
    create.add_argument("--project", help="grant a role in this project too")
    create.add_argument("--role", choices=("viewer", "member", "admin"), default="viewer")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.add_argument(
        "--server-admin", action="store_true", help="may also change settings that apply to every project"
    )
    add_data_options(create)
    grant = sub.add_parser("grant", help="give a user a role in a project")
    grant.add_argument("username")
    grant.add_argument("--project", required=True)
    grant.add_argument("--role", choices=("viewer", "member", "admin"), required=True)
    add_data_options(grant)
    passwd = sub.add_parser("passwd", help="set a user's password (ends their sessions)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    add_data_options(passwd)
    server_admin = sub.add_parser("server-admin", help="make a user a server admin (or no longer, with --revoke)")
    server_admin.add_argument("username")
    server_admin.add_argument("--revoke", action="store_true", help="take the server admin right away")
    add_data_options(server_admin)
    listing = sub.add_parser("list", help="list users and their roles")
    add_data_options(listing)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise CliError("the passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    from llmlens.auth import AuthError, StateUnavailable

    auth = open_auth(args)
    try:
        if args.action == "create":
            auth.create_user(args.username, _password(args.password_stdin), server_admin=args.server_admin)
            if args.project:
                auth.ensure_project(args.project)
                auth.grant(args.username, args.project, args.role)
            print(f"created user {args.username}")
        elif args.action == "grant":
            auth.grant(args.username, args.project, args.role)
            print(f"{args.username}: {args.role} in {args.project}")
        elif args.action == "passwd":
            auth.set_password(args.username, _password(args.password_stdin))
            print(f"password of {args.username} changed")
        elif args.action == "server-admin":
            auth.set_server_admin(args.username, not args.revoke)
            print(f"{args.username}: {'no longer a' if args.revoke else 'now a'} server admin")
        else:
            admins = set(auth.server_admins())
            for name, roles in auth.users():
                flag = "\tserver-admin" if name in admins else ""
                print(f"{name}\t" + ", ".join(f"{p}={r}" for p, r in roles.items()) + flag)
    except (AuthError, StateUnavailable) as exc:
        raise CliError(str(exc)) from None
    finally:
        auth.close()
    return 0
