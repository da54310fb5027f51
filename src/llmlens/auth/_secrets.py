"""Secrets: API keys (shown once, stored as SHA-256), passwords (scrypt), session tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

KEY_PREFIX = "llm_"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


# A Langfuse key pair (`llmlens keys create --langfuse`): the secret is an llmlens API key with Langfuse's
# prefix; the public key names the key it belongs to, so a pair from two different keys is refused.
LANGFUSE_SECRET_PREFIX = "sk-lf-"
LANGFUSE_PUBLIC_PREFIX = "pk-lf-"


def new_api_key(prefix: str = KEY_PREFIX) -> str:
    """`llm_` (or `prefix`) and 43 URL-safe characters (256 random bits)."""
    return prefix + secrets.token_urlsafe(32)


def langfuse_public_key(key_id: str) -> str:
    """The Langfuse public key of an llmlens key: `pk-lf-` and the key's id."""
    return LANGFUSE_PUBLIC_PREFIX + key_id


def hash_token(token: str) -> str:
    """API keys and session tokens are long random strings: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
