"""Helpers for the shared-state tests: the real CLI against a store, waiting on a condition with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from tests.security._support import llmlens_cli

T = TypeVar("T")

# What the issue promises: a change made on one server applies on every other within this.
PROPAGATION_S = 5.0


def cli_key(store: Path | str, project: str, role: str, *, data: Path) -> str:
    """`llmlens keys create` against a store URL (or, given a Path, only a data folder); the secret."""
    where = ["--data", str(data)] if isinstance(store, Path) else ["--store", store, "--data", str(data)]
    done = llmlens_cli("keys", "create", "--project", project, "--role", role, "--create-project", *where)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0].strip()


def cli_user(store: Path | str, name: str, password: str, project: str, role: str, *, data: Path) -> None:
    where = ["--data", str(data)] if isinstance(store, Path) else ["--store", store, "--data", str(data)]
    args = ["users", "create", name, "--project", project, "--role", role, "--password-stdin", *where]
    done = llmlens_cli(*args, stdin=password + "\n")
    assert done.returncode == 0, done.stderr


def api(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def wait_until(probe: Callable[[], T], done: Callable[[T], bool], *, within_s: float, since: float) -> T:
    """Call `probe` until `done` holds for its answer or `within_s` after `since` (time.monotonic()) has
    passed; the last answer either way, for the caller to assert on."""
    while True:
        answer = probe()
        if done(answer) or time.monotonic() - since > within_s:
            return answer
        time.sleep(0.05)
