"""Running the `llmlens` command as a user would, in a subprocess with this environment minus LLMLENS_* settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def llmlens(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLENS_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "llmlens.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=cwd,
        env=env,
        timeout=120,
    )
