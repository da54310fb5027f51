"""`llmlens users create|grant|passwd|list`: UI accounts with a role (viewer, member, admin) per project."""

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
    from llmlens.auth import AuthError

    auth = open_auth(args)
    try:
        if args.action == "create":
            auth.create_user(args.username, _password(args.password_stdin))
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
        else:
            for name, roles in auth.users():
                print(f"{name}\t" + ", ".join(f"{p}={r}" for p, r in roles.items()))
    except AuthError as exc:
        raise CliError(str(exc)) from None
    finally:
        auth.close()
    return 0
