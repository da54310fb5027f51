"""Auth: on/off/auto, refusing to serve a public address unauthenticated, key roles, keys stored
hashed, revocation, UI login with an HttpOnly SameSite cookie and CSRF-protected forms."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.security._support import bearer, create_key, llmlens_cli, login
from tests.support.llmlens_server import LLMLensServer

from llmlens.auth import auth_enabled, is_loopback
from llmlens.settings import Settings


@pytest.mark.parametrize(
    ("host", "mode", "expected"),
    [
        ("127.0.0.1", "auto", False),
        ("localhost", "auto", False),
        ("::1", "auto", False),
        ("0.0.0.0", "auto", True),
        ("192.168.1.5", "auto", True),
        ("127.0.0.1", "on", True),
        ("0.0.0.0", "off", False),
    ],
)
def test_auth_mode(host: str, mode: str, expected: bool) -> None:
    assert auth_enabled(Settings(host=host, auth=mode)) is expected


def test_loopback() -> None:
    assert is_loopback("127.0.0.2") and not is_loopback("10.0.0.1") and not is_loopback("example.com")


def test_serve_refuses_a_public_address_with_auth_off(tmp_path: Path) -> None:
    done = llmlens_cli("serve", "--host", "0.0.0.0", "--auth", "off", "--port", "0", "--data", str(tmp_path))
    assert done.returncode != 0
    assert "refusing to serve 0.0.0.0 with auth off" in done.stderr
    assert "--insecure-public" in done.stderr


@dataclass
class Secured:
    srv: LLMLensServer
    data: Path
    keys: dict[str, str]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    data = tmp_path_factory.mktemp("auth")
    # auto + 0.0.0.0: auth is on without being asked for
    with LLMLensServer(data, args=["--host", "0.0.0.0"]) as srv:
        keys = {role: create_key(data, "default", role) for role in ("ingest", "read", "admin")}
        assert (
            llmlens_cli(
                "users",
                "create",
                "alice",
                "--project",
                "default",
                "--role",
                "member",
                "--password-stdin",
                "--data",
                str(data),
                stdin="correct horse battery\n",
            ).returncode
            == 0
        )
        assert (
            llmlens_cli(
                "users",
                "create",
                "victor",
                "--project",
                "default",
                "--role",
                "viewer",
                "--password-stdin",
                "--data",
                str(data),
                stdin="viewer password\n",
            ).returncode
            == 0
        )
        yield Secured(srv, data, keys)


EVENT = [{"type": "llm", "model": "gpt-4o", "prompt": "hi", "response": "yo", "span_id": "1" * 16}]


def test_everything_but_health_needs_credentials(secured: Secured) -> None:
    url = secured.srv.url
    assert httpx.get(f"{url}/healthz").status_code == 200
    for method, path in (
        ("GET", "/api/v1/overview"),
        ("POST", "/api/v1/sql"),
        ("POST", "/api/v1/ingest"),
        ("GET", "/api/v1/traces"),
        ("POST", "/v1/traces"),
        ("GET", "/metrics"),
    ):
        r = httpx.request(method, url + path, json={"query": "SELECT 1"})
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.get(f"{url}/cost", headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fcost"
    assert httpx.get(f"{url}/api/v1/overview", headers=bearer("llm_not-a-real-key-at-all-000000")).status_code == 401


@pytest.mark.parametrize(
    ("role", "can_ingest", "can_read", "can_admin"),
    [("ingest", True, False, False), ("read", False, True, False), ("admin", True, True, True)],
)
def test_key_roles(secured: Secured, role: str, can_ingest: bool, can_read: bool, can_admin: bool) -> None:
    with httpx.Client(base_url=secured.srv.url, headers=bearer(secured.keys[role])) as c:
        assert (c.post("/api/v1/ingest", json=EVENT).status_code == 200) is can_ingest
        assert (c.get("/api/v1/overview").status_code == 200) is can_read
        assert (c.post("/api/v1/sql", json={"query": "SELECT 1"}).status_code == 200) is can_read
        assert (c.get("/api/v1/admin/keys").status_code == 200) is can_admin


def test_every_key_header_works_but_only_ours_on_the_proxy(secured: Secured) -> None:
    key = secured.keys["read"]
    for headers in ({"X-LLMLens-Api-Key": key}, {"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        assert httpx.get(f"{secured.srv.url}/api/v1/whoami", headers=headers).status_code == 200
    # on /proxy, Authorization is the provider's: our key there does not authenticate
    ingest = secured.keys["ingest"]
    r = httpx.post(f"{secured.srv.url}/proxy/openai/v1/chat/completions", headers=bearer(ingest), json={})
    assert r.status_code == 401


def test_keys_are_stored_hashed(secured: Secured) -> None:
    raw = b"".join(p.read_bytes() for p in secured.data.glob("auth.sqlite3*"))
    for secret in secured.keys.values():
        assert secret.encode() not in raw
    with sqlite3.connect(secured.data / "auth.sqlite3") as con:
        hashes = {r[0] for r in con.execute("SELECT key_hash FROM api_keys")}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    listed = llmlens_cli("keys", "list", "--data", str(secured.data)).stdout
    assert all(secret not in listed for secret in secured.keys.values())


def test_revoked_key_stops_working(secured: Secured) -> None:
    key = create_key(secured.data, "default", "read")
    with httpx.Client(base_url=secured.srv.url) as c:
        assert c.get("/api/v1/whoami", headers=bearer(key)).status_code == 200
        admin = bearer(secured.keys["admin"])
        key_id = next(
            k["id"] for k in c.get("/api/v1/admin/keys", headers=admin).json()["keys"] if k["display"] == key[:10] + "…"
        )
        assert c.delete(f"/api/v1/admin/keys/{key_id}", headers=admin).status_code == 200
        assert c.get("/api/v1/whoami", headers=bearer(key)).status_code == 401


def _login(c: httpx.Client, user: str, password: str) -> httpx.Response:
    return login(c, user, password, next="/cost")


def test_login_sets_a_safe_cookie_and_forms_need_the_csrf_token(secured: Secured) -> None:
    with httpx.Client(base_url=secured.srv.url) as c:
        assert _login(c, "alice", "wrong password").status_code == 401
        r = _login(c, "alice", "correct horse battery")
        assert r.status_code == 303 and r.headers["location"] == "/cost"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        page = c.get("/cost", headers={"accept": "text/html"})
        assert page.status_code == 200 and "alice" in page.text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token is not None
        # a member may ingest, but a cookie-authenticated POST without the token is refused
        assert c.post("/api/v1/ingest", json=EVENT).status_code == 403
        assert c.post("/api/v1/ingest", json=EVENT, headers={"X-CSRF-Token": "forged"}).status_code == 403
        assert c.post("/api/v1/ingest", json=EVENT, headers={"X-CSRF-Token": token.group(1)}).status_code == 200
        assert c.post("/logout", data={"csrf_token": "forged"}).status_code == 403
        assert c.post("/logout", data={"csrf_token": token.group(1)}).status_code == 303
        assert c.get("/api/v1/overview").status_code == 401


def test_viewer_reads_but_cannot_write(secured: Secured) -> None:
    with httpx.Client(base_url=secured.srv.url) as c:
        assert _login(c, "victor", "viewer password").status_code == 303
        assert c.get("/api/v1/overview").status_code == 200
        page = c.get("/", headers={"accept": "text/html"})
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token is not None
        r = c.post("/api/v1/ingest", json=EVENT, headers={"X-CSRF-Token": token.group(1)})
        assert r.status_code == 403 and "viewer" in r.json()["error"]
        assert c.get("/api/v1/overview", params={"project": "elsewhere"}).status_code == 403


def test_login_redirect_stays_on_this_site(secured: Secured) -> None:
    with httpx.Client(base_url=secured.srv.url) as c:
        r = login(c, "alice", "correct horse battery", next="https://evil.example/")
        assert r.status_code == 303 and r.headers["location"] == "/"
