"""State that is not spans: where projects, keys, users, budgets and other settings live, and moving it.

A single server keeps it in its data folder; servers that share a ClickHouse store keep it in that
ClickHouse (`open_state`). `SharedSettings` is the small key-value interface for settings changed at
run time, per project: `(project, kind, name) -> JSON value`, versioned.
"""

from ._backend import StateBackend, open_state, shared_state_url
from ._import import IMPORT_MARKER, ImportReport, SettingsSource, copy_auth, import_data_dir
from ._shared_settings import SERVER_WIDE, SettingsSnapshot, SharedSetting, SharedSettings
from ._sqlite_settings import SHARED_SETTINGS_FILE, SqliteSharedSettings

__all__ = [
    "IMPORT_MARKER",
    "SERVER_WIDE",
    "SHARED_SETTINGS_FILE",
    "ImportReport",
    "SettingsSnapshot",
    "SettingsSource",
    "SharedSetting",
    "SharedSettings",
    "SqliteSharedSettings",
    "StateBackend",
    "copy_auth",
    "import_data_dir",
    "open_state",
    "shared_state_url",
]
