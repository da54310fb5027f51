"""Who may do what: projects, API keys, users with per-project roles, login sessions."""

from ._db import AUTH_FILE, ApiKey, AuthDB, AuthError, Session
from ._policy import auth_enabled, is_loopback
from ._roles import ANONYMOUS_ADMIN, KEY_ROLES, PERMISSIONS, SERVER_ADMIN_ROLE, USER_ROLES, Permission, Principal
from ._secrets import KEY_PREFIX, hash_password, hash_token, new_api_key, verify_password

__all__ = [
    "ANONYMOUS_ADMIN",
    "AUTH_FILE",
    "KEY_PREFIX",
    "KEY_ROLES",
    "PERMISSIONS",
    "SERVER_ADMIN_ROLE",
    "USER_ROLES",
    "ApiKey",
    "AuthDB",
    "AuthError",
    "Permission",
    "Principal",
    "Session",
    "auth_enabled",
    "hash_password",
    "hash_token",
    "is_loopback",
    "new_api_key",
    "verify_password",
]
