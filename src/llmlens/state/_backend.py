"""Where a server keeps its state: its data folder, or the ClickHouse it shares with other servers.

One rule, no extra setting: when the store is ClickHouse (`store = "clickhouse://..."`), projects, keys,
users, sessions, budgets, gateway cache switches and other shared settings live in tables of the same
ClickHouse database, so every server on that store sees them. Otherwise they stay in the data folder
(SQLite and JSON files), as a single server needs no other service.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from llmlens.auth import AuthDB
from llmlens.settings import Settings

from ._shared_settings import SharedSettings

if TYPE_CHECKING:
    from ._clickhouse import StateConnection

_SHARED_SCHEMES = ("clickhouse://", "clickhouses://")


def shared_state_url(store_url: str | None) -> str | None:
    """The store URL when it names a ClickHouse (the state goes there too), else None."""
    return store_url if store_url and store_url.startswith(_SHARED_SCHEMES) else None


class StateBackend:
    """Opens what is asked for, once: `auth()` and `shared_settings()` share one connection."""

    def __init__(self, data_dir: Path, shared_url: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.shared_url = shared_url
        self._lock = threading.Lock()
        self._auth: AuthDB | None = None
        self._settings: SharedSettings | None = None
        self._connection: StateConnection | None = None
        if shared_url is None:
            self.location = str(self.data_dir)
            return
        try:
            from ._clickhouse import StateConnection
        except ImportError as exc:
            if (exc.name or "").startswith("llmlens"):
                raise  # a bug of ours, not a missing extra
            raise ValueError(
                f"the shared state on ClickHouse needs its client library ({exc.name} is missing): "
                "install the clickhouse extra (pip install '.[server,clickhouse]' in a clone of llmlens)"
            ) from None
        self._connection = StateConnection(shared_url)
        self.location = self._connection.location

    @property
    def shared(self) -> bool:
        return self.shared_url is not None

    def auth(self) -> AuthDB:
        with self._lock:
            if self._auth is None:
                if self._connection is None:
                    self._auth = AuthDB.in_data_dir(self.data_dir)
                else:
                    from ._clickhouse_auth import ClickHouseAuthStorage

                    self._auth = AuthDB(ClickHouseAuthStorage(self._connection))
            return self._auth

    def shared_settings(self) -> SharedSettings:
        with self._lock:
            if self._settings is None:
                if self._connection is None:
                    from ._sqlite_settings import SqliteSharedSettings

                    self._settings = SqliteSharedSettings.in_data_dir(self.data_dir)
                else:
                    from ._clickhouse_settings import ClickHouseSharedSettings

                    self._settings = ClickHouseSharedSettings(self._connection)
            return self._settings

    def close(self) -> None:
        with self._lock:
            if self._auth is not None:
                self._auth.close()
            if self._settings is not None:
                self._settings.close()
            self._auth = self._settings = None


def open_state(settings: Settings) -> StateBackend:
    """The state backend `settings` select (nothing is connected or created until first used)."""
    return StateBackend(settings.data_dir, shared_state_url(settings.store))
