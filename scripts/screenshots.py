"""Retake the README's screenshots (docs/screenshots/*.png) from a demo server in Debian's headless Chromium.

    make screenshots            # or: .venv/bin/python scripts/screenshots.py [--out FOLDER]

The tests never write there: this is the one command that does, so the tracked images change only on purpose.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: the command may run as root in a container. No background traffic: only the demo server is asked.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# image name -> (page, whether it draws charts to wait for)
PAGES = {
    "overview": ("/", True),
    "cost": ("/cost", True),
    "latency": ("/latency", True),
    "prompts": ("/prompts", True),
    "prompt": ("/prompts/support_answer", True),
    "tools": ("/tools", True),
    "feedback": ("/feedback", True),
    "traces": ("/traces", False),
    "sessions": ("/sessions", False),
}


@contextmanager
def demo_server(startup_timeout_s: float = 120.0) -> Iterator[str]:
    """`llmlens serve --demo` on a free port with a throwaway data folder; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="llmlens-screenshots-") as tmp:
        ready = Path(tmp) / "ready"
        command = [sys.executable, "-m", "llmlens.cli", "serve", "--demo", "--data", str(Path(tmp) / "data")]
        command += ["--port", "0", "--otlp-grpc-port", "0", "--ready-file", str(ready)]
        with open(Path(tmp) / "server.log", "wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + startup_timeout_s
            while not (ready.exists() and ready.read_text()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = (Path(tmp) / "server.log").read_text(errors="replace")[-3000:]
                    raise SystemExit(f"the demo server did not start:\n{output}")
                time.sleep(0.1)
            yield ready.read_text().strip()  # the server writes its URL there once it listens
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _charts_drawn(page: Page) -> None:
    page.locator(".chart-canvas .uplot, .spark .uplot").first.wait_for()


def _open(page: Page, url: str, charts: bool) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    if charts:
        _charts_drawn(page)


def shoot_pages(browser: Browser, base: str, out: Path) -> list[str]:
    page = browser.new_page(viewport=VIEWPORT)
    for name, (path, charts) in PAGES.items():
        _open(page, base + path, charts)
        page.screenshot(path=str(out / f"{name}.png"))
    page.close()
    return list(PAGES)


def shoot_trace_and_session(browser: Browser, base: str, out: Path) -> list[str]:
    """A trace found by its text, with its LLM call open; then the session it belongs to."""
    page = browser.new_page(viewport=VIEWPORT)
    _open(page, base + "/traces?q=password&status=ok", False)
    page.locator(".trace-link").first.click()
    page.wait_for_url(re.compile(r"/traces/[0-9a-f]{32}"))
    page.locator("#span-detail h2").wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / "trace.png"))
    page.locator("#session-link").click()
    page.wait_for_url(re.compile(r"/sessions/"))
    page.locator(".transcript .turn").first.wait_for()
    page.screenshot(path=str(out / "session.png"))
    page.close()
    return ["trace", "session"]


def shoot_sql(browser: Browser, base: str, out: Path) -> list[str]:
    """The SQL console after one of its example queries ran and charted its result."""
    page = browser.new_page(viewport=VIEWPORT)
    _open(page, base + "/sql", False)
    page.get_by_role("link", name="Cost per feature (7 days)").click()
    page.wait_for_url(re.compile(r"/sql\?"))
    _charts_drawn(page)
    page.screenshot(path=str(out / "sql.png"))
    page.close()
    return ["sql"]


def shoot_insights(browser: Browser, base: str, out: Path) -> list[str]:
    page = browser.new_page(viewport=ViewportSize(width=1280, height=900))
    page.set_default_timeout(120_000)  # the findings are computed on first visit; the page reloads until then
    page.goto(base + "/insights?range=7d")
    page.locator("#insights").wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / "insights.png"))
    page.close()
    return ["insights"]


def _api(base: str, method: str, path: str, doc: dict[str, object] | None = None) -> dict[str, object]:
    import json
    import urllib.request

    data = json.dumps(doc).encode() if doc is not None else None
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        answer: dict[str, object] = json.loads(response.read())
    return answer


def shoot_quality(browser: Browser, base: str, out: Path) -> list[str]:
    """An experiment on the demo's thumbs-down support answers (two models, judged by the demo's stand-in), and
    the review page of an annotation queue."""
    started = _api(
        base,
        "POST",
        "/api/v1/experiments",
        {
            "dataset": {
                "name": "support-misses",
                "filter": {"feature": "support_chat", "feedback": "thumbs_down", "range": "7d", "limit": 12},
            },
            "variants": [{"model": "claude-3-5-haiku-latest"}, {"model": "gpt-4o-mini"}],
            "evaluators": ["helpfulness", "groundedness"],
        },
    )
    deadline = time.monotonic() + 180
    while not _api(base, "GET", f"/api/v1/experiments/{started['id']}")["finished"]:
        if time.monotonic() > deadline:
            raise SystemExit("the demo experiment did not finish in 180 s")
        time.sleep(0.5)
    queue = {
        "name": "support-review",
        "filter": {"feature": "support_chat", "feedback": "thumbs_down", "range": "7d", "limit": 40},
        "score": {"name": "reviewed_quality", "type": "numeric", "min": 1, "max": 5},
    }
    _api(base, "POST", "/api/v1/annotation-queues", queue)
    page = browser.new_page(viewport=ViewportSize(width=1280, height=900))
    _open(page, f"{base}{started['url']}", False)
    page.screenshot(path=str(out / "experiment.png"))
    _open(page, base + "/annotations/support-review", False)
    page.screenshot(path=str(out / "annotation_queue.png"))
    page.close()
    return ["experiment", "annotation_queue"]


SHOOTS = {
    "pages": shoot_pages,
    "trace": shoot_trace_and_session,
    "sql": shoot_sql,
    "insights": shoot_insights,
    "quality": shoot_quality,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="folder for the PNG files")
    parser.add_argument("--only", help=f"comma-separated groups to take: {', '.join(SHOOTS)} (default: all)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: run scripts/setup-test-env.sh (it installs Debian's chromium)", file=sys.stderr)
        return 1
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with demo_server() as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        written: list[str] = []
        try:
            wanted = args.only.split(",") if args.only else list(SHOOTS)
            unknown = sorted(set(wanted) - set(SHOOTS))
            if unknown:
                raise SystemExit(f"--only: unknown group(s) {', '.join(unknown)}; known: {', '.join(SHOOTS)}")
            for name in wanted:
                written += SHOOTS[name](browser, base, out)
        finally:
            browser.close()
    print(f"{len(written)} screenshots written to {out}: {', '.join(f'{name}.png' for name in written)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
