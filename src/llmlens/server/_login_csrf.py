"""The login form's defences against being posted from another site (login CSRF).

A page on another site could otherwise post our login form with the attacker's own credentials, and
the victim's browser would be logged in as the attacker, recording what they then do. Two checks:

- the browser says where the post comes from: `Sec-Fetch-Site` (sent by current browsers, computed
  by the browser itself, so a reverse proxy that rewrites `Host` does not confuse it), else `Origin`
  compared with the address this server is reached at (`Host`, or `public_url`);
- a token that only this server's login page hands out, in an HttpOnly SameSite=Strict cookie and a
  hidden form field (double submit): another site can neither read it nor make the browser send it.

Non-browser callers use API keys, never this form, so they are not affected.
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

LOGIN_CSRF_COOKIE = "llmlens_login_csrf"
LOGIN_CSRF_FIELD = "csrf_token"
# Long enough to type a password after a coffee; a form older than this is refused and shown again.
LOGIN_CSRF_TTL_S = 3600
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32}")
_SAME_SITE_FETCH = frozenset({"same-origin", "none"})  # `none`: the user typed or bookmarked the address
_DEFAULT_PORTS = frozenset({80, 443})


def login_token_for(request: Request) -> str:
    """The token this browser already holds (so that two open login tabs both work), or a new one."""
    held = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return held if _TOKEN_SHAPE.fullmatch(held) else secrets.token_urlsafe(24)


def set_login_token_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=LOGIN_CSRF_TTL_S,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/login",
    )


def cross_site_reason(request: Request, public_url: str) -> str | None:
    """Why this POST looks sent by another site, or None."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site.strip().lower() in _SAME_SITE_FETCH:
            return None
        return f"the browser reports the login form was sent from a {fetch_site} page"
    origin = request.headers.get("origin")
    if origin is None:
        return None  # not a browser's cross-site post: browsers send Origin with every POST
    if origin.strip().lower() == "null":
        return "the login form was sent from a page without an origin"
    ours = {_host_port(f"//{request.headers.get('host', '')}")}
    if public_url:
        ours.add(_host_port(public_url))
    if _host_port(origin) not in ours:
        return f"the login form was sent from {origin}, not from this server"
    return None


def login_token_matches(request: Request, sent: str) -> bool:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(sent) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def _host_port(url: str) -> tuple[str, int | None]:
    """(host, port) of a URL or `//host:port`; default ports count as none (a TLS-terminating proxy
    in front makes the browser's https://host and the server's http://host the same place)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ("", None)
    return ((parts.hostname or "").lower(), None if port in _DEFAULT_PORTS else port)
