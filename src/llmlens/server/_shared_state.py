"""The server's state backend, opened once: its data folder, or the ClickHouse its store is on.

On a shared backend, the first start imports what the data folder holds (auth.sqlite3, budgets.json,
cached_features.json) into it, once (`llmlens.state.import_data_dir`).
"""

from __future__ import annotations

from llmlens.proxy import settings_files_in
from llmlens.state import StateBackend, import_data_dir, open_state

from ._state import AppState

SERVICE = "state"


def state_backend(state: AppState) -> StateBackend:
    """Opened on first use (by `build_state`); ValueError names an unreadable file, StateUnavailable the URL."""
    found = state.services.get(SERVICE)
    if isinstance(found, StateBackend):
        return found
    backend = open_state(state.settings)
    if backend.shared:
        import_data_dir(backend, settings_files_in(backend.data_dir))
    opened: StateBackend = state.services.setdefault(SERVICE, backend)
    return opened
