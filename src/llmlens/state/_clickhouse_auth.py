"""Auth rows in ClickHouse, for several servers sharing one store (see `_clickhouse.py` for the versioning).

ClickHouse has no unique keys: "create unless it exists" is a read, then an insert. Two servers creating
the same project or user within the same few milliseconds both succeed, and the later version wins;
key and session ids are random, so they cannot collide that way.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from llmlens.auth import ApiKey, AuthSnapshot, KeyRow, MembershipRow, ProjectRow, SessionRow, UserRow

from ._clickhouse import (
    KEYS_TABLE,
    MEMBERSHIPS_TABLE,
    PROJECTS_TABLE,
    SESSIONS_TABLE,
    USERS_TABLE,
    StateConnection,
)
from ._shared_settings import next_version

_PROJECT_COLUMNS = "name, created_at, retention_days, version"
_KEY_COLUMNS = "id, project, role, display, name, created_at, revoked_at, key_hash, version"
_USER_COLUMNS = "username, password_hash, created_at, server_admin, version"
_SESSION_COLUMNS = "token_hash, username, csrf_token, created_at, expires_at, deleted, version"
# Expired sessions are deleted with a mutation (ClickHouse rewrites parts for it): at most this often.
_SESSION_PRUNE_EVERY_S = 3600.0


class ClickHouseAuthStorage:
    # Key lookups, sessions and roles are reused this long: revocations, logouts and new roles made on
    # another server apply within it (the promise is 5 s).
    key_cache_ttl_s = 2.0
    session_cache_ttl_s = 2.0

    def __init__(self, connection: StateConnection) -> None:
        self.db = connection
        self.location = connection.location
        self._pruned_at: float | None = None

    def close(self) -> None:
        self.db.close()

    # -- projects -------------------------------------------------------------------------------

    def _project_rows(self, where: str = "", params: dict[str, Any] | None = None) -> list[tuple[ProjectRow, int]]:
        rows = self.db.newest(PROJECTS_TABLE, _PROJECT_COLUMNS, where=where, params=params)
        return [(ProjectRow(r[0], float(r[1]), None if r[2] is None else int(r[2])), int(r[3])) for r in rows]

    def _insert_project(self, row: ProjectRow, version: int) -> None:
        record = {"name": row.name, "created_at": row.created_at, "retention_days": row.retention_days}
        self.db.insert(PROJECTS_TABLE, [{**record, "version": version}])

    def insert_project(self, row: ProjectRow) -> bool:
        if self.project(row.name) is not None:
            return False
        self._insert_project(row, next_version(None))
        return True

    def project(self, name: str) -> ProjectRow | None:
        found = self._project_rows("name = %(name)s", {"name": name})
        return found[0][0] if found else None

    def projects(self) -> list[ProjectRow]:
        return sorted((p for p, _ in self._project_rows()), key=lambda p: p.name)

    def set_retention(self, name: str, days: int | None) -> bool:
        found = self._project_rows("name = %(name)s", {"name": name})
        if not found:
            return False
        row, version = found[0]
        self._insert_project(ProjectRow(row.name, row.created_at, days), next_version(version))
        return True

    # -- keys -----------------------------------------------------------------------------------

    def _key_rows(self, where: str = "", params: dict[str, Any] | None = None) -> list[tuple[KeyRow, int]]:
        rows = self.db.newest(KEYS_TABLE, _KEY_COLUMNS, where=where, params=params)
        found = []
        for r in rows:
            key = ApiKey(
                id=r[0],
                project=r[1],
                role=r[2],
                display=r[3],
                name=r[4],
                created_at=float(r[5]),
                revoked_at=None if r[6] is None else float(r[6]),
            )
            found.append((KeyRow(key=key, key_hash=r[7]), int(r[8])))
        return found

    def _insert_key(self, row: KeyRow, version: int) -> None:
        k = row.key
        record = {
            "key_hash": row.key_hash,
            "id": k.id,
            "project": k.project,
            "role": k.role,
            "display": k.display,
            "name": k.name,
            "created_at": k.created_at,
            "revoked_at": k.revoked_at,
            "version": version,
        }
        self.db.insert(KEYS_TABLE, [record])

    def insert_key(self, row: KeyRow) -> None:
        self._insert_key(row, next_version(None))

    def keys(self, project: str | None) -> list[ApiKey]:
        found = self._key_rows("project = %(project)s", {"project": project}) if project else self._key_rows()
        keys = [row.key for row, _ in found]
        return sorted(keys, key=lambda k: (k.created_at,) if project else (k.project, k.created_at))

    def key_by_id(self, key_id: str) -> ApiKey | None:
        found = self._key_rows("id = %(id)s", {"id": key_id})
        return found[0][0].key if found else None

    def live_key_by_hash(self, key_hash: str) -> ApiKey | None:
        found = self._key_rows("key_hash = %(key_hash)s", {"key_hash": key_hash})
        if not found or found[0][0].key.revoked_at is not None:
            return None
        return found[0][0].key

    def mark_key_revoked(self, key_id: str, at: float) -> bool:
        found = self._key_rows("id = %(id)s", {"id": key_id})
        if not found or found[0][0].key.revoked_at is not None:
            return False
        row, version = found[0]
        revoked = KeyRow(key=replace(row.key, revoked_at=at), key_hash=row.key_hash)
        self._insert_key(revoked, next_version(version))
        return True

    def has_live_key(self) -> bool:
        return any(row.key.revoked_at is None for row, _ in self._key_rows())

    # -- users and memberships ------------------------------------------------------------------

    def _user_rows(self, where: str = "", params: dict[str, Any] | None = None) -> list[tuple[UserRow, int]]:
        rows = self.db.newest(USERS_TABLE, _USER_COLUMNS, where=where, params=params)
        return [(UserRow(r[0], r[1], float(r[2]), bool(r[3])), int(r[4])) for r in rows]

    def _insert_user(self, row: UserRow, version: int) -> None:
        record = {
            "username": row.username,
            "password_hash": row.password_hash,
            "created_at": row.created_at,
            "server_admin": int(row.server_admin),
            "version": version,
        }
        self.db.insert(USERS_TABLE, [record])

    def insert_user(self, row: UserRow) -> bool:
        if self.user(row.username) is not None:
            return False
        self._insert_user(row, next_version(None))
        return True

    def user(self, username: str) -> UserRow | None:
        found = self._user_rows("username = %(username)s", {"username": username})
        return found[0][0] if found else None

    def users(self) -> list[UserRow]:
        return sorted((u for u, _ in self._user_rows()), key=lambda u: u.username)

    def _change_user(self, username: str, **changes: Any) -> bool:
        found = self._user_rows("username = %(username)s", {"username": username})
        if not found:
            return False
        row, version = found[0]
        self._insert_user(replace(row, **changes), next_version(version))
        return True

    def set_password_hash(self, username: str, password_hash: str) -> bool:
        return self._change_user(username, password_hash=password_hash)

    def set_server_admin(self, username: str, server_admin: bool) -> bool:
        return self._change_user(username, server_admin=server_admin)

    def _membership_rows(self, username: str | None = None) -> list[tuple[MembershipRow, int]]:
        where, params = ("username = %(username)s", {"username": username}) if username is not None else ("", {})
        rows = self.db.newest(MEMBERSHIPS_TABLE, "username, project, role, version", where=where, params=params)
        return [(MembershipRow(r[0], r[1], r[2]), int(r[3])) for r in rows]

    def put_membership(self, row: MembershipRow) -> None:
        found = {m.project: version for m, version in self._membership_rows(row.username)}
        record = {"username": row.username, "project": row.project, "role": row.role}
        self.db.insert(MEMBERSHIPS_TABLE, [{**record, "version": next_version(found.get(row.project))}])

    def memberships(self, username: str) -> dict[str, str]:
        return {m.project: m.role for m, _ in sorted(self._membership_rows(username), key=lambda f: f[0].project)}

    # -- sessions -------------------------------------------------------------------------------

    def _session_rows(
        self, where: str, params: dict[str, Any]
    ) -> list[tuple[SessionRow, bool, int]]:  # (row, deleted, version)
        rows = self.db.newest(SESSIONS_TABLE, _SESSION_COLUMNS, where=where, params=params)
        return [(SessionRow(r[0], r[1], r[2], float(r[3]), float(r[4])), bool(r[5]), int(r[6])) for r in rows]

    def _insert_session(self, row: SessionRow, *, deleted: bool, version: int) -> None:
        record = {
            "token_hash": row.token_hash,
            "username": row.username,
            "csrf_token": row.csrf_token,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
            "deleted": int(deleted),
            "version": version,
        }
        self.db.insert(SESSIONS_TABLE, [record])

    def insert_session(self, row: SessionRow) -> None:
        self._insert_session(row, deleted=False, version=next_version(None))

    def session(self, token_hash: str, now: float) -> SessionRow | None:
        found = self._session_rows("token_hash = %(token_hash)s", {"token_hash": token_hash})
        if not found:
            return None
        row, deleted, _ = found[0]
        return None if deleted or row.expires_at <= now else row

    def _end(self, found: list[tuple[SessionRow, bool, int]]) -> None:
        for row, deleted, version in found:
            if not deleted:
                self._insert_session(row, deleted=True, version=next_version(version))

    def delete_session(self, token_hash: str) -> None:
        self._end(self._session_rows("token_hash = %(token_hash)s", {"token_hash": token_hash}))

    def delete_sessions_of(self, username: str) -> None:
        self._end(self._session_rows("username = %(username)s", {"username": username}))

    def delete_expired_sessions(self, now: float) -> None:
        """Every version of a session has the same expiry, so deleting expired rows keeps no stale version."""
        clock = time.monotonic()
        if self._pruned_at is not None and clock - self._pruned_at < _SESSION_PRUNE_EVERY_S:
            return
        self._pruned_at = clock
        self.db.execute(f"ALTER TABLE {SESSIONS_TABLE} DELETE WHERE expires_at < {float(now)!r}")

    # -- everything, for an export --------------------------------------------------------------

    def snapshot(self) -> AuthSnapshot:
        now = time.time()
        sessions = [row for row, deleted, _ in self._session_rows("", {}) if not deleted and row.expires_at > now]
        return AuthSnapshot(
            projects=self.projects(),
            keys=sorted((row for row, _ in self._key_rows()), key=lambda r: r.key.created_at),
            users=self.users(),
            memberships=sorted((m for m, _ in self._membership_rows()), key=lambda m: (m.username, m.project)),
            sessions=sessions,
        )
