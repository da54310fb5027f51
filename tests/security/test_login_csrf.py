"""The login form refuses posts from other sites (login CSRF): a foreign Origin or Sec-Fetch-Site, or
a missing or foreign anti-CSRF token, logs nobody in; a same-site login, in a real browser too, works."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from tests.security._support import bearer, create_key, llmlens_cli, login
from tests.support.llmlens_server import LLMLensServer

from llmlens.server._auth_middleware import SESSION_COOKIE

CHROMIUM = Path("/usr/bin/chromium")
USER, PASSWORD = "alice", "correct horse battery"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    data = tmp_path_factory.mktemp("login-csrf")
    with LLMLensServer(data, args=["--auth", "on"]) as server:
        create_key(data, "default", "admin")  # makes the project
        done = llmlens_cli(
            "users", "create", USER, "--project", "default", "--role", "member", "--password-stdin",
            "--data", str(data), stdin=f"{PASSWORD}\n",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        server.data_dir = data
        yield server


def _form_token(client: httpx.Client) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert found is not None
    return found.group(1)


def _logged_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and SESSION_COOKIE in response.headers.get("set-cookie", "")


def test_a_post_naming_another_origin_logs_nobody_in(srv: LLMLensServer) -> None:
    with httpx.Client(base_url=srv.url) as c:
        # as reported: no form token, another site's Origin
        r = c.post("/login", data={"username": USER, "password": PASSWORD}, headers={"Origin": "https://evil.example"})
        assert not _logged_in(r) and r.status_code == 403, r.status_code
        assert "evil.example" in r.json()["error"]
        # even with a valid token pair, the browser's word on where the post comes from is enough
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
            token = _form_token(c)
            r = c.post("/login", data={"username": USER, "password": PASSWORD, "csrf_token": token}, headers=headers)
            assert r.status_code == 403 and not _logged_in(r), headers


def test_a_post_without_this_sites_token_logs_nobody_in(srv: LLMLensServer) -> None:
    with httpx.Client(base_url=srv.url) as attacker, httpx.Client(base_url=srv.url) as victim:
        r = victim.post("/login", data={"username": USER, "password": PASSWORD})
        assert r.status_code == 403 and not _logged_in(r)
        assert "log in again" in r.text  # the form is shown again, with a fresh token
        # a token the attacker fetched for itself is worthless without its cookie
        stolen = _form_token(attacker)
        r = victim.post("/login", data={"username": USER, "password": PASSWORD, "csrf_token": stolen})
        assert r.status_code == 403 and not _logged_in(r)


def test_a_same_site_login_works_and_api_keys_are_untouched(srv: LLMLensServer) -> None:
    with httpx.Client(base_url=srv.url) as c:
        same_site = {"Origin": srv.url, "Sec-Fetch-Site": "same-origin"}
        token = _form_token(c)
        r = c.post("/login", data={"username": USER, "password": PASSWORD, "csrf_token": token}, headers=same_site)
        assert _logged_in(r)
        assert c.get("/api/v1/whoami").json()["name"] == USER
    with httpx.Client(base_url=srv.url) as c:
        assert _logged_in(login(c, USER, PASSWORD))  # no Origin at all: not a browser, the token suffices
    key = create_key(srv.data_dir, "default", "read")
    assert httpx.get(f"{srv.url}/api/v1/whoami", headers=bearer(key)).status_code == 200


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    assert CHROMIUM.exists(), "Chromium is missing: run `make test` (scripts/setup-test-env.sh installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
        )
        yield browser
        browser.close()


@pytest.mark.browser
def test_a_browser_logs_in_through_the_form(srv: LLMLensServer, chromium: object) -> None:
    context = chromium.new_context()  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(f"{srv.url}/login?next=/cost")
        page.get_by_label("User name").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/cost$"))
        assert any(c["name"] == SESSION_COOKIE for c in context.cookies())
    finally:
        context.close()


@pytest.mark.browser
def test_another_site_cannot_log_a_browser_in(srv: LLMLensServer, chromium: object) -> None:
    # A page on another origin (another port) that posts our login form as soon as it loads.
    attack = (
        f'<form id="f" method="post" action="{srv.url}/login">'
        f'<input name="username" value="{USER}"><input name="password" value="{PASSWORD}">'
        f'<input name="csrf_token" value="guessed"></form><script>document.getElementById("f").submit()</script>'
    ).encode()

    class AttackPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(attack)))
            self.end_headers()
            self.wfile.write(attack)

        def log_message(self, format: str, *args: object) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), AttackPage)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    context = chromium.new_context()  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        with page.expect_response(re.compile(r"/login$")) as answer:
            page.goto(f"http://127.0.0.1:{site.server_address[1]}/")
        assert answer.value.status == 403
        assert not any(c["name"] == SESSION_COOKIE for c in context.cookies())
    finally:
        context.close()
        site.shutdown()
        site.server_close()
