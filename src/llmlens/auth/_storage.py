"""Where auth records are kept: the rows and the `AuthStorage` protocol its backends implement.

Two backends: SQLite in the data folder (`_sqlite.py`, one server) and ClickHouse tables beside the
spans (`llmlens.state`, several servers). `AuthDB` holds the rules (names, roles, password length,
who may revoke what) and the caches; a backend only reads and writes rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class StateUnavailable(RuntimeError):
    """The shared state backend cannot be reached; the message names it (a 503 at the HTTP boundary)."""


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


@dataclass(frozen=True, slots=True)
class ProjectRow:
    name: str
    created_at: float
    retention_days: int | None


@dataclass(frozen=True, slots=True)
class KeyRow:
    key: ApiKey
    key_hash: str  # SHA-256 of the secret; the secret itself is never stored


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    password_hash: str
    created_at: float
    server_admin: bool


@dataclass(frozen=True, slots=True)
class MembershipRow:
    username: str
    project: str
    role: str


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_hash: str
    username: str
    csrf_token: str
    created_at: float
    expires_at: float


@dataclass(slots=True)
class AuthSnapshot:
    """Every row of a backend: what an import copies from one backend into another."""

    projects: list[ProjectRow] = field(default_factory=list)
    keys: list[KeyRow] = field(default_factory=list)
    users: list[UserRow] = field(default_factory=list)
    memberships: list[MembershipRow] = field(default_factory=list)
    sessions: list[SessionRow] = field(default_factory=list)


class AuthStorage(Protocol):
    """Rows in, rows out. Methods that change a row return False when there was no such row."""

    location: str  # shown in messages: a file path or a redacted URL
    # How long AuthDB may reuse a key lookup, and a session (with its user's roles): the longest a
    # revocation, a logout or a new role can take to apply on a server that did not make the change.
    key_cache_ttl_s: float
    session_cache_ttl_s: float

    def close(self) -> None: ...

    def insert_project(self, row: ProjectRow) -> bool:
        """False when the project exists (nothing is changed)."""
        ...

    def project(self, name: str) -> ProjectRow | None: ...

    def projects(self) -> list[ProjectRow]: ...

    def set_retention(self, name: str, days: int | None) -> bool: ...

    def insert_key(self, row: KeyRow) -> None: ...

    def keys(self, project: str | None) -> list[ApiKey]:
        """Live and revoked keys, of one project or all, oldest first."""
        ...

    def key_by_id(self, key_id: str) -> ApiKey | None: ...

    def live_key_by_hash(self, key_hash: str) -> ApiKey | None: ...

    def mark_key_revoked(self, key_id: str, at: float) -> bool:
        """False when the key does not exist or was revoked already."""
        ...

    def has_live_key(self) -> bool: ...

    def insert_user(self, row: UserRow) -> bool:
        """False when the user exists (nothing is changed)."""
        ...

    def user(self, username: str) -> UserRow | None: ...

    def users(self) -> list[UserRow]: ...

    def set_password_hash(self, username: str, password_hash: str) -> bool: ...

    def set_server_admin(self, username: str, server_admin: bool) -> bool: ...

    def put_membership(self, row: MembershipRow) -> None: ...

    def memberships(self, username: str) -> dict[str, str]:
        """project -> role, by project."""
        ...

    def insert_session(self, row: SessionRow) -> None: ...

    def session(self, token_hash: str, now: float) -> SessionRow | None:
        """The session if it exists and has not expired."""
        ...

    def delete_session(self, token_hash: str) -> None: ...

    def delete_sessions_of(self, username: str) -> None: ...

    def delete_expired_sessions(self, now: float) -> None: ...

    def snapshot(self) -> AuthSnapshot: ...
