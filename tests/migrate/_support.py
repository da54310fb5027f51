"""What the migration tests share: running a client app in its own process, and the `llmlens` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SETUP = "run scripts/setup-test-env.sh (it installs the test extra: pip install -e '.[server,clickhouse,test]')"


def require(*modules: str) -> None:
    """A missing client package is a failure naming the setup step, never a skip."""
    for module in modules:
        if find_spec(module.split(".")[0]) is None or find_spec(module) is None:
            pytest.fail(f"{module} is not installed: {SETUP}")


def run_app(module: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m module args` (clients patch globals: each app gets its own process); its last line."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_", "PHOENIX_", "LANGSMITH_"))
    }
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert lines, f"{module} printed nothing; stderr:\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    result["stderr"] = done.stderr
    return result


def llmlens(*args: str) -> subprocess.CompletedProcess[str]:
    """The `llmlens` command as a user runs it (no LLMLENS_* settings from this environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLENS_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "llmlens.cli", *args], capture_output=True, text=True, env=env, timeout=120, cwd=REPO
    )
