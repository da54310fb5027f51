"""Shared settings of a single server, in `<data_dir>/shared_settings.sqlite3` (WAL: the CLI may write too)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from llmlens._private_files import create_private_file, make_private_dir, restrict_to_owner

from ._shared_settings import SharedSetting, check_key, encode_value, next_version

SHARED_SETTINGS_FILE = "shared_settings.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shared_settings (
  project TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
  version INTEGER NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (project, kind, name)
);
"""
_COLUMNS = "project, kind, name, value, version, updated_at"


class SqliteSharedSettings:
    cache_ttl_s = 1.0

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        make_private_dir(self.path.parent)
        create_private_file(self.path)  # 0600 before SQLite opens it (its -wal and -shm files copy the mode)
        for companion in ("-wal", "-shm"):
            restrict_to_owner(f"{self.path}{companion}")
        self._con = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._lock = threading.Lock()
        with self._lock:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.executescript(_SCHEMA)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> SqliteSharedSettings:
        return cls(Path(data_dir) / SHARED_SETTINGS_FILE)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def get(self, project: str, kind: str, name: str) -> SharedSetting | None:
        with self._lock:
            row = self._con.execute(
                f"SELECT {_COLUMNS} FROM shared_settings WHERE project = ? AND kind = ? AND name = ?",
                (project, kind, name),
            ).fetchone()
        return None if row is None else _setting(row)

    def list(self, kind: str, project: str | None = None) -> list[SharedSetting]:
        sql = f"SELECT {_COLUMNS} FROM shared_settings WHERE kind = ?"
        params: tuple[Any, ...] = (kind,)
        if project is not None:
            sql += " AND project = ?"
            params = (kind, project)
        with self._lock:
            rows = self._con.execute(sql + " ORDER BY project, name", params).fetchall()
        return [_setting(r) for r in rows]

    def put(self, project: str, kind: str, name: str, value: Any) -> SharedSetting:
        check_key(project, kind, name)
        text = encode_value(value)
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                row = self._con.execute(
                    "SELECT version FROM shared_settings WHERE project = ? AND kind = ? AND name = ?",
                    (project, kind, name),
                ).fetchone()
                version = next_version(None if row is None else int(row[0]))
                now = time.time()
                self._con.execute(
                    "INSERT OR REPLACE INTO shared_settings VALUES (?, ?, ?, ?, ?, ?)",
                    (project, kind, name, text, version, now),
                )
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return SharedSetting(project, kind, name, json.loads(text), version, now)

    def delete(self, project: str, kind: str, name: str) -> bool:
        with self._lock:
            cursor = self._con.execute(
                "DELETE FROM shared_settings WHERE project = ? AND kind = ? AND name = ?", (project, kind, name)
            )
        return cursor.rowcount > 0


def _setting(row: tuple[Any, ...]) -> SharedSetting:
    project, kind, name, value, version, updated_at = row
    return SharedSetting(str(project), str(kind), str(name), json.loads(value), int(version), float(updated_at))
