"""`llmlens proxy` announces only what it serves, and the status page it announces answers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from tests.support.fake_provider import FakeProvider


@pytest.fixture
def upstream() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


def test_proxy_status_page_is_where_it_says(tmp_path: Path, upstream: FakeProvider) -> None:
    ready, log = tmp_path / "ready", tmp_path / "proxy.log"
    cmd = [sys.executable, "-m", "llmlens.cli", "proxy", "--data", str(tmp_path / "data"), "--port", "0"]
    cmd += ["--otlp-grpc-port", "0", "--ready-file", str(ready), "--upstream", f"openai={upstream.openai_base_url}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLENS_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text()):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "llmlens proxy did not start"
            time.sleep(0.05)
        url = ready.read_text()
        banner = next(line for line in log.read_text().splitlines() if "serving on" in line)
        assert "UI" not in banner and "/v1/traces" not in banner, banner  # neither is served here
        announced = re.search(r"status page (http://\S+?/)[,)\s]", banner)
        assert announced, banner

        client = openai.OpenAI(base_url=url + "/proxy/openai/v1", api_key="sk-x", max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

        page = httpx.get(announced.group(1), timeout=30)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f"{url}/proxy/openai" in page.text and upstream.openai_base_url.rstrip("/") in page.text
        assert "llmlens serve --data" in page.text  # where the dashboards are
        deadline = time.monotonic() + 20
        while (doc := httpx.get(url + "/api/v1/gateway/status", timeout=30).json())["calls"] < 1:
            assert time.monotonic() < deadline, doc
            time.sleep(0.05)
        assert doc["calls"] == 1 and doc["project"] == "default"
        assert doc["upstreams"]["openai"] == upstream.openai_base_url.rstrip("/")
        assert '<b id="calls">1</b>' in httpx.get(url + "/", timeout=30).text
        assert httpx.get(url + "/v1/traces").status_code in (404, 405)
    finally:
        proc.terminate()
        proc.wait(20)
