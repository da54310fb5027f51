"""Log in and out of the UI (session cookie), who am I, and a project's API keys (admin)."""

from __future__ import annotations

from dataclasses import asdict
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.auth import AuthError

from .._auth_middleware import SESSION_COOKIE, principal_of
from .._http import HttpError, read_json_object
from .._login_csrf import (
    LOGIN_CSRF_COOKIE,
    LOGIN_CSRF_FIELD,
    cross_site_reason,
    login_token_for,
    login_token_matches,
    set_login_token_cookie,
)
from .._request import request_principal, request_project
from .._security import security_of
from .._state import app_state
from .ui import templates


def _safe_next(target: str) -> str:
    """Only same-site paths: `next` must not send a user to another site after logging in."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _login_page(
    request: Request, *, error: str = "", status: int = 200, username: str = "", nxt: str | None = None
) -> Response:
    """The form, with an anti-CSRF token in it and in its cookie."""
    nxt = _safe_next(request.query_params.get("next", "/") if nxt is None else nxt)
    token = login_token_for(request)
    context = {"error": error, "next": nxt, "username": username, "csrf_token": token}
    response = templates.TemplateResponse(request, "login.html", context, status_code=status)
    set_login_token_cookie(response, token, secure=request.url.scheme == "https")
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login(request: Request) -> Response:
    state = app_state(request)
    security = security_of(state)
    client = request.client.host if request.client else "unknown"
    if security.login_throttle.blocked(client):
        raise HttpError(429, "too many failed logins; wait a few minutes", {"Retry-After": "300"})
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    nxt = _safe_next(str(form.get("next", "/")))
    cross_site = cross_site_reason(request, state.settings.public_url)
    if cross_site is not None:
        raise HttpError(403, f"login refused: {cross_site}")
    if not login_token_matches(request, str(form.get(LOGIN_CSRF_FIELD, ""))):
        message = "This login form has expired or was not sent from this site; please log in again."
        return _login_page(request, error=message, status=403, username=username, nxt=nxt)
    ok = await run_in_threadpool(security.auth.check_password, username, password)
    if not ok:
        security.login_throttle.failed(client)
        return _login_page(request, error="Wrong user name or password.", status=401, username=username, nxt=nxt)
    token, _ = security.auth.create_session(username, state.settings.session_ttl_s)
    response = RedirectResponse(nxt, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(state.settings.session_ttl_s),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")  # used up
    return response


async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        security_of(app_state(request)).auth.end_session(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def whoami(request: Request) -> JSONResponse:
    principal = request_principal(request)
    return JSONResponse(
        {
            "kind": principal.kind,
            "name": principal.name,
            "role": principal.role,
            "project": request_project(request),
            "projects": sorted(principal.memberships) if principal.kind == "user" else None,
            "server_admin": principal.server_admin,
            "auth": security_of(app_state(request)).enabled,
        }
    )


async def list_keys(request: Request) -> JSONResponse:
    auth = security_of(app_state(request)).auth
    keys = auth.keys(request_project(request))
    return JSONResponse({"keys": [asdict(k) for k in keys]})


async def create_key(request: Request) -> JSONResponse:
    auth = security_of(app_state(request)).auth
    doc = await read_json_object(request)
    project = request_project(request)
    role = doc.get("role", "ingest")
    name = doc.get("name")
    if not isinstance(role, str) or (name is not None and not isinstance(name, str)):
        raise HttpError(400, 'send {"role": "ingest" | "read" | "admin", "name": "..."}')
    try:
        auth.ensure_project(project)
        key, secret = auth.create_key(project, role, name=name)
    except AuthError as exc:
        raise HttpError(422, str(exc)) from None
    return JSONResponse({**asdict(key), "key": secret, "note": "shown once: store it now"}, status_code=201)


async def revoke_key(request: Request) -> JSONResponse:
    auth = security_of(app_state(request)).auth
    key_id = request.path_params["key_id"]
    principal = principal_of(request.scope)
    project = request_project(request) if principal is not None and principal.confined else None
    if not auth.revoke_key(key_id, project=project):
        raise HttpError(404, f"no live key {key_id!r} in this project")
    return JSONResponse({"revoked": key_id})


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/v1/whoami", whoami, methods=["GET"]),
        Route("/api/v1/admin/keys", list_keys, methods=["GET"]),
        Route("/api/v1/admin/keys", create_key, methods=["POST"]),
        Route("/api/v1/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
    ]
