"""A ClickHouse database made by an older llmlens is refused with the `llmlens migrate --store` command to
run; that command gives it the current `feedback_events` view (ClickHouse views are created once, so a
changed body needs a schema version) and rollups of the spans it already holds."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from clickhouse_driver import Client

from llmlens.cli import main
from llmlens.model import Feedback, Span
from llmlens.store import open_store

pytestmark = pytest.mark.clickhouse

NOW_US = (int(time.time()) - 60) * 1_000_000

# `feedback_events` as schema version 1 created it: the rated call's feature, nothing else.
VERSION_1_FEEDBACK_EVENTS = (
    "SELECT fb.user_id AS user_id, fb.session_id AS session_id, fb.message_id AS message_id, "
    "fb.feedback_type AS feedback_type, fb.feedback_text AS feedback_text, fb.timestamp AS timestamp, "
    "m.feature AS feature, fb.trace_id AS trace_id, fb.span_id AS span_id, fb.feedback_id AS feedback_id, "
    "fb.metadata AS metadata, fb.project AS project FROM (SELECT * FROM llmlens_feedback) AS fb "
    "ANY LEFT JOIN (SELECT project, message_id, any(feature) AS feature FROM llmlens_spans "
    "WHERE kind = 'llm' AND message_id IS NOT NULL GROUP BY project, message_id) AS m "
    "ON m.project = fb.project AND m.message_id = fb.message_id"
)


def _make_it_version_1(client: Client) -> None:
    client.execute("DROP TABLE feedback_events")
    client.execute(f"CREATE VIEW feedback_events AS {VERSION_1_FEEDBACK_EVENTS}")
    client.execute("DROP TABLE llmlens_meta")
    client.execute(
        "CREATE TABLE llmlens_meta (key String, value String, updated DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree(updated) ORDER BY key"
    )
    client.execute("INSERT INTO llmlens_meta (key, value) VALUES", [("schema_version", "1")])


def test_migrating_an_older_database_replaces_the_feedback_view(
    clickhouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = clickhouse_url.rsplit("/", 1)[0] + f"/upgrade_{uuid.uuid4().hex[:12]}"
    call = Span(
        trace_id="t" * 32,
        span_id="s" * 16,
        kind="llm",
        name="chat",
        start_us=NOW_US,
        status="ok",
        message_id="m1",
        user_id="u1",
        session_id="s1",
        feature="chat",
    )
    store = open_store(url, tmp_path)
    try:
        store.write([call], [Feedback("f1", "m1", "thumbs_up", NOW_US)])
    finally:
        store.close()
    client = Client.from_url(url)
    try:
        _make_it_version_1(client)
        assert client.execute("SELECT user_id, feature FROM feedback_events") == [(None, "chat")]
        client.execute("DROP TABLE llmlens_rollup_hour_mv")  # as version 1 had no rollups
        client.execute("DROP TABLE llmlens_rollup_hour")

        with pytest.raises(RuntimeError) as refused:
            open_store(url, tmp_path)
        assert "schema version 1, older than this llmlens" in str(refused.value)
        assert f"run `llmlens migrate --store {url.replace('default:@', 'default@')}`" in str(refused.value)
        assert main(["serve", "--store", url, "--port", "0"]) == 1
        assert "llmlens migrate --store" in capsys.readouterr().err

        assert main(["migrate", "--store", url]) == 0
        assert "schema version 1 brought up to date" in capsys.readouterr().out
        store = open_store(url, tmp_path)
        try:
            rows = store.query("SELECT user_id, session_id, feature FROM feedback_events").rows
            rolled = store.query("SELECT feature, sum(calls) FROM store.rollup_hour GROUP BY feature").rows
        finally:
            store.close()
        assert rows == [["u1", "s1", "chat"]]
        assert rolled == [["chat", 1]], "the migration rolled up the spans already stored"
    finally:
        client.disconnect()


def test_two_schema_versions_written_in_one_second_read_as_the_newer(clickhouse_url: str, tmp_path: Path) -> None:
    """The meta table stamps rows with whole seconds: a migration in the same second as an older version's
    row must not read back as the older one (the store would refuse itself)."""
    url = clickhouse_url.rsplit("/", 1)[0] + f"/same_second_{uuid.uuid4().hex[:12]}"
    open_store(url, tmp_path).close()
    client = Client.from_url(url)
    try:
        (stamp,) = client.execute("SELECT max(updated) FROM llmlens_meta WHERE key = 'schema_version'")[0]
        client.execute("INSERT INTO llmlens_meta (key, value, updated) VALUES", [("schema_version", "1", stamp)])
    finally:
        client.disconnect()
    open_store(url, tmp_path).close()  # not refused as schema version 1
