"""`llmlens replay` and `llmlens compare` against a running server print the table and store the replays."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.replay.conftest import ReplayEnv
from tests.replay.test_replay_calls import ingest_native
from tests.support.fake_provider import FakeProvider


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LLMLENS_URL"} | {"COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "llmlens.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_replay_and_compare_commands(env: ReplayEnv, fp: FakeProvider) -> None:
    span_id = ingest_native(
        env, model="gpt-4o-mini", feature="cli-feature", input_messages=[{"role": "user", "content": "CLI call"}]
    )
    done = cli("replay", span_id, "--url", env.server.url, "--temperature", "0.3", "--scorer", "exact_match")
    assert done.returncode == 0, done.stderr
    assert "Fake reply to: CLI call" in done.stdout and "Per model" in done.stdout
    assert fp.last_request.json["temperature"] == 0.3
    done = cli(
        "compare", "--url", env.server.url, "--filter", "feature=cli-feature",
        "--models", "gpt-4o-mini,anthropic:claude-3-5-haiku-latest", "--scorer", "contains:CLI",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "claude-3-5-haiku-latest" in done.stdout and "original" in done.stdout
    run_id = done.stdout.strip().rsplit(" ", 1)[-1]
    rows = env.server.sql(f"SELECT count(*) AS n FROM llm_logs WHERE trace_id = '{run_id}'")
    assert rows == [{"n": 2}]


def test_cli_names_a_missing_span(env: ReplayEnv) -> None:
    done = cli("replay", "0123456789abcdef", "--url", env.server.url)
    assert done.returncode == 1 and "no span '0123456789abcdef'" in done.stderr
