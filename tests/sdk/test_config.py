"""Configuration is read once, from `init` arguments, else `LLMLENS_*` variables; exit flushes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from tests.sdk._capture import CaptureServer

import llmlens
from llmlens.sdk._config import resolve_config


def test_arguments_win_over_environment() -> None:
    env = {
        "LLMLENS_URL": "http://env:1/",
        "LLMLENS_API_KEY": "k-env",
        "LLMLENS_PROJECT": "p-env",
        "LLMLENS_SERVICE": "svc-env",
        "LLMLENS_ENVIRONMENT": "staging",
        "LLMLENS_CAPTURE_CONTENT": "false",
        "LLMLENS_SPOOL_DIR": "/tmp/spool",
        "LLMLENS_MAX_QUEUE_SIZE": "123",
    }
    config = resolve_config(environ=env)
    assert config is not None
    assert (config.url, config.api_key, config.project, config.service) == ("http://env:1", "k-env", "p-env", "svc-env")
    assert config.environment == "staging" and config.capture_content is False
    assert config.spool_dir == "/tmp/spool" and config.max_queue_size == 123
    override = resolve_config(url="http://arg:2", project="p-arg", capture_content=True, environ=env)
    assert override is not None
    assert (override.url, override.project, override.capture_content) == ("http://arg:2", "p-arg", True)
    assert resolve_config(environ={}) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LLMLENS_URL", "ftp://x"),
        ("LLMLENS_URL", "http://host:port"),  # used to raise later, in init, past its error handling
        ("LLMLENS_CAPTURE_CONTENT", "maybe"),
        ("LLMLENS_TIMEOUT", "x"),
        ("LLMLENS_MAX_BATCH_SIZE", "0"),  # used to leave every event in the queue
        ("LLMLENS_SCHEDULE_DELAY", "-1"),  # used to spin the exporter thread
        ("LLMLENS_API_KEY", "sk-key\n"),  # a key read from a file with its newline: every send used to fail
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    env = {"LLMLENS_URL": "http://ok:1", name: value}
    with pytest.raises(ValueError, match="LLMLENS_URL|" + name):
        resolve_config(environ=env)


def test_env_only_init_sends_with_api_key_header(capture: CaptureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMLENS_URL", capture.url)
    monkeypatch.setenv("LLMLENS_API_KEY", "secret-key")
    monkeypatch.setenv("LLMLENS_SCHEDULE_DELAY", "0.05")
    assert llmlens.init()
    llmlens.log_tool_call("t", {}, None, 1.0, True)
    assert llmlens.flush(5)
    assert capture.requests[0]["headers"]["Authorization"] == "Bearer secret-key"


def test_interpreter_exit_flushes_what_is_queued(capture: CaptureServer) -> None:
    script = textwrap.dedent(
        f"""
        import llmlens
        llmlens.init(url={capture.url!r}, schedule_delay_s=60)
        for i in range(250):
            llmlens.log_tool_call(f"t{{i}}", {{}}, None, 1.0, True)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30, env=env)
    assert len(capture.events) == 250
