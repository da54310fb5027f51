"""Headless Debian Chromium through Playwright for the browser tests; a missing piece fails and names the setup step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Browser, sync_playwright
except ImportError as exc:  # a collection error that says how to fix it, rather than a bare module name
    raise ImportError("playwright is not installed: run scripts/setup-test-env.sh (make test does)") from exc

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: tests run as root in containers. No background traffic or updates: nothing but the server under test.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"]


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, launched headless; fails the test when it is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup-test-env.sh (it installs Debian's chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
