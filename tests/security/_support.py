"""Helpers for the security tests: a real server with auth on, and keys made with the real CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx


def llmlens_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmlens.cli", *args], capture_output=True, text=True, input=stdin, timeout=60
    )


def create_key(data: Path, project: str, role: str) -> str:
    done = llmlens_cli("keys", "create", "--project", project, "--role", role, "--create-project", "--data", str(data))
    assert done.returncode == 0, done.stderr
    secret = done.stdout.splitlines()[0].strip()
    assert secret.startswith("llm_")
    return secret


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def login(client: httpx.Client, user: str, password: str, **fields: str) -> httpx.Response:
    """Log in as a browser does: open the login page (its form carries an anti-CSRF token), then post it."""
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, f"no csrf_token field on the login page: {page.status_code} {page.text[:300]}"
    return client.post("/login", data={"username": user, "password": password, "csrf_token": found.group(1), **fields})
