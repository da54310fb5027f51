"""Projects, API keys, users, memberships and login sessions, in `<data_dir>/auth.sqlite3`.

Why SQLite and not the analytics store: `llmlens keys create` must work while the server runs, and
DuckDB holds an exclusive lock on its file; SQLite in WAL mode lets the CLI and the server share
the file safely. Auth state is a few small rows read by primary key and updated one at a time,
which ClickHouse is poor at. Lookups are cached for `cache_ttl_s`, so a revoked key stops working
within that time.
"""

from __future__ import annotations

import base64
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from llmlens._private_files import create_private_file, make_private_dir, restrict_to_owner

from ._roles import KEY_ROLES, SERVER_ADMIN_ROLE, USER_ROLES
from ._secrets import (
    _SCRYPT_N,
    _SCRYPT_P,
    _SCRYPT_R,
    hash_password,
    hash_token,
    new_api_key,
    new_session_token,
    verify_password,
)

AUTH_FILE = "auth.sqlite3"
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")

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


class AuthError(ValueError):
    """A bad name, role, unknown project or user; the message says which."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    project: str
    role: str
    display: str  # the first characters, to recognise a key in listings
    name: str | None
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    csrf_token: str
    expires_at: float


class AuthDB:
    def __init__(self, path: Path, *, cache_ttl_s: float = 5.0) -> None:
        self.path = Path(path)
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
        self._cache_ttl_s = cache_ttl_s
        self._key_cache: dict[str, tuple[float, ApiKey | None]] = {}

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> AuthDB:
        return cls(Path(data_dir) / AUTH_FILE)

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

    def create_project(self, name: str, *, retention_days: int | None = None) -> None:
        if not _PROJECT_NAME.match(name):
            raise AuthError(f"project names are 1-64 letters, digits, '.', '_' or '-', got {name!r}")
        if retention_days is not None and retention_days < 0:
            raise AuthError("retention days must be 0 (keep everything) or more")
        try:
            self._exec("INSERT INTO projects VALUES (?, ?, ?)", (name, time.time(), retention_days))
        except sqlite3.IntegrityError:
            raise AuthError(f"project {name!r} already exists") from None

    def ensure_project(self, name: str) -> None:
        if not self.project_exists(name):
            self.create_project(name)

    def project_exists(self, name: str) -> bool:
        return bool(self._rows("SELECT 1 FROM projects WHERE name = ?", (name,)))

    def projects(self) -> list[tuple[str, int | None]]:
        """(name, retention_days override or None), by name."""
        rows = self._rows("SELECT name, retention_days FROM projects ORDER BY name")
        return [(str(n), None if d is None else int(str(d))) for n, d in rows]

    def set_retention(self, project: str, days: int | None) -> None:
        self._require_project(project)
        if days is not None and days < 0:
            raise AuthError("retention days must be 0 (keep everything) or more")
        self._exec("UPDATE projects SET retention_days = ? WHERE name = ?", (days, project))

    def _require_project(self, project: str) -> None:
        if not self.project_exists(project):
            raise AuthError(f"no project {project!r}; create it with `llmlens projects create {project}`")

    # -- API keys -------------------------------------------------------------------------------

    def create_key(self, project: str, role: str = "ingest", *, name: str | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not stored and cannot be shown again."""
        if role not in KEY_ROLES:
            raise AuthError(f"key roles are {', '.join(KEY_ROLES)}, got {role!r}")
        return self._insert_key(project, role, name)

    def create_server_admin_key(self, project: str, *, name: str | None = None) -> tuple[ApiKey, str]:
        """A key that also manages server-wide settings. Only the CLI calls this: it needs the data folder,
        so nobody can mint one through the API, whatever their role in a project."""
        return self._insert_key(project, SERVER_ADMIN_ROLE, name)

    def _insert_key(self, project: str, role: str, name: str | None) -> tuple[ApiKey, str]:
        self._require_project(project)
        secret = new_api_key()
        key = ApiKey(
            id="key_" + secrets.token_hex(6),
            project=project,
            role=role,
            display=secret[:10] + "…",
            name=name,
            created_at=time.time(),
        )
        self._exec(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (key.id, project, role, hash_token(secret), key.display, name, key.created_at),
        )
        return key, secret

    def keys(self, project: str | None = None) -> list[ApiKey]:
        sql = "SELECT id, project, role, display, name, created_at, revoked_at FROM api_keys"
        rows = (
            self._rows(sql + " WHERE project = ? ORDER BY created_at", (project,))
            if project
            else self._rows(sql + " ORDER BY project, created_at")
        )
        return [_key(r) for r in rows]

    def revoke_key(self, key_id: str, *, project: str | None = None) -> bool:
        """Revoke a key; `project` confines it to that project's keys, server-admin keys excepted
        (a project admin must not cut off the server's admin, only the CLI may)."""
        where = "id = ? AND revoked_at IS NULL"
        params: tuple[object, ...] = (time.time(), key_id)
        if project:
            where += " AND project = ? AND role != ?"
            params = (*params, project, SERVER_ADMIN_ROLE)
        changed = self._exec(f"UPDATE api_keys SET revoked_at = ? WHERE {where}", params) > 0
        self._key_cache.clear()
        return changed

    def key_for_secret(self, secret: str) -> ApiKey | None:
        """The live key with this secret, or None (cached briefly: this runs on every request)."""
        digest = hash_token(secret)
        now = time.monotonic()
        cached = self._key_cache.get(digest)
        if cached is not None and now - cached[0] < self._cache_ttl_s:
            return cached[1]
        rows = self._rows(
            "SELECT id, project, role, display, name, created_at, revoked_at FROM api_keys "
            "WHERE key_hash = ? AND revoked_at IS NULL",
            (digest,),
        )
        key = _key(rows[0]) if rows else None
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[digest] = (now, key)
        return key

    def has_credentials(self) -> bool:
        """Whether anyone can log in or call the API at all (to warn at start-up)."""
        return bool(
            self._rows("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1")
            or self._rows("SELECT 1 FROM users LIMIT 1")
        )

    # -- users ----------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, *, server_admin: bool = False) -> None:
        if not _USERNAME.match(username):
            raise AuthError(f"user names are letters, digits and . _ @ + -, got {username!r}")
        if len(password) < 8:
            raise AuthError("passwords must be at least 8 characters")
        try:
            self._exec(
                "INSERT INTO users (username, password_hash, created_at, server_admin) VALUES (?, ?, ?, ?)",
                (username, hash_password(password), time.time(), int(server_admin)),
            )
        except sqlite3.IntegrityError:
            raise AuthError(f"user {username!r} already exists") from None

    def set_server_admin(self, username: str, server_admin: bool) -> None:
        """Let a user change server-wide settings (budget defaults, server-wide alert rules, all of /metrics)."""
        if not self._exec("UPDATE users SET server_admin = ? WHERE username = ?", (int(server_admin), username)):
            raise AuthError(f"no user {username!r}; create it with `llmlens users create {username}`")

    def is_server_admin(self, username: str) -> bool:
        return bool(self._rows("SELECT 1 FROM users WHERE username = ? AND server_admin = 1", (username,)))

    def server_admins(self) -> list[str]:
        return [str(r[0]) for r in self._rows("SELECT username FROM users WHERE server_admin = 1 ORDER BY username")]

    def set_password(self, username: str, password: str) -> None:
        if len(password) < 8:
            raise AuthError("passwords must be at least 8 characters")
        if not self._exec("UPDATE users SET password_hash = ? WHERE username = ?", (hash_password(password), username)):
            raise AuthError(f"no user {username!r}")
        self._exec("DELETE FROM sessions WHERE username = ?", (username,))

    def grant(self, username: str, project: str, role: str) -> None:
        if role not in USER_ROLES:
            raise AuthError(f"user roles are {', '.join(USER_ROLES)}, got {role!r}")
        self._require_project(project)
        if not self._rows("SELECT 1 FROM users WHERE username = ?", (username,)):
            raise AuthError(f"no user {username!r}; create it with `llmlens users create {username}`")
        self._exec("INSERT OR REPLACE INTO memberships VALUES (?, ?, ?)", (username, project, role))

    def memberships(self, username: str) -> dict[str, str]:
        rows = self._rows("SELECT project, role FROM memberships WHERE username = ? ORDER BY project", (username,))
        return {str(p): str(r) for p, r in rows}

    def users(self) -> list[tuple[str, dict[str, str]]]:
        names = [str(r[0]) for r in self._rows("SELECT username FROM users ORDER BY username")]
        return [(n, self.memberships(n)) for n in names]

    def check_password(self, username: str, password: str) -> bool:
        rows = self._rows("SELECT password_hash FROM users WHERE username = ?", (username,))
        if not rows:
            verify_password(password, _DUMMY_HASH)  # same cost whether or not the user exists
            return False
        return verify_password(password, str(rows[0][0]))

    # -- sessions -------------------------------------------------------------------------------

    def create_session(self, username: str, ttl_s: float) -> tuple[str, Session]:
        token = new_session_token()
        session = Session(username=username, csrf_token=secrets.token_urlsafe(24), expires_at=time.time() + ttl_s)
        self._exec("DELETE FROM sessions WHERE expires_at < ?", (time.time(),))
        self._exec(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (hash_token(token), username, session.csrf_token, time.time(), session.expires_at),
        )
        return token, session

    def session(self, token: str) -> Session | None:
        rows = self._rows(
            "SELECT username, csrf_token, expires_at FROM sessions WHERE token_hash = ? AND expires_at > ?",
            (hash_token(token), time.time()),
        )
        if not rows:
            return None
        username, csrf, expires = rows[0]
        return Session(str(username), str(csrf), float(str(expires)))

    def end_session(self, token: str) -> None:
        self._exec("DELETE FROM sessions WHERE token_hash = ?", (hash_token(token),))


# Checked when the user does not exist, so a miss costs one scrypt like a hit. No password hashes to it
# (zero salt, zero digest), and building it runs no scrypt at import (that cost ~50 ms of start-up).
_ZERO_SALT = base64.b64encode(bytes(16)).decode()
_DUMMY_HASH = f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_ZERO_SALT}${base64.b64encode(bytes(32)).decode()}"


def _add_server_admin_column(con: sqlite3.Connection) -> None:
    """Auth files written before server admins existed lack the column; nobody in them is one."""
    columns = {str(row[1]) for row in con.execute("PRAGMA table_info(users)").fetchall()}
    if "server_admin" not in columns:
        con.execute("ALTER TABLE users ADD COLUMN server_admin INTEGER NOT NULL DEFAULT 0")


def _key(row: tuple[object, ...]) -> ApiKey:
    key_id, project, role, display, name, created, revoked = row
    return ApiKey(
        id=str(key_id),
        project=str(project),
        role=str(role),
        display=str(display),
        name=None if name is None else str(name),
        created_at=float(str(created)),
        revoked_at=None if revoked is None else float(str(revoked)),
    )
