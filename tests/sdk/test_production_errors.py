"""The SDK's production error path: in an app run without pytest (so nothing is re-raised), a broken
exporter, a bad attribute or a full queue leaves every call of the app returning what it returns, and
logs exactly one warning for each kind of failure, however often it happens."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support.broken_upstream import closed_port
from tests.support.llmlens_server import LLMLensServer

APP = Path(__file__).with_name("_production_app.py")
CALLS = 10
ANSWERS = [f"answer {i}" for i in range(CALLS)]
UNENCODABLE = (
    r"llmlens: an event holds a value that cannot be written as JSON \(.+\); such values are sent as a placeholder"
)


@dataclass
class Run:
    out: dict[str, Any]
    warnings: list[str]  # messages of the `llmlens` loggers' records at WARNING and above, in order
    session: str

    @property
    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.out["stats"]
        return stats


def run_app(scenario: str, url: str, tmp_path: Path) -> Run:
    session = f"prod-{uuid.uuid4().hex[:12]}"
    # The production path: no PYTEST_CURRENT_TEST (the SDK would re-raise) and no LLMLENS_* settings.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST" and not k.startswith("LLMLENS_")}
    done = subprocess.run(
        [sys.executable, str(APP), scenario, url, str(tmp_path), session],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"the app failed:\n{done.stderr[-4000:]}"
    records = []
    for line in done.stderr.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"the app wrote something other than a log record on stderr: {line!r}\n{done.stderr[-4000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["should_raise"] is False, "the app ran with the SDK re-raising its errors: not the production path"
    warnings = [
        r["message"]
        for r in records
        if r["logger"].split(".")[0] == "llmlens" and r["level"] in ("WARNING", "ERROR", "CRITICAL")
    ]
    return Run(out, warnings, session)


def assert_warned_once_each(run: Run, *patterns: str) -> None:
    """Each pattern matches exactly one warning, and every warning matches one of them."""
    for pattern in patterns:
        matching = [w for w in run.warnings if re.match(pattern, w)]
        assert len(matching) == 1, f"{pattern!r} matched {len(matching)} warnings: {run.warnings}"
    unexpected = [w for w in run.warnings if not any(re.match(p, w) for p in patterns)]
    assert unexpected == [], unexpected


def stored(server: LLMLensServer, session: str) -> list[dict[str, Any]]:
    rows = server.sql(f"SELECT span_id, attributes FROM spans WHERE session_id = '{session}'")
    for row in rows:
        row["attributes"] = json.loads(row["attributes"]) if isinstance(row["attributes"], str) else row["attributes"]
    return sorted(rows, key=lambda r: int(r["attributes"]["i"]))


# -- a broken exporter -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1:4318", "localhost:4318", "http://127.0.0.1:port", "http://[::1", "http://127.0.0.1:99999"],
)
def test_a_url_that_is_not_http_leaves_the_sdk_off(url: str, tmp_path: Path) -> None:
    run = run_app("bad-url", url, tmp_path)
    assert run.out["init"] is False
    assert run.out["returned"] == ANSWERS
    assert_warned_once_each(run, re.escape("llmlens: llmlens url (init(url=...) or LLMLENS_URL) must be http(s)"))
    assert run.warnings[0].endswith("the SDK stays off") and repr(url) in run.warnings[0]
    counters = ("queued", "spooled", "sent", "dropped", "retried", "failed", "rejected", "batches")
    assert run.stats == dict.fromkeys(counters, 0)


def test_a_spool_folder_that_cannot_be_made_costs_only_the_spool(server: LLMLensServer, tmp_path: Path) -> None:
    run = run_app("spool-not-a-folder", server.url, tmp_path)
    assert run.out["init"] is True and run.out["returned"] == ANSWERS
    assert_warned_once_each(run, r"llmlens: cannot use spool_dir '.*a-file/spool' \(\[Errno 20\] Not a directory")
    assert run.out["flushed"] is True
    assert run.stats["sent"] == CALLS and run.stats["failed"] == 0
    assert [r["attributes"]["i"] for r in stored(server, run.session)] == list(range(CALLS))


def test_a_spool_folder_gone_during_an_outage(tmp_path: Path) -> None:
    run = run_app("spool-gone", f"http://127.0.0.1:{closed_port()}", tmp_path)
    assert run.out["init"] is True and run.out["returned"] == [f"answer {i}" for i in range(40)]
    assert_warned_once_each(
        run,
        r"llmlens: cannot deliver to http://127\.0\.0\.1:\d+ \(ConnectionRefusedError",
        r"llmlens: the spool folder cannot be used any more \(\[Errno 20\] Not a directory",
    )
    # Asking for the counters did not raise in the app (it did when the spool folder was gone).
    assert run.out["stats_during"]["spooled"] == 0
    assert run.out["flushed"] is False
    # Every event waits in memory: none lost, none sent.
    assert run.stats["queued"] == 40 and run.stats["dropped"] == 0 and run.stats["sent"] == 0


def test_a_transport_that_raises_fails_its_batches_and_says_so_once(server: LLMLensServer, tmp_path: Path) -> None:
    run = run_app("transport-raises", server.url, tmp_path)
    assert run.out["init"] is True and run.out["returned"] == ANSWERS
    assert_warned_once_each(run, re.escape("llmlens: internal error in sending a batch (your code is still running"))
    # Three batches of at most four, each counted failed: none left stuck in the queue, retried forever.
    assert run.out["flushed"] is True
    assert run.stats["failed"] == CALLS and run.stats["queued"] == 0 and run.stats["sent"] == 0


def test_a_server_that_is_down(tmp_path: Path) -> None:
    run = run_app("server-down", f"http://127.0.0.1:{closed_port()}", tmp_path)
    assert run.out["init"] is True and run.out["returned"] == ANSWERS
    assert_warned_once_each(run, r"llmlens: cannot deliver to http://127\.0\.0\.1:\d+ \(ConnectionRefusedError")
    assert run.out["flushed"] is False
    assert run.stats["queued"] == CALLS and run.stats["retried"] >= 1 and run.stats["dropped"] == 0


# -- a full queue ----------------------------------------------------------------------------------


def test_a_full_queue_drops_the_oldest_and_warns_once(server: LLMLensServer, tmp_path: Path) -> None:
    run = run_app("full-queue", server.url, tmp_path)
    assert run.out["returned"] == [f"answer {i}" for i in range(1000)]
    assert_warned_once_each(run, re.escape("llmlens: export queue full (10 events); dropping the oldest"))
    assert run.out["flushed"] is True
    assert (run.stats["dropped"], run.stats["sent"], run.stats["queued"]) == (990, 10, 0)
    assert [r["attributes"]["i"] for r in stored(server, run.session)] == list(range(990, 1000))


# -- bad attributes --------------------------------------------------------------------------------


def _bad_attributes(server: LLMLensServer, run: Run) -> list[Any]:
    """The value of `bad` on each stored span (every span is stored; the odd ones carry "fine")."""
    assert run.out["init"] is True and run.out["returned"] == ANSWERS
    assert run.out["flushed"] is True
    assert (run.stats["sent"], run.stats["failed"], run.stats["rejected"]) == (CALLS, 0, 0)
    rows = stored(server, run.session)
    assert [r["attributes"]["i"] for r in rows] == list(range(CALLS))
    return [r["attributes"].get("bad") for r in rows[::2]]


PLACEHOLDERS = {
    "unprintable-value": "[not sent: Unprintable value that cannot be written as JSON]",
    "tuple-keys-value": {"('a', 1)": "x", "ok": 1},
    "circular-value": {"name": "loop", "self": "[not sent: a reference back to a containing value]"},
}


@pytest.mark.parametrize("scenario", list(PLACEHOLDERS))
def test_a_value_json_cannot_hold_is_replaced_and_the_span_kept(
    scenario: str, server: LLMLensServer, tmp_path: Path
) -> None:
    run = run_app(scenario, server.url, tmp_path)
    assert_warned_once_each(run, UNENCODABLE)
    assert _bad_attributes(server, run) == [PLACEHOLDERS[scenario]] * (CALLS // 2)


def test_a_value_nested_too_deep_is_cut_where_it_gets_too_deep(server: LLMLensServer, tmp_path: Path) -> None:
    run = run_app("too-deep-value", server.url, tmp_path)
    assert_warned_once_each(run, UNENCODABLE)
    for value in _bad_attributes(server, run):
        depth = 0
        while isinstance(value, list):
            (value,) = value
            depth += 1
        assert value == "[not sent: list value nested more than 32 deep]"
        assert depth == 32 - 2  # the event and its `attributes` are the two levels above `bad`


def test_a_plain_object_is_sent_as_its_text_without_a_warning(server: LLMLensServer, tmp_path: Path) -> None:
    run = run_app("opaque-value", server.url, tmp_path)
    assert run.warnings == []
    assert _bad_attributes(server, run) == ["opaque-object"] * (CALLS // 2)


def test_a_huge_value_is_cut_and_the_span_kept(server: LLMLensServer, tmp_path: Path) -> None:
    run = run_app("huge-value", server.url, tmp_path)
    assert_warned_once_each(
        run,
        r"llmlens: an event of \d+ characters was too large to send whole; its strings over 200000 characters were cut",
    )
    marker = "…[cut by the llmlens SDK from 20000000 chars]"
    # Cut to what the server keeps of a string (200 000 characters by default), so it arrives as sent.
    assert _bad_attributes(server, run) == ["h" * (200_000 - len(marker)) + marker] * (CALLS // 2)


def test_large_values_are_sent_in_batches_the_server_accepts(server: LLMLensServer, tmp_path: Path) -> None:
    # Ten spans of 6 MB each: one batch of them would be over the server's 50 MiB limit, refused whole.
    run = run_app("large-values", server.url, tmp_path)
    assert run.warnings == []
    # The server keeps 200 000 characters of each (its max_field_chars), as it would of any such value.
    assert _bad_attributes(server, run) == ["L" * 200_000 + "…[truncated 5800000 chars]"] * (CALLS // 2)
    assert run.stats["batches"] >= 5  # two of them at most in a batch
