"""The shared-settings contract on both backends: SQLite in a data folder and a real ClickHouse. Two handles on
one backend stand for two servers: what one writes, the other reads (through a snapshot, within its TTL)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.store._shared_state import PROPAGATION_S, wait_until

from llmlens.state import SERVER_WIDE, SettingsSnapshot, SharedSettings, SqliteSharedSettings, StateBackend


@pytest.fixture(params=["sqlite", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def two_handles(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SharedSettings, SharedSettings]]:
    if request.param == "sqlite":
        first: SharedSettings = SqliteSharedSettings.in_data_dir(tmp_path)
        second: SharedSettings = SqliteSharedSettings.in_data_dir(tmp_path)
    else:
        base: str = request.getfixturevalue("clickhouse_url")
        url = base.rsplit("/", 1)[0] + f"/settings_{uuid.uuid4().hex[:12]}"
        first = StateBackend(tmp_path / "one", url).shared_settings()
        second = StateBackend(tmp_path / "two", url).shared_settings()
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_put_get_list_delete(two_handles: tuple[SharedSettings, SharedSettings]) -> None:
    one, two = two_handles
    first = one.put("shop", "saved_view", "slow calls", {"filters": {"latency_ms": ">5000"}, "range": "7d"})
    assert first.value == {"filters": {"latency_ms": ">5000"}, "range": "7d"}
    found = two.get("shop", "saved_view", "slow calls")
    assert found is not None and (found.value, found.version) == (first.value, first.version)

    replaced = two.put("shop", "saved_view", "slow calls", {"range": "24h"})
    assert replaced.version > first.version
    found = one.get("shop", "saved_view", "slow calls")
    assert found is not None and found.value == {"range": "24h"}

    one.put("shop", "saved_view", "errors", ["a", 1, None, True])
    one.put("blog", "saved_view", "errors", "its own")
    one.put(SERVER_WIDE, "saved_view", "errors", 3.5)
    one.put("shop", "evaluator_rule", "toxicity", {"sample": 0.1})
    assert [(s.name, s.value) for s in two.list("saved_view", "shop")] == [
        ("errors", ["a", 1, None, True]),
        ("slow calls", {"range": "24h"}),
    ]
    assert [(s.project, s.name) for s in two.list("saved_view")] == [
        (SERVER_WIDE, "errors"),
        ("blog", "errors"),
        ("shop", "errors"),
        ("shop", "slow calls"),
    ]
    assert [s.name for s in two.list("evaluator_rule")] == ["toxicity"]

    assert two.delete("shop", "saved_view", "errors") is True
    assert one.delete("shop", "saved_view", "errors") is False  # already gone
    assert one.get("shop", "saved_view", "errors") is None
    assert one.get("blog", "saved_view", "errors") is not None  # another project's setting of the same name
    # Written again after a deletion: a fresh value with a newer version.
    again = one.put("shop", "saved_view", "errors", "back")
    assert again.version > replaced.version
    assert [s.value for s in two.list("saved_view", "shop") if s.name == "errors"] == ["back"]


@pytest.mark.parametrize(
    ("project", "kind", "name", "value", "message"),
    [
        ("shop", "", "x", 1, "kind must be 1-200 characters"),
        ("shop", "view", "", 1, "name must be 1-200 characters"),
        ("shop", "view", "n" * 201, 1, "name must be 1-200 characters"),
        ("shop", "view", "x", {1, 2}, "value must be JSON"),
        ("shop", "view", "x", float("nan"), "value must be JSON"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(
    two_handles: tuple[SharedSettings, SharedSettings], project: str, kind: str, name: str, value: object, message: str
) -> None:
    one, _ = two_handles
    with pytest.raises(ValueError, match=message):
        one.put(project, kind, name, value)


def test_a_snapshot_sees_another_handles_change_within_its_ttl(
    two_handles: tuple[SharedSettings, SharedSettings],
) -> None:
    one, two = two_handles
    reader = SettingsSnapshot(two, "gateway_cache")
    assert reader.records() == {}
    one.put("shop", "gateway_cache", "faq", True)
    since = time.monotonic()
    seen = wait_until(reader.records, lambda records: ("shop", "faq") in records, within_s=PROPAGATION_S, since=since)
    assert list(seen) == [("shop", "faq")]
    writer = SettingsSnapshot(one, "gateway_cache")
    writer.delete("shop", "faq")
    assert writer.records() == {}  # a change made through a snapshot applies to it at once
