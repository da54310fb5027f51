"""What `llmlens projects|keys|users` share: opening the auth database the server uses.

That is `<data_dir>/auth.sqlite3`, or, when the store is ClickHouse (`--store clickhouse://...`, or a
`--config` that says so), the state shared by every server on that ClickHouse.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import CliError, add_config_option, load_cli_settings

if TYPE_CHECKING:
    from llmlens.auth import AuthDB
    from llmlens.state import StateBackend


def add_data_options(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--data", type=Path, help="the server's data directory (default ./.llmlens)")
    parser.add_argument(
        "--store",
        help="the servers' store URL; with clickhouse://... the projects, keys and users shared by every server on it",
    )


def open_auth(args: argparse.Namespace) -> AuthDB:
    """The auth database works while servers run (SQLite in WAL mode, or ClickHouse); changes apply within seconds."""
    from llmlens.state import open_state

    # The ClickHouse driver logs a traceback for a refused connection; the command says it in one line.
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)
    settings = load_cli_settings(args)
    try:
        backend = open_state(settings)
        auth = backend.auth()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if backend.shared:
        _note_state_not_imported(backend)
    return auth


def _note_state_not_imported(backend: StateBackend) -> None:
    """A data folder with keys or users the shared backend has not imported yet: say how they get there."""
    from llmlens.auth import AUTH_FILE
    from llmlens.state import IMPORT_MARKER

    data_dir = backend.data_dir
    if not (data_dir / AUTH_FILE).is_file():
        return
    marker = data_dir / IMPORT_MARKER
    if marker.is_file() and backend.location in marker.read_text(errors="replace"):
        return
    print(
        f"llmlens: note: {data_dir} holds keys and users that {backend.location} does not have yet; "
        "`llmlens serve` with this store and data folder imports them on its first start",
        file=sys.stderr,
    )
