"""Projects, API keys, users, memberships and login sessions: the rules, over a storage backend.

The rows live in `<data_dir>/auth.sqlite3` for a single server (`AuthDB.in_data_dir`), or in the
shared ClickHouse when several servers share one store (`llmlens.state.open_state`). Lookups made
on every request are cached for the backend's TTL, so a key revoked, or a session ended, through
another process stops working within that time.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from ._roles import KEY_ROLES, SERVER_ADMIN_ROLE, USER_ROLES
from ._secrets import (
    _SCRYPT_N,
    _SCRYPT_P,
    _SCRYPT_R,
    KEY_PREFIX,
    LANGFUSE_SECRET_PREFIX,
    hash_password,
    hash_token,
    langfuse_public_key,
    new_api_key,
    new_session_token,
    verify_password,
)
from ._sqlite import AUTH_FILE, SqliteAuthStorage
from ._storage import ApiKey, AuthStorage, KeyRow, MembershipRow, ProjectRow, Session, SessionRow, UserRow

_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_CACHE_LIMIT = 10_000

K = TypeVar("K")
V = TypeVar("V")


class AuthError(ValueError):
    """A bad name, role, unknown project or user; the message says which."""


class _TtlCache(Generic[K, V]):
    """Answers reused for `ttl_s` (0: never); cleared whole when it grows past a bound."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        if self.ttl_s <= 0:
            return load()
        now = time.monotonic()
        with self._lock:
            found = self._entries.get(key)
        if found is not None and now - found[0] < self.ttl_s:
            return found[1]
        value = load()
        with self._lock:
            if len(self._entries) > _CACHE_LIMIT:
                self._entries.clear()
            self._entries[key] = (now, value)
        return value

    def drop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class AuthDB:
    def __init__(self, storage: AuthStorage) -> None:
        self.storage = storage
        self._key_cache: _TtlCache[str, ApiKey | None] = _TtlCache(storage.key_cache_ttl_s)
        self._session_cache: _TtlCache[str, Session | None] = _TtlCache(storage.session_cache_ttl_s)
        self._membership_cache: _TtlCache[str, dict[str, str]] = _TtlCache(storage.session_cache_ttl_s)
        self._admin_cache: _TtlCache[str, bool] = _TtlCache(storage.session_cache_ttl_s)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> AuthDB:
        return cls(SqliteAuthStorage(Path(data_dir) / AUTH_FILE))

    @property
    def location(self) -> str:
        return self.storage.location

    def close(self) -> None:
        self.storage.close()

    # -- projects -------------------------------------------------------------------------------

    def create_project(self, name: str, *, retention_days: int | None = None) -> None:
        if not _PROJECT_NAME.match(name):
            raise AuthError(f"project names are 1-64 letters, digits, '.', '_' or '-', got {name!r}")
        if retention_days is not None and retention_days < 0:
            raise AuthError("retention days must be 0 (keep everything) or more")
        if not self.storage.insert_project(ProjectRow(name, time.time(), retention_days)):
            raise AuthError(f"project {name!r} already exists")

    def ensure_project(self, name: str) -> None:
        if not self.project_exists(name):
            self.create_project(name)

    def project_exists(self, name: str) -> bool:
        return self.storage.project(name) is not None

    def projects(self) -> list[tuple[str, int | None]]:
        """(name, retention_days override or None), by name."""
        return [(p.name, p.retention_days) for p in self.storage.projects()]

    def set_retention(self, project: str, days: int | None) -> None:
        self._require_project(project)
        if days is not None and days < 0:
            raise AuthError("retention days must be 0 (keep everything) or more")
        self.storage.set_retention(project, days)

    def _require_project(self, project: str) -> None:
        if not self.project_exists(project):
            raise AuthError(f"no project {project!r}; create it with `llmlens projects create {project}`")

    # -- API keys -------------------------------------------------------------------------------

    def create_key(self, project: str, role: str = "ingest", *, name: str | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not stored and cannot be shown again."""
        if role not in KEY_ROLES:
            raise AuthError(f"key roles are {', '.join(KEY_ROLES)}, got {role!r}")
        return self._insert_key(project, role, name)

    def create_langfuse_key(
        self, project: str, role: str = "ingest", *, name: str | None = None
    ) -> tuple[ApiKey, str, str]:
        """A key usable as a Langfuse pair: (key, public key, secret key). The secret is shown once."""
        if role not in KEY_ROLES:
            raise AuthError(f"key roles are {', '.join(KEY_ROLES)}, got {role!r}")
        key, secret = self._insert_key(project, role, name, prefix=LANGFUSE_SECRET_PREFIX)
        return key, langfuse_public_key(key.id), secret

    def create_server_admin_key(self, project: str, *, name: str | None = None) -> tuple[ApiKey, str]:
        """A key that also manages server-wide settings. Only the CLI calls this: it needs the data folder
        (or the shared store's credentials), so nobody can mint one through the API, whatever their role."""
        return self._insert_key(project, SERVER_ADMIN_ROLE, name)

    def _insert_key(self, project: str, role: str, name: str | None, *, prefix: str = KEY_PREFIX) -> tuple[ApiKey, str]:
        self._require_project(project)
        secret = new_api_key(prefix)
        key = ApiKey(
            id="key_" + secrets.token_hex(6),
            project=project,
            role=role,
            display=secret[:10] + "…",
            name=name,
            created_at=time.time(),
        )
        self.storage.insert_key(KeyRow(key=key, key_hash=hash_token(secret)))
        return key, secret

    def keys(self, project: str | None = None) -> list[ApiKey]:
        return self.storage.keys(project or None)

    def revoke_key(self, key_id: str, *, project: str | None = None) -> bool:
        """Revoke a key; `project` confines it to that project's keys, server-admin keys excepted
        (a project admin must not cut off the server's admin, only the CLI may)."""
        key = self.storage.key_by_id(key_id)
        if key is None or key.revoked_at is not None:
            return False
        if project and (key.project != project or key.role == SERVER_ADMIN_ROLE):
            return False
        changed = self.storage.mark_key_revoked(key_id, time.time())
        self._key_cache.clear()
        return changed

    def key_for_secret(self, secret: str) -> ApiKey | None:
        """The live key with this secret, or None (cached briefly: this runs on every request)."""
        digest = hash_token(secret)
        return self._key_cache.get(digest, lambda: self.storage.live_key_by_hash(digest))

    def has_credentials(self) -> bool:
        """Whether anyone can log in or call the API at all (to warn at start-up)."""
        return self.storage.has_live_key() or bool(self.storage.users())

    # -- users ----------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, *, server_admin: bool = False) -> None:
        if not _USERNAME.match(username):
            raise AuthError(f"user names are letters, digits and . _ @ + -, got {username!r}")
        if len(password) < 8:
            raise AuthError("passwords must be at least 8 characters")
        row = UserRow(username, hash_password(password), time.time(), server_admin)
        if not self.storage.insert_user(row):
            raise AuthError(f"user {username!r} already exists")

    def set_server_admin(self, username: str, server_admin: bool) -> None:
        """Let a user change server-wide settings (budget defaults, server-wide alert rules, all of /metrics)."""
        if not self.storage.set_server_admin(username, server_admin):
            raise AuthError(f"no user {username!r}; create it with `llmlens users create {username}`")
        self._admin_cache.drop(username)

    def is_server_admin(self, username: str) -> bool:
        def load() -> bool:
            user = self.storage.user(username)
            return user is not None and user.server_admin

        return self._admin_cache.get(username, load)

    def server_admins(self) -> list[str]:
        return [u.username for u in self.storage.users() if u.server_admin]

    def set_password(self, username: str, password: str) -> None:
        if len(password) < 8:
            raise AuthError("passwords must be at least 8 characters")
        if not self.storage.set_password_hash(username, hash_password(password)):
            raise AuthError(f"no user {username!r}")
        self.storage.delete_sessions_of(username)
        self._session_cache.clear()

    def grant(self, username: str, project: str, role: str) -> None:
        if role not in USER_ROLES:
            raise AuthError(f"user roles are {', '.join(USER_ROLES)}, got {role!r}")
        self._require_project(project)
        if self.storage.user(username) is None:
            raise AuthError(f"no user {username!r}; create it with `llmlens users create {username}`")
        self.storage.put_membership(MembershipRow(username, project, role))
        self._membership_cache.drop(username)

    def memberships(self, username: str) -> dict[str, str]:
        return dict(self._membership_cache.get(username, lambda: self.storage.memberships(username)))

    def users(self) -> list[tuple[str, dict[str, str]]]:
        return [(u.username, self.storage.memberships(u.username)) for u in self.storage.users()]

    def check_password(self, username: str, password: str) -> bool:
        user = self.storage.user(username)
        if user is None:
            verify_password(password, _DUMMY_HASH)  # same cost whether or not the user exists
            return False
        return verify_password(password, user.password_hash)

    # -- sessions -------------------------------------------------------------------------------

    def create_session(self, username: str, ttl_s: float) -> tuple[str, Session]:
        token = new_session_token()
        now = time.time()
        session = Session(username=username, csrf_token=secrets.token_urlsafe(24), expires_at=now + ttl_s)
        self.storage.delete_expired_sessions(now)
        row = SessionRow(hash_token(token), username, session.csrf_token, now, session.expires_at)
        self.storage.insert_session(row)
        return token, session

    def session(self, token: str) -> Session | None:
        digest = hash_token(token)

        def load() -> Session | None:
            row = self.storage.session(digest, time.time())
            return None if row is None else Session(row.username, row.csrf_token, row.expires_at)

        found = self._session_cache.get(digest, load)
        # A cached session still ends on time.
        return found if found is not None and found.expires_at > time.time() else None

    def end_session(self, token: str) -> None:
        digest = hash_token(token)
        self.storage.delete_session(digest)
        self._session_cache.drop(digest)


# Checked when the user does not exist, so a miss costs one scrypt like a hit. No password hashes to it
# (zero salt, zero digest), and building it runs no scrypt at import (that cost ~50 ms of start-up).
_ZERO_SALT = base64.b64encode(bytes(16)).decode()
_DUMMY_HASH = f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_ZERO_SALT}${base64.b64encode(bytes(32)).decode()}"
