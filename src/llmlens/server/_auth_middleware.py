"""Pure ASGI middleware: who is calling, in which project, allowed to do what.

For every HTTP request it finds the caller (an API key in `Authorization: Bearer`, `X-LLMLens-Api-Key`
or `X-API-Key`, a Langfuse key pair in `Authorization: Basic`, or a login session cookie), the project
it acts in and its role, and puts a `Principal` in `scope["llmlens.principal"]`. On `/proxy/...` only
`X-LLMLens-Api-Key` (or Helicone's `Helicone-Auth: Bearer`) counts: the `Authorization` and `X-API-Key`
headers there are the provider's and go upstream untouched.

When auth is on, the request is then confined to the caller's project: asking for another project
is a 403; `X-LLMLens-Project` and `?project=` are rewritten to the caller's project (so every route,
including ones that read those directly, sees only it); and `llmlens.store.current_project` is set,
which the store and the ingest pipeline obey. Plain ASGI, not BaseHTTPMiddleware, so that context
variable reaches the route.
"""

from __future__ import annotations

import base64
import hmac
import json
from dataclasses import replace
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmlens.auth import (
    ANONYMOUS_ADMIN,
    KEY_PREFIX,
    LANGFUSE_PUBLIC_PREFIX,
    SERVER_ADMIN_ROLE,
    Principal,
    StateUnavailable,
    langfuse_public_key,
)
from llmlens.store import current_project

from ._security import security_of
from ._state import AppState
from ._store_down import unavailable_response

PRINCIPAL_KEY = "llmlens.principal"
SESSION_COOKIE = "llmlens_session"
CSRF_HEADER = b"x-csrf-token"
CSRF_FIELD = "csrf_token"

_PUBLIC_PATHS = frozenset({"/healthz", "/login", "/favicon.ico", "/openapi.json"})
_PUBLIC_PREFIXES = ("/static/",)
# Scores are data an app sends about its own calls (llmlens.score), so an ingest key may post them too.
_INGEST_PATHS = frozenset({"/api/v1/ingest", "/api/v1/scores", "/v1/traces", "/v1/logs", "/v1/metrics"})
# Langfuse's public API, as its SDK calls it with an ingest key pair (projects: its `auth_check()`).
_LANGFUSE_PATHS = frozenset(
    {
        "/api/public/otel/v1/traces",
        "/api/public/scores",
        "/api/public/ingestion",
        "/api/public/projects",
        "/api/public/health",
    }
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READ_POSTS = frozenset({"/api/v1/sql", "/logout"})
_MAX_FORM_BYTES = 1_000_000
_STATE_RETRY_AFTER_S = b"5"


def required_permission(method: str, path: str) -> str | None:
    """What a request needs: None (public), ingest, read, write (change settings) or admin."""
    if path in _PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES):
        return None
    if path.startswith("/proxy/"):
        return "ingest"  # the gateway records spans; calling it is sending data
    if path.startswith("/api/v1/admin"):
        return "admin"
    if path in _INGEST_PATHS or path in _LANGFUSE_PATHS or path.startswith("/api/v1/ingest/"):
        return "ingest"
    if method in _SAFE_METHODS or path in _READ_POSTS:
        return "read"
    return "write"


def _is_api(path: str, headers: dict[bytes, bytes]) -> bool:
    if path.startswith(("/api/", "/v1/", "/proxy/")) or path.endswith((".json", ".csv")):
        return True
    return b"text/html" not in headers.get(b"accept", b"")


class AuthMiddleware:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        security = security_of(self.state)
        if not security.enabled:
            scope[PRINCIPAL_KEY] = ANONYMOUS_ADMIN
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        need = required_permission(method, path)
        headers = _header_map(scope)
        try:
            principal = self._authenticate(path, headers)
        except StateUnavailable as exc:
            # Keys and sessions live in a shared ClickHouse that is down: the caller may try again soon
            # (a page gets the page frame with a banner saying so).
            response = unavailable_response(Request(scope), str(exc), float(_STATE_RETRY_AFTER_S))
            await response(scope, receive, send)
            return
        if path.startswith("/proxy/"):
            _strip_llmlens_credentials(scope)
        if need is None:
            if principal is not None:
                scope[PRINCIPAL_KEY] = principal
            await self.app(scope, receive, send)
            return
        if principal is None:
            await _unauthenticated(scope, send, path, headers)
            return
        requested = _requested_project(scope, headers)
        if principal.kind == "key":
            if requested and requested != principal.project:
                await _deny(send, 403, f"this API key belongs to project {principal.project!r}, not {requested!r}")
                return
        else:
            chosen = _user_project(principal, requested, self.state.settings.project)
            if chosen is None:
                message = (
                    f"you are not a member of project {requested!r}"
                    if requested
                    else "you are not a member of any project; ask an admin to grant you one"
                )
                await _deny(send, 403, message)
                return
            principal = replace(principal, project=chosen, role=principal.memberships[chosen])
        if not principal.can(need):
            await _deny(send, 403, f"the {principal.role!r} role cannot {_verb(need)}")
            return
        if principal.kind == "user" and method not in _SAFE_METHODS:
            ok, receive = await _check_csrf(scope, receive, headers, principal)
            if not ok:
                await _deny(send, 403, "missing or wrong CSRF token: reload the page and try again")
                return
        assert principal.project is not None
        _confine_scope(scope, principal.project, rewrite_query=not path.startswith("/proxy/"))
        scope[PRINCIPAL_KEY] = principal
        token = current_project.set(principal.project)
        try:
            await self.app(scope, receive, send)
        finally:
            current_project.reset(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """WebSockets read data: a key's or a session's read permission, confined like HTTP."""
        try:
            principal = self._authenticate(scope["path"], _header_map(scope))
        except StateUnavailable:
            await send({"type": "websocket.close", "code": 1013})  # try again later
            return
        if principal is not None and principal.kind == "user":
            chosen = _user_project(principal, None, self.state.settings.project)
            principal = (
                None if chosen is None else replace(principal, project=chosen, role=principal.memberships[chosen])
            )
        if principal is None or principal.project is None or not principal.can("read"):
            await send({"type": "websocket.close", "code": 1008})
            return
        _confine_scope(scope, principal.project, rewrite_query=True)
        scope[PRINCIPAL_KEY] = principal
        token = current_project.set(principal.project)
        try:
            await self.app(scope, receive, send)
        finally:
            current_project.reset(token)

    def _authenticate(self, path: str, headers: dict[bytes, bytes]) -> Principal | None:
        security = security_of(self.state)
        secret = _api_key(path, headers)
        if secret is not None:
            key = security.auth.key_for_secret(secret)
            if key is None:
                return None
            public = _basic_credentials(headers)[0] if not path.startswith("/proxy/") else None
            if public is not None and _names_another_key(public, key.id):
                return None  # a public key made for another key: the pair is not one
            return Principal(
                kind="key",
                name=key.id,
                role=key.role,
                project=key.project,
                server_admin=key.role == SERVER_ADMIN_ROLE,
            )
        token = _cookie(headers, SESSION_COOKIE)
        if token:
            session = security.auth.session(token)
            if session is not None:
                memberships = security.auth.memberships(session.username)
                return Principal(
                    kind="user",
                    name=session.username,
                    role="viewer",
                    project=None,
                    memberships=memberships,
                    csrf_token=session.csrf_token,
                    server_admin=security.auth.is_server_admin(session.username),
                )
        return None


def _verb(permission: str) -> str:
    return {
        "ingest": "send data (ingest needs an ingest or admin key)",
        "read": "read data (needs a read or admin key, or a login)",
        "write": "change settings (needs a member or admin login, or an admin key)",
        "admin": "manage the project (needs an admin key or an admin login)",
    }.get(permission, permission)


def _header_map(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope["headers"]}


def _api_key(path: str, headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"x-llmlens-api-key")
    if value:
        return value.decode("latin-1").strip()
    if path.startswith("/proxy/"):
        # Authorization / X-API-Key there belong to the provider; Helicone's own key header is ours.
        scheme, _, credential = headers.get(b"helicone-auth", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            return credential.strip()
        return None
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, credential = auth.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    public, secret = _basic_credentials(headers)
    if public is not None and secret:
        return secret  # a Langfuse pair: the secret key is the llmlens key
    value = headers.get(b"x-api-key")
    if value and value.decode("latin-1").startswith(KEY_PREFIX):
        return value.decode("latin-1").strip()
    return None


def _basic_credentials(headers: dict[bytes, bytes]) -> tuple[str | None, str | None]:
    """(user, password) of `Authorization: Basic base64(user:password)`; (None, None) without one."""
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, credential = auth.partition(" ")
    if scheme.lower() != "basic" or not credential.strip():
        return None, None
    try:
        decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password.strip()) if sep else (None, None)


def _names_another_key(public_key: str, key_id: str) -> bool:
    """True when `public_key` was made by `llmlens keys create --langfuse` for a key other than `key_id`.

    Any other public key is not checked: with a plain llmlens key as the secret, the public key is free.
    """
    made_by_us = public_key.startswith(LANGFUSE_PUBLIC_PREFIX + "key_")
    return made_by_us and not hmac.compare_digest(public_key.encode(), langfuse_public_key(key_id).encode())


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw.decode("latin-1"))
    except Exception:  # a malformed Cookie header is no session
        return None
    morsel = cookie.get(name)
    return str(morsel.value) if morsel is not None else None


def _requested_project(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    header = headers.get(b"x-llmlens-project", b"").decode("latin-1").strip()
    if header:
        return header
    query: bytes = scope.get("query_string", b"")
    for key, value in parse_qsl(query.decode("latin-1")):
        if key == "project" and value.strip():
            return value.strip()
    return None


def _user_project(principal: Principal, requested: str | None, default: str) -> str | None:
    if requested:
        return requested if requested in principal.memberships else None
    if default in principal.memberships:
        return default
    return next(iter(principal.memberships), None)


def _confine_scope(scope: Scope, project: str, *, rewrite_query: bool) -> None:
    """Every way a route may read the project now names the caller's."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"x-llmlens-project"]
    headers.append((b"x-llmlens-project", project.encode()))
    scope["headers"] = headers
    if rewrite_query:
        pairs = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)]
        pairs = [(k, v) for k, v in pairs if k != "project"]
        pairs.append(("project", project))
        scope["query_string"] = urlencode(pairs).encode("latin-1")


def _strip_llmlens_credentials(scope: Scope) -> None:
    """Our key and our session cookie never travel upstream with a proxied call."""
    out = []
    for k, v in scope["headers"]:
        name = k.lower()
        if name == b"x-llmlens-api-key":
            continue
        if name == b"cookie" and SESSION_COOKIE.encode() in v:
            kept = [c for c in v.split(b";") if not c.strip().startswith(SESSION_COOKIE.encode() + b"=")]
            if not kept:
                continue
            v = b";".join(kept).strip()
        out.append((k, v))
    scope["headers"] = out


async def _check_csrf(
    scope: Scope, receive: Receive, headers: dict[bytes, bytes], principal: Principal
) -> tuple[bool, Receive]:
    expected = principal.csrf_token or ""
    sent = headers.get(CSRF_HEADER, b"").decode("latin-1")
    if sent:
        return _same(sent, expected), receive
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != b"application/x-www-form-urlencoded":
        return False, receive
    body, replay = await _buffer_body(receive)
    if body is None:
        return False, replay
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return _same(fields.get(CSRF_FIELD, ""), expected), replay


def _same(a: str, b: str) -> bool:
    import hmac

    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


async def _buffer_body(receive: Receive) -> tuple[bytes | None, Receive]:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_FORM_BYTES:
            return None, receive
        chunks.append(chunk)
        more = bool(message.get("more_body"))
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _deny(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _unauthenticated(scope: Scope, send: Send, path: str, headers: dict[bytes, bytes]) -> None:
    if scope["method"] == "GET" and not _is_api(path, headers):
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
        location = f"/login?next={quote(target, safe='')}"
        await send({"type": "http.response.start", "status": 303, "headers": [(b"location", location.encode())]})
        await send({"type": "http.response.body", "body": b""})
        return
    await _deny(
        send,
        401,
        "authentication required: send an API key (Authorization: Bearer llm_..., or X-LLMLens-Api-Key; a Langfuse "
        "SDK sends its key pair as Authorization: Basic) or log in",
        [(b"www-authenticate", b'Bearer realm="llmlens"')],
    )


def principal_of(scope: Any) -> Principal | None:
    principal: Principal | None = scope.get(PRINCIPAL_KEY)
    return principal
