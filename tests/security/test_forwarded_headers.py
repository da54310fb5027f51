"""X-Forwarded-For is believed only from the proxies named in `forwarded_allow_ips`: by default a caller
on this machine cannot dodge the login throttle by naming a new address on every attempt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.security._support import create_key, llmlens_cli, login
from tests.support.llmlens_server import LLMLensServer

USER, PASSWORD = "alice", "correct horse battery"
THROTTLE = 10  # failed logins per client address before 429 (server/_security.py LoginThrottle)


def _server_with_a_user(data: Path, *args: str) -> LLMLensServer:
    server = LLMLensServer(data, args=["--auth", "on", *args]).start()
    create_key(data, "default", "admin")
    done = llmlens_cli(
        "users", "create", USER, "--project", "default", "--role", "member", "--password-stdin",
        "--data", str(data), stdin=f"{PASSWORD}\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return server


@pytest.fixture
def default_server(tmp_path: Path) -> Iterator[LLMLensServer]:
    server = _server_with_a_user(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def behind_a_proxy(tmp_path: Path) -> Iterator[LLMLensServer]:
    server = _server_with_a_user(tmp_path, "--forwarded-allow-ips", "127.0.0.1")
    yield server
    server.stop()


def _failed_logins(srv: LLMLensServer, forwarded_for: list[str]) -> list[int]:
    statuses = []
    with httpx.Client(base_url=srv.url) as c:
        for address in forwarded_for:
            c.headers["X-Forwarded-For"] = address
            statuses.append(login(c, USER, "wrong password").status_code)
    return statuses


def test_a_new_forwarded_address_each_time_does_not_dodge_the_throttle(default_server: LLMLensServer) -> None:
    statuses = _failed_logins(default_server, [f"198.51.100.{i}" for i in range(THROTTLE + 3)])
    assert statuses[:THROTTLE] == [401] * THROTTLE
    assert statuses[THROTTLE:] == [429] * 3, statuses


def test_a_named_proxy_is_believed(behind_a_proxy: LLMLensServer) -> None:
    # Every client behind the proxy is counted on its own...
    rotating = _failed_logins(behind_a_proxy, [f"198.51.100.{i}" for i in range(THROTTLE + 3)])
    assert rotating == [401] * (THROTTLE + 3)
    # ...so the one that keeps failing is stopped, and the others are not.
    assert _failed_logins(behind_a_proxy, ["203.0.113.7"] * (THROTTLE + 1))[-1] == 429
    assert _failed_logins(behind_a_proxy, ["203.0.113.8"]) == [401]


def test_a_mistyped_proxy_address_is_refused(tmp_path: Path) -> None:
    done = llmlens_cli("serve", "--forwarded-allow-ips", "10.0.0.300", "--port", "0", "--data", str(tmp_path))
    assert done.returncode != 0
    assert "forwarded_allow_ips: '10.0.0.300' is not an IP address or CIDR range" in done.stderr
