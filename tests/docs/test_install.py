"""The README's ways in, on a fresh copy of the repository and fresh virtual environments:
`pip install '.[server]'` from a clone, and the wheel that `make dist` builds. Each ends with a
server answering on its demo data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ._blocks import REPO, code_blocks

# Each builds and installs into a fresh venv and starts a demo: minutes on a busy 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


# The pages a user opens first: each reads a different part of the store.
INSTALLED_PAGES = ("/", "/cost", "/latency", "/prompts", "/prompts/support_answer", "/tools", "/feedback")
INSTALLED_PAGES += ("/traces", "/sessions", "/insights", "/alerts", "/sql")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fresh_clone(into: Path) -> Path:
    """The tracked (and new, not ignored) files of this checkout: what a clone of it would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    clone = into / "llmlens"
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            target = clone / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return clone


def _clean_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMLENS_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    # The README's commands serve on 4318; the test moves them to a free port through the documented variable.
    env["LLMLENS_PORT"] = str(port)
    env["LLMLENS_OTLP_GRPC_PORT"] = "0"
    return env


def _wait_for_demo(proc: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            overview = httpx.get(f"http://127.0.0.1:{port}/api/v1/overview?range=24h", timeout=5)
            if overview.status_code == 200 and overview.json()["overview"]["totals"]["llm_calls"]:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no demo data served within {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _readme_install_block() -> str:
    blocks = [b for b in code_blocks(REPO / "README.md") if "pip install '.[server]'" in b.text]
    assert len(blocks) == 1, "the README shows the install-from-a-clone route in exactly one block"
    return blocks[0].text


def test_readme_install_from_a_clone_then_make_demo(tmp_path: Path) -> None:
    clone = _fresh_clone(tmp_path)
    port = _free_port()
    log = tmp_path / "install.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", _readme_install_block()],
            cwd=clone,
            env=_clean_env(port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_demo(proc, port, log, timeout_s=900)
    finally:
        _stop(proc)
    # Then the README's first command, in the same clone: `make demo` reuses the venv and serves the demo.
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["make", "demo"],
            cwd=clone,
            env=_clean_env(port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_demo(proc, port, log, timeout_s=600)
    finally:
        _stop(proc)


def test_wheel_from_make_dist_installs_in_a_fresh_venv(tmp_path: Path) -> None:
    clone = _fresh_clone(tmp_path)
    env = _clean_env(_free_port())
    built = subprocess.run(["make", "dist"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (clone / "dist").glob("llmlens-*.whl")
    venv = tmp_path / "venv"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[server]"], capture_output=True, text=True, timeout=900
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The server needs no array library: numpy alone was a third of the install.
    for absent in ("numpy", "pandas", "pyarrow"):
        probe = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {absent}"], capture_output=True)
        assert probe.returncode != 0, f"{absent} is installed by llmlens[server]"
    port = int(env["LLMLENS_PORT"])
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "llmlens"), "serve", "--demo", "--data", str(tmp_path / "data")],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_demo(proc, port, log, timeout_s=300)
        # Every page and every range, so each read path (rollup quantiles, forecast, insights) runs here.
        base = f"http://127.0.0.1:{port}"
        for path in INSTALLED_PAGES:
            for window in ("24h", "7d", "30d"):
                page = httpx.get(f"{base}{path}?range={window}", timeout=60)
                assert page.status_code == 200 and "<html" in page.text.lower(), (path, window, page.text[-2000:])
        deadline = time.monotonic() + 120
        while (doc := httpx.get(f"{base}/api/v1/insights?range=7d", timeout=60).json())["status"] == "computing":
            assert time.monotonic() < deadline, "no insights within 120 s"
            time.sleep(1)
        # The demo plants findings for every tier, the semantic one (vectors from the stand-in) included.
        assert doc["insights"] and not doc["errors"], doc
        tiers = {i["scope"].get("tier") for i in doc["insights"] if i["kind"] == "cacheable_prompts"}
        assert "semantic" in tiers, tiers
    finally:
        _stop(proc)
