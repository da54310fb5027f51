"""Auth rows in `<data_dir>/auth.sqlite3`: the backend of a single server.

Why SQLite and not the analytics store: `llmlens keys create` must work while the server runs, and
DuckDB holds an exclusive lock on its file; SQLite in WAL mode lets the CLI and the server share
the file safely. Auth state is a few small rows read by primary key and updated one at a time.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from llmlens._private_files import create_private_file, make_private_dir, restrict_to_owner

from ._storage import ApiKey, AuthSnapshot, KeyRow, MembershipRow, ProjectRow, SessionRow, UserRow

AUTH_FILE = "auth.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
  name TEXT PRIMARY KEY, created_at REAL NOT NULL, retention_days INTEGER
);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, project TEXT NOT NULL, role TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
  display TEXT NOT NULL, name TEXT, created_at REAL NOT NULL, revoked_at REAL
);
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at REAL NOT NULL,
  server_admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS memberships (
  username TEXT NOT NULL, project TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (username, project)
);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf_token TEXT NOT NULL,
  created_at REAL NOT NULL, expires_at REAL NOT NULL
);
"""
_KEY_COLUMNS = "id, project, role, display, name, created_at, revoked_at"


class SqliteAuthStorage:
    # Changes made in this process clear the key cache at once; the CLI's take at most this long.
    key_cache_ttl_s = 5.0
    # Sessions are read from the file on every request: a logout or a password change applies at once.
    session_cache_ttl_s = 0.0

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        make_private_dir(self.path.parent)
        # Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database's mode.
        create_private_file(self.path)
        for companion in ("-wal", "-shm"):
            restrict_to_owner(f"{self.path}{companion}")
        self._con = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._lock = threading.Lock()
        with self._lock:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.executescript(_SCHEMA)
            _add_server_admin_column(self._con)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._con.execute(sql, params).fetchall())

    def _exec(self, sql: str, params: tuple[object, ...] = ()) -> int:
        with self._lock:
            return self._con.execute(sql, params).rowcount

    # -- projects -------------------------------------------------------------------------------

    def insert_project(self, row: ProjectRow) -> bool:
        try:
            self._exec("INSERT INTO projects VALUES (?, ?, ?)", (row.name, row.created_at, row.retention_days))
        except sqlite3.IntegrityError:
            return False
        return True

    def project(self, name: str) -> ProjectRow | None:
        rows = self._rows("SELECT name, created_at, retention_days FROM projects WHERE name = ?", (name,))
        return _project(rows[0]) if rows else None

    def projects(self) -> list[ProjectRow]:
        return [_project(r) for r in self._rows("SELECT name, created_at, retention_days FROM projects ORDER BY name")]

    def set_retention(self, name: str, days: int | None) -> bool:
        return self._exec("UPDATE projects SET retention_days = ? WHERE name = ?", (days, name)) > 0

    # -- keys -----------------------------------------------------------------------------------

    def insert_key(self, row: KeyRow) -> None:
        k = row.key
        self._exec(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (k.id, k.project, k.role, row.key_hash, k.display, k.name, k.created_at, k.revoked_at),
        )

    def keys(self, project: str | None) -> list[ApiKey]:
        sql = f"SELECT {_KEY_COLUMNS} FROM api_keys"
        rows = (
            self._rows(sql + " WHERE project = ? ORDER BY created_at", (project,))
            if project
            else self._rows(sql + " ORDER BY project, created_at")
        )
        return [_key(r) for r in rows]

    def key_by_id(self, key_id: str) -> ApiKey | None:
        rows = self._rows(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
        return _key(rows[0]) if rows else None

    def live_key_by_hash(self, key_hash: str) -> ApiKey | None:
        rows = self._rows(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,))
        return _key(rows[0]) if rows else None

    def mark_key_revoked(self, key_id: str, at: float) -> bool:
        return self._exec("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, key_id)) > 0

    def has_live_key(self) -> bool:
        return bool(self._rows("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1"))

    # -- users and memberships ------------------------------------------------------------------

    def insert_user(self, row: UserRow) -> bool:
        try:
            self._exec(
                "INSERT INTO users (username, password_hash, created_at, server_admin) VALUES (?, ?, ?, ?)",
                (row.username, row.password_hash, row.created_at, int(row.server_admin)),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def user(self, username: str) -> UserRow | None:
        rows = self._rows(
            "SELECT username, password_hash, created_at, server_admin FROM users WHERE username = ?", (username,)
        )
        return _user(rows[0]) if rows else None

    def users(self) -> list[UserRow]:
        rows = self._rows("SELECT username, password_hash, created_at, server_admin FROM users ORDER BY username")
        return [_user(r) for r in rows]

    def set_password_hash(self, username: str, password_hash: str) -> bool:
        return self._exec("UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username)) > 0

    def set_server_admin(self, username: str, server_admin: bool) -> bool:
        return self._exec("UPDATE users SET server_admin = ? WHERE username = ?", (int(server_admin), username)) > 0

    def put_membership(self, row: MembershipRow) -> None:
        self._exec("INSERT OR REPLACE INTO memberships VALUES (?, ?, ?)", (row.username, row.project, row.role))

    def memberships(self, username: str) -> dict[str, str]:
        rows = self._rows("SELECT project, role FROM memberships WHERE username = ? ORDER BY project", (username,))
        return {str(p): str(r) for p, r in rows}

    # -- sessions -------------------------------------------------------------------------------

    def insert_session(self, row: SessionRow) -> None:
        self._exec(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (row.token_hash, row.username, row.csrf_token, row.created_at, row.expires_at),
        )

    def session(self, token_hash: str, now: float) -> SessionRow | None:
        rows = self._rows(
            "SELECT token_hash, username, csrf_token, created_at, expires_at FROM sessions "
            "WHERE token_hash = ? AND expires_at > ?",
            (token_hash, now),
        )
        return _session(rows[0]) if rows else None

    def delete_session(self, token_hash: str) -> None:
        self._exec("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def delete_sessions_of(self, username: str) -> None:
        self._exec("DELETE FROM sessions WHERE username = ?", (username,))

    def delete_expired_sessions(self, now: float) -> None:
        self._exec("DELETE FROM sessions WHERE expires_at < ?", (now,))

    # -- everything, for an import --------------------------------------------------------------

    def snapshot(self) -> AuthSnapshot:
        keys = [
            KeyRow(key=_key(r[:7]), key_hash=str(r[7]))
            for r in self._rows(f"SELECT {_KEY_COLUMNS}, key_hash FROM api_keys ORDER BY created_at")
        ]
        memberships = [
            MembershipRow(str(u), str(p), str(r))
            for u, p, r in self._rows("SELECT username, project, role FROM memberships ORDER BY username, project")
        ]
        sessions = [
            _session(r)
            for r in self._rows("SELECT token_hash, username, csrf_token, created_at, expires_at FROM sessions")
        ]
        return AuthSnapshot(
            projects=self.projects(), keys=keys, users=self.users(), memberships=memberships, sessions=sessions
        )


def _add_server_admin_column(con: sqlite3.Connection) -> None:
    """Auth files written before server admins existed lack the column; nobody in them is one."""
    columns = {str(row[1]) for row in con.execute("PRAGMA table_info(users)").fetchall()}
    if "server_admin" not in columns:
        con.execute("ALTER TABLE users ADD COLUMN server_admin INTEGER NOT NULL DEFAULT 0")


def _float(value: object) -> float:
    return float(str(value))


def _project(row: tuple[object, ...]) -> ProjectRow:
    name, created, days = row
    return ProjectRow(str(name), _float(created), None if days is None else int(str(days)))


def _key(row: tuple[object, ...]) -> ApiKey:
    key_id, project, role, display, name, created, revoked = row
    return ApiKey(
        id=str(key_id),
        project=str(project),
        role=str(role),
        display=str(display),
        name=None if name is None else str(name),
        created_at=_float(created),
        revoked_at=None if revoked is None else _float(revoked),
    )


def _user(row: tuple[object, ...]) -> UserRow:
    username, password_hash, created, server_admin = row
    return UserRow(str(username), str(password_hash), _float(created), bool(int(str(server_admin))))


def _session(row: tuple[object, ...]) -> SessionRow:
    token_hash, username, csrf, created, expires = row
    return SessionRow(str(token_hash), str(username), str(csrf), _float(created), _float(expires))
