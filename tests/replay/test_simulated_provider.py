"""The stand-in provider (`simulated_provider`): on, Replay and Compare answer offline with labelled simulated
text and the stored replays say so; off (the default outside the demo), replays go to the real upstreams."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.llmlens_server import LLMLensServer

from llmlens.settings import SettingsError, load_settings

# No real key may reach a replay in these tests.
NO_KEYS = {"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}


def _call(model: str, provider: str, question: str) -> tuple[dict[str, Any], str]:
    span_id = uuid.uuid4().hex[:16]
    event = {
        "type": "span",
        "kind": "llm",
        "trace_id": uuid.uuid4().hex,
        "span_id": span_id,
        "model": model,
        "provider": provider,
        "input_messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}],
        "response": "An answer.",
        "latency_ms": 500,
    }
    return event, span_id


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    env = {**NO_KEYS, "LLMLENS_SIMULATED_PROVIDER": "on"}
    with LLMLensServer(tmp_path_factory.mktemp("simulated-on"), env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("simulated-off"), env=NO_KEYS) as srv:
        yield srv


@pytest.mark.parametrize(
    ("model", "provider"),
    [("gpt-4o-mini", "openai"), ("claude-3-5-haiku-20241022", "anthropic"), ("mistral-large", "mistral")],
)
def test_replay_is_answered_by_the_stand_in_and_labelled(stand_in: LLMLensServer, model: str, provider: str) -> None:
    event, span_id = _call(model, provider, f"What does {model} say?")
    stand_in.ingest([event])
    with stand_in.client() as c:
        r = c.post("/api/v1/replay", json={"span_id": span_id})
    assert r.status_code == 200, r.text
    (row,) = r.json()["rows"]
    assert row["simulated"] is True and row["error"] is None
    assert row["response"].startswith("[simulated by llmlens")
    assert f'{model} would answer "What does {model} say?"' in row["response"]
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    (stored,) = stand_in.sql(f"SELECT attributes, response, model FROM spans WHERE replay_of = '{span_id}'")
    assert json.loads(stored["attributes"])["llmlens.simulated"] is True
    assert stored["response"] == row["response"] and stored["model"] == model
    with stand_in.client() as c:
        panel = c.get("/replay/panel", params={"span_id": span_id}).text
    assert 'id="replay-simulated-note"' in panel


def test_compare_across_providers_offline(stand_in: LLMLensServer) -> None:
    event, span_id = _call("gpt-4o", "openai", "Compare me")
    stand_in.ingest([event])
    with stand_in.client() as c:
        r = c.post(
            "/api/v1/compare",
            json={"span_ids": [span_id], "models": ["gpt-4o-mini", "claude-3-5-sonnet-20241022", "simulated:any"]},
        )
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [row["model"] for row in rows] == ["gpt-4o-mini", "claude-3-5-sonnet-20241022", "simulated:any"]
    assert all(row["simulated"] and row["response"].startswith("[simulated by llmlens") for row in rows)


def test_without_the_demo_replays_go_to_the_real_upstream(plain: LLMLensServer) -> None:
    event, span_id = _call("gpt-4o-mini", "openai", "Anyone there?")
    plain.ingest([event])
    with plain.client() as c:
        r = c.post("/api/v1/replay", json={"span_id": span_id})
        panel = c.get("/replay/panel", params={"span_id": span_id}).text
    assert r.status_code == 400 and "OPENAI_API_KEY" in r.json()["error"]
    assert plain.sql(f"SELECT COUNT(*) AS n FROM spans WHERE replay_of = '{span_id}'") == [{"n": 0}]
    assert "simulated" not in panel.lower()


def test_the_setting_takes_on_off_or_auto() -> None:
    assert load_settings(env={}).simulated_provider == "auto"
    assert load_settings(env={"LLMLENS_SIMULATED_PROVIDER": "off"}).simulated_provider == "off"
    with pytest.raises(SettingsError, match="simulated_provider"):
        load_settings(env={"LLMLENS_SIMULATED_PROVIDER": "sometimes"})
