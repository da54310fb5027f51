"""Every code block of the README and the docs works as written.

Shell and Python blocks run, in the order a reader meets them, against a real `llmlens serve --demo`
whose gateway and whose clients talk to the stand-in provider; SQL blocks run through the SQL API;
TOML blocks start a real server with them as its config (or price) file; JSON and YAML blocks parse.
The only rewrite is the port: blocks name 127.0.0.1:4318, the test server listens on a free one.
A block that cannot run in a test says why, in a `<!-- not run: ... -->` comment above it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

from ._blocks import PARSE, REPO, RUN, SHOWN, CodeBlock, all_blocks

BLOCKS = all_blocks()
RUNNABLE = [b for b in BLOCKS if b.not_run is None and b.lang in (*RUN, "sql")]
PARSED = [b for b in BLOCKS if b.not_run is None and b.lang in ("toml", "json", "yaml")]
PROMQL = [b for b in BLOCKS if b.not_run is None and b.lang == "promql"]

# Blocks that send data to the server: it must have more spans after them than before.
_SENDS = re.compile(r"llmlens\.init\(|/proxy/|/api/v1/ingest|llmlens import|OpenAI\(|Anthropic\(")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture(scope="module")
def demo(provider: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    upstreams = ["--upstream", f"openai={provider.openai_base_url}", "--upstream", f"anthropic={provider.url}"]
    with LLMLensServer(tmp_path_factory.mktemp("docs-demo"), demo=True, args=upstreams, startup_timeout_s=180) as srv:
        yield srv


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where blocks run: a folder with the clone's `.venv`, as after `make demo`."""
    folder = tmp_path_factory.mktemp("reader")
    (folder / ".venv").symlink_to(REPO / ".venv")
    (folder / "examples").symlink_to(REPO / "examples")
    (folder / "benchmarks").symlink_to(REPO / "benchmarks")
    return folder


def _localized(text: str, srv: LLMLensServer) -> str:
    return re.sub(r"(127\.0\.0\.1|localhost):4318", f"127.0.0.1:{srv.port}", text)


def _environment(srv: LLMLensServer, provider: FakeProvider) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMLENS_", "OPENAI_", "ANTHROPIC_", "OTEL_"))}
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(
        {
            # Where a reader's shell would find the server they started and their provider keys.
            "LLMLENS_URL": srv.url,
            "OPENAI_API_KEY": "sk-docs-test",
            "ANTHROPIC_API_KEY": "sk-ant-docs-test",
            "OPENAI_BASE_URL": provider.openai_base_url,
            "ANTHROPIC_BASE_URL": provider.url,
        }
    )
    return env


def _span_count(srv: LLMLensServer) -> int:
    return int(srv.sql("SELECT count(*) AS n FROM spans")[0]["n"])


def _wait_for_more_spans(srv: LLMLensServer, before: int, block: CodeBlock) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _span_count(srv) > before:
            return
        time.sleep(0.1)
    pytest.fail(f"{block.where}: the block ran but the server stored nothing new")


def _run_python(block: CodeBlock, code: str, cwd: Path, env: dict[str, str]) -> None:
    if "FastAPI()" in code:
        _run_asgi_app(block, code, cwd, env)
        return
    script = cwd / "block.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{block.where} failed:\n{done.stdout}\n{done.stderr}"


def _run_asgi_app(block: CodeBlock, code: str, cwd: Path, env: dict[str, str]) -> None:
    """A block that defines a web app is saved as app.py and served by uvicorn, as the README says."""
    (cwd / "app.py").write_text(code)
    port = _free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)]
    proc = subprocess.Popen(uvicorn, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = httpx.post(
                    f"http://127.0.0.1:{port}/chat/room-1",
                    json={"user": "u-docs", "messages": [{"role": "user", "content": "Hi"}]},
                    timeout=30,
                )
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{block.where}: the app did not start") from None
                time.sleep(0.1)
        assert reply.status_code == 200, f"{block.where}: {reply.status_code} {reply.text}"
        assert reply.json()["answer"], reply.text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert b"Traceback" not in out, out.decode(errors="replace")


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_block_runs_as_written(
    block: CodeBlock, demo: LLMLensServer, provider: FakeProvider, workdir: Path, tmp_path: Path
) -> None:
    code = _localized(block.text, demo)
    before = _span_count(demo)
    if block.lang == "sql":
        for statement in (s for s in code.split(";") if s.strip()):
            demo.sql(statement)
        return
    env = _environment(demo, provider)
    if block.lang == "python":
        _run_python(block, code, workdir, env)
    else:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{block.where} failed:\n{done.stdout}\n{done.stderr}"
    if _SENDS.search(block.text):
        _wait_for_more_spans(demo, before, block)


@pytest.mark.parametrize("block", PARSED, ids=[b.where for b in PARSED])
def test_block_is_accepted(block: CodeBlock, tmp_path: Path) -> None:
    if block.lang == "json":
        json.loads(block.text)
        return
    if block.lang == "yaml":
        yaml.safe_load(block.text)
        return
    # TOML: a config file (or a price file) that a real server starts with.
    path = tmp_path / ("prices.toml" if "[[models]]" in block.text else "llmlens.toml")
    path.write_text(block.text)
    flag = "--price-file" if path.name == "prices.toml" else "--config"
    with LLMLensServer(tmp_path / "data", args=[flag, str(path)]) as srv, srv.client() as client:
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("block", PROMQL, ids=[b.where for b in PROMQL])
def test_promql_names_metrics_the_server_exports(block: CodeBlock, demo: LLMLensServer) -> None:
    """No Prometheus here to run the queries: every metric they name must be in the demo's /metrics."""
    with demo.client() as client:
        exported = client.get("/metrics").text
    named = set(re.findall(r"\bllmlens_[a-z0-9_]+", block.text))
    assert named, f"{block.where}: names no llmlens metric"
    # A labelled family with no samples yet still has its TYPE line (histograms without their suffixes).
    families = set(re.findall(r"^# TYPE (\S+) ", exported, re.MULTILINE))
    missing = sorted(name for name in named if not {name, re.sub(r"_(total|bucket|sum|count)$", "", name)} & families)
    assert not missing, f"{block.where}: /metrics has no {', '.join(missing)}"


def test_every_block_says_what_it_is() -> None:
    """An untagged block would escape every check above: each one names its language."""
    unknown = [f"{b.where} ({b.lang or 'no language'})" for b in BLOCKS if b.lang not in (*RUN, *PARSE, *SHOWN)]
    assert not unknown, "tag these blocks bash, python, sql, toml, json, yaml or text: " + ", ".join(unknown)
    assert RUNNABLE and PARSED


def test_every_skipped_block_gives_a_reason_that_names_its_check() -> None:
    skipped = [b for b in BLOCKS if b.not_run is not None]
    for block in skipped:
        assert len(block.not_run or "") > 15, f"{block.where}: say why it is not run and what checks it instead"
