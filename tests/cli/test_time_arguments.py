"""One reading of time arguments everywhere: every command and API parameter that takes a time accepts a
relative time (`1d`), an ISO 8601 time and epoch seconds, and refuses anything else in the same words."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.cli._run import llmlens
from tests.support.llmlens_server import LLMLensServer

REFUSAL = (
    "must be a relative time like 30m, 12h, 7d or 2w (that long ago), an ISO 8601 time like "
    "2026-03-01T12:00:00Z, or epoch seconds, got 'garbage'"
)
TWO_DAYS_AGO = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
ISO = TWO_DAYS_AGO.strftime("%Y-%m-%dT%H:%M:%SZ")
EPOCH = str(int(TWO_DAYS_AGO.timestamp()))
CALL = {"type": "llm", "model": "gpt-4o-mini", "prompt": "q", "response": "a", "prompt_tokens": 10,
        "completion_tokens": 5, "latency_ms": 12}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("times") / "data"
    event = {**CALL, "timestamp": time.time() - 3600}
    done = llmlens("import", "-", "--data", str(folder), "--quiet", stdin=json.dumps(event))
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


def command(name: str, option: str, value: str, data: Path, out: Path) -> list[str]:
    """The command line of `name` with its time option set to `value`, against the store in `data`."""
    target = ["--data", str(data)]
    return {
        "export": ["export", option, value, "--format", "jsonl", "--out", str(out / "x.jsonl"), *target],
        "report": ["report", "cost", option, value, "--format", "json", *target],
        "tail": ["tail", option, value, "--limit", "1", "--interval", "0.1", "--format", "json", *target],
        "reprice": ["reprice", option, value, *target],
        "rollups": ["rollups", "rebuild", option, value, *target],
    }[name]


OPTIONS = [
    ("export", "--since"),
    ("export", "--until"),
    ("report", "--window"),
    ("tail", "--since"),
    ("reprice", "--since"),
    ("rollups", "--since"),
]


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_each_command_reads_relative_iso_and_epoch_times(name: str, option: str, data: Path, tmp_path: Path) -> None:
    # --until takes the end of the range: a time before the call would export nothing, which is fine too.
    for value in ("1d", ISO, EPOCH):
        done = llmlens(*command(name, option, value, data, tmp_path))
        assert done.returncode == 0, f"{name} {option} {value}: {done.stderr}"


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_each_command_refuses_garbage_in_the_same_words(name: str, option: str, data: Path, tmp_path: Path) -> None:
    done = llmlens(*command(name, option, "garbage", data, tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip() == f"llmlens {name}: {option} {REFUSAL}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("times-server")) as srv:
        srv.ingest([{**CALL, "timestamp": time.time() - 3600}])
        yield srv


@pytest.mark.parametrize(
    ("method", "path", "field", "body"),
    [
        ("GET", "/api/v1/export", "since", False),
        ("GET", "/api/v1/export", "until", False),
        ("GET", "/api/v1/cost", "from", False),
        ("GET", "/api/v1/overview", "to", False),
        ("POST", "/api/v1/admin/reprice", "since", True),
    ],
)
def test_the_api_reads_times_like_the_cli(
    server: LLMLensServer, method: str, path: str, field: str, body: bool
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:

        def ask(value: str) -> httpx.Response:
            if body:
                return c.request(method, path, json={field: value})
            params = {field: value, "format": "jsonl"} if path.endswith("export") else {field: value}
            if field == "to":
                params["from"] = "30d"
            return c.request(method, path, params=params)

        for value in ("1d", ISO, EPOCH):
            answer = ask(value)
            assert answer.status_code == 200, f"{path} {field}={value}: {answer.text}"
        refused = ask("garbage")
        assert refused.status_code == 400 and refused.json()["error"] == f"{field} {REFUSAL}"


def test_dashboard_range_takes_any_duration(server: LLMLensServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/api/v1/cost", params={"range": "14d"}).json()["cost"]["calls"] == 1
        refused = c.get("/api/v1/cost", params={"range": "a fortnight"})
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "range must be one of 1h, 24h, 7d, 30d, 90d or a duration like 30m, 12h, 7d or 2w, got 'a fortnight'"
    )
