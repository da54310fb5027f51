"""The suite's rules on skips, run on a small throwaway suite: an unlisted skip fails the run and is named,
a documented platform limit does not, and a parametrised test with no parameters fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests._plugins.skip_audit import PLATFORM_LIMITS

REPO = Path(__file__).resolve().parents[2]


def _pytest(tmp_path: Path, test_source: str) -> subprocess.CompletedProcess[str]:
    """pytest with this repository's configuration on one test file, the skip audit loaded as in tests/conftest.py."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests._plugins.skip_audit"]\n')
    (tmp_path / "test_sample.py").write_text(test_source)
    # Only the plugins this needs: loading every installed one would be most of the run's time.
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path)]
    command += ["-p", "pytest_timeout", "-p", "no:cacheprovider", str(tmp_path)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_a_skip_for_a_missing_prerequisite_fails_the_run(tmp_path: Path) -> None:
    done = _pytest(
        tmp_path,
        "import pytest\n\n"
        "def test_passes():\n    assert True\n\n"
        "def test_needs_a_tool():\n    pytest.skip('the tool is not installed')\n",
    )
    assert done.returncode == 1, done.stdout
    assert "1 skipped" in done.stdout
    assert "NOT ALLOWED: test_sample.py::test_needs_a_tool: the tool is not installed" in done.stdout


def test_a_skip_at_import_fails_the_run(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "import pytest\n\nmissing = pytest.importorskip('no_such_module_here')\n")
    assert done.returncode == 1, done.stdout
    assert "NOT ALLOWED: test_sample.py: could not import 'no_such_module_here'" in done.stdout


def test_a_documented_platform_limit_is_listed_and_allowed(tmp_path: Path) -> None:
    reason = next(iter(PLATFORM_LIMITS))
    done = _pytest(
        tmp_path, f"import pytest\n\n@pytest.mark.skipif(True, reason={reason!r})\ndef test_x():\n    pass\n"
    )
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
    assert f"platform limit: test_sample.py::test_x: {reason}" in done.stdout


def test_a_clean_run_says_none_were_skipped(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "def test_x():\n    assert True\n")
    assert done.returncode == 0, done.stdout
    assert "0 skipped" in done.stdout


def test_an_empty_parameter_set_fails(tmp_path: Path) -> None:
    done = _pytest(
        tmp_path, "import pytest\n\n@pytest.mark.parametrize('fixture_file', [])\ndef test_x(fixture_file):\n    pass\n"
    )
    assert done.returncode != 0, done.stdout
    assert "Empty parameter set" in done.stdout
