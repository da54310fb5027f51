"""`llmlens proxy`: only the gateway, its budget API and the health check."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
from tests.support.fake_provider import FakeProvider


def test_llmlens_proxy_serves_only_the_gateway(tmp_path: Path, upstream: FakeProvider) -> None:
    ready = tmp_path / "ready"
    cmd = [sys.executable, "-m", "llmlens.cli", "proxy", "--data", str(tmp_path / "data"), "--port", "0"]
    cmd += ["--otlp-grpc-port", "0", "--ready-file", str(ready), "--upstream", f"openai={upstream.openai_base_url}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        url = ready.read_text()
        client = openai.OpenAI(base_url=url + "/proxy/openai/v1", api_key="sk-x", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Fake reply to: hi"
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/api/v1/budgets").status_code == 200
        assert httpx.post(url + "/api/v1/sql", json={"query": "SELECT 1"}).status_code == 404
    finally:
        proc.terminate()
        proc.wait(20)
