"""What `llmlens projects|keys|users` share: opening the auth database of a data directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import add_config_option, load_cli_settings

if TYPE_CHECKING:
    from llmlens.auth import AuthDB


def add_data_options(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--data", type=Path, help="the server's data directory (default ./.llmlens)")


def open_auth(args: argparse.Namespace) -> AuthDB:
    """The auth database works while the server runs (SQLite in WAL mode); changes apply within seconds."""
    from llmlens.auth import AuthDB

    settings = load_cli_settings(args)
    return AuthDB.in_data_dir(settings.data_dir)
