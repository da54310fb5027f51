"""Who may do what: projects, API keys, users with per-project roles, login sessions."""

from ._db import AuthDB, AuthError
from ._policy import auth_enabled, is_loopback
from ._roles import ANONYMOUS_ADMIN, KEY_ROLES, PERMISSIONS, SERVER_ADMIN_ROLE, USER_ROLES, Permission, Principal
from ._secrets import (
    KEY_PREFIX,
    LANGFUSE_PUBLIC_PREFIX,
    LANGFUSE_SECRET_PREFIX,
    hash_password,
    hash_token,
    langfuse_public_key,
    new_api_key,
    verify_password,
)
from ._sqlite import AUTH_FILE, SqliteAuthStorage
from ._storage import (
    ApiKey,
    AuthSnapshot,
    AuthStorage,
    KeyRow,
    MembershipRow,
    ProjectRow,
    Session,
    SessionRow,
    StateUnavailable,
    UserRow,
)

__all__ = [
    "ANONYMOUS_ADMIN",
    "AUTH_FILE",
    "KEY_PREFIX",
    "KEY_ROLES",
    "LANGFUSE_PUBLIC_PREFIX",
    "LANGFUSE_SECRET_PREFIX",
    "PERMISSIONS",
    "SERVER_ADMIN_ROLE",
    "USER_ROLES",
    "ApiKey",
    "AuthDB",
    "AuthError",
    "AuthSnapshot",
    "AuthStorage",
    "KeyRow",
    "MembershipRow",
    "Permission",
    "Principal",
    "ProjectRow",
    "Session",
    "SessionRow",
    "SqliteAuthStorage",
    "StateUnavailable",
    "UserRow",
    "auth_enabled",
    "hash_password",
    "hash_token",
    "is_loopback",
    "langfuse_public_key",
    "new_api_key",
    "verify_password",
]
