"""Roles and what they allow; the principal (who is calling, in which project, allowed to do what)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# What a request needs: send data, read it (dashboards, SQL, exports), change settings, manage access.
Permission = Literal["ingest", "read", "write", "admin"]

KEY_ROLES = ("ingest", "read", "admin")
USER_ROLES = ("viewer", "member", "admin")
# A key that is its project's admin and also manages server-wide settings: budget defaults, server-wide
# alert rules, every project's /metrics series. Created only by `llmlens keys create --role server-admin`.
SERVER_ADMIN_ROLE = "server-admin"

PERMISSIONS: dict[str, frozenset[str]] = {
    # API keys
    "ingest": frozenset({"ingest"}),
    "read": frozenset({"read"}),
    # users (and admin keys)
    "viewer": frozenset({"read"}),
    "member": frozenset({"read", "write", "ingest"}),
    "admin": frozenset({"read", "write", "ingest", "admin"}),
    SERVER_ADMIN_ROLE: frozenset({"read", "write", "ingest", "admin"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request, put in the ASGI scope as `scope["llmlens.principal"]`.

    `project` is the project the request acts in: the key's project, or the project a logged-in user
    picked among `memberships`. `None` only when auth is off (every project is reachable).

    `server_admin` callers may also change what applies to every project (budget defaults, server-wide
    alert rules) and see the server's own metrics. It does not open other projects' data: reads and
    writes stay confined to `project`. The anonymous caller of a server without auth is one.
    """

    kind: Literal["key", "user", "anonymous"]
    name: str  # key id, username, or "anonymous"
    role: str
    project: str | None
    memberships: dict[str, str] = field(default_factory=dict)  # users: project -> role
    csrf_token: str | None = None  # sessions only
    server_admin: bool = False

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    @property
    def confined(self) -> bool:
        """True when this caller may see only `project` (auth is on)."""
        return self.kind != "anonymous"


ANONYMOUS_ADMIN = Principal(kind="anonymous", name="anonymous", role="admin", project=None, server_admin=True)
