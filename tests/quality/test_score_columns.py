"""Score columns on the Prompts, Feedback and Latency pages (and their JSON twins) say what the data says:
calls with known features, models, template versions and user tiers get known scores over HTTP; the mean,
count and 95 % interval of each group are computed here, independently, and compared with the pages.
On DuckDB and on ClickHouse."""

from __future__ import annotations

import json
import math
import random
import re
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

PROJECT = "score-columns"
Z = 1.959963984540054
BUDGETS = {"tiers": {"free": 1.0, "pro": 50.0}, "users": {"u-pro": "pro"}, "default_tier": "free"}
# u-ent's tier comes from its calls; calls without a user take the default tier.
USERS: dict[str | None, dict[str, str]] = {"u-pro": {}, "u-free": {}, "u-ent": {"tier": "enterprise"}, None: {}}
FEATURES = {"chat": "gpt-4o", "search": "gpt-4o-mini", "code": "claude-3-5-haiku-latest"}
VERSIONS = ["v1", "v2"]


def _wilson(successes: float, n: int) -> tuple[float, float]:
    p = successes / n
    denom = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _expected_cell(kind: str, values: list[float]) -> dict[str, Any]:
    n = len(values)
    if kind == "categorical":
        return {"count": n, "mean": None, "ci_low": None, "ci_high": None}
    mean = sum(values) / n
    if kind == "boolean":
        low, high = _wilson(sum(values), n)
    elif n >= 2:
        half = Z * statistics.stdev(values) / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = None  # type: ignore[assignment]
    return {"count": n, "mean": mean, "ci_low": low, "ci_high": high}


class Traffic:
    """What was sent, so the expected numbers can be computed from it."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}
        self.scores: list[tuple[str, str, str, float | None]] = []  # (span id, name, data type, value)


def _send(server: LLMLensServer, rng: random.Random) -> Traffic:
    traffic = Traffic()
    now = time.time()
    events: list[dict[str, Any]] = []
    for i in range(90):
        feature = rng.choice(list(FEATURES))
        user = rng.choice(list(USERS))
        version = rng.choice(VERSIONS)
        latency = rng.choice([400.0, 1800.0, 5200.0])
        recent = i % 15 != 0  # every 15th call is three days old: outside the 24 h range
        call = {
            "span_id": uuid.uuid4().hex[:16],
            "trace_id": uuid.uuid4().hex,
            "message_id": f"m-{uuid.uuid4().hex[:10]}",
            "feature": feature,
            "model": FEATURES[feature],
            "template": f"answer@{version}",
            "tier": USERS[user].get("tier") or BUDGETS["users"].get(user) or BUDGETS["default_tier"],  # type: ignore[attr-defined]
            "speed": "fast" if latency < 1000 else "medium" if latency < 3000 else "slow",
            "recent": recent,
        }
        traffic.calls[call["span_id"]] = call
        events.append(
            {
                "type": "llm",
                "model": call["model"],
                "prompt": "q",
                "response": "a",
                "latency_ms": latency,
                "timestamp": now - (3600 if recent else 3 * 86400) - i,
                "span_id": call["span_id"],
                "trace_id": call["trace_id"],
                "message_id": call["message_id"],
                "feature": feature,
                **({"user_id": user} if user else {}),
                "template_id": "answer",
                "template_version": version,
                "metadata": dict(USERS[user]),
            }
        )
    assert server.ingest(events, headers={"X-LLMLens-Project": PROJECT})["rejected"] == []
    scores: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for span_id, call in traffic.calls.items():
        if rng.random() < 0.85:
            value = round(rng.random(), 3)
            scores.append({"span_id": span_id, "name": "quality", "value": value})
            traffic.scores.append((span_id, "quality", "numeric", value))
        if rng.random() < 0.6:
            passed = rng.random() < 0.7
            scores.append({"message_id": call["message_id"], "name": "passed", "value": passed})
            traffic.scores.append((span_id, "passed", "boolean", 1.0 if passed else 0.0))
        if rng.random() < 0.3:
            scores.append({"span_id": span_id, "name": "topic", "label": rng.choice(["billing", "bug"])})
            traffic.scores.append((span_id, "topic", "categorical", None))
        if rng.random() < 0.4:
            up = rng.random() < 0.5
            feedback.append(
                {
                    "type": "feedback",
                    "message_id": call["message_id"],
                    "feedback_type": "thumbs_up" if up else "thumbs_down",
                }
            )
            traffic.scores.append((span_id, "user_feedback", "boolean", 1.0 if up else 0.0))
    with server.client() as c:
        doc = c.post("/api/v1/scores", json=scores, headers={"X-LLMLens-Project": PROJECT}).json()
    assert doc["rejected"] == [] and doc["accepted"] == len(scores)
    assert server.ingest(feedback, headers={"X-LLMLens-Project": PROJECT})["rejected"] == []
    return traffic


def _expected(traffic: Traffic, key: str, only_model: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    kinds: dict[str, str] = {}
    for span_id, name, kind, value in traffic.scores:
        call = traffic.calls[span_id]
        if not call["recent"] or (only_model and call["model"] != only_model):
            continue
        kinds[name] = kind
        groups[call[key]][name].append(0.0 if value is None else value)
    return {g: {n: _expected_cell(kinds[n], v) for n, v in by_name.items()} for g, by_name in groups.items()}


def _calls(traffic: Traffic, key: str, only_model: str | None = None) -> dict[str, int]:
    """LLM calls of the range per group, scored or not."""
    counts: dict[str, int] = defaultdict(int)
    for call in traffic.calls.values():
        if call["recent"] and (only_model is None or call["model"] == only_model):
            counts[call[key]] += 1
    return dict(counts)


def _page_groups(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        r["key"]: {
            c["name"]: {k: c[k] for k in ("count", "mean", "ci_low", "ci_high")} for c in r["scores"] if c["count"]
        }
        for r in rows
    }


def _assert_same(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    assert got.keys() == want.keys(), f"{where}: groups {sorted(got)} != {sorted(want)}"
    for group in want:
        assert got[group].keys() == want[group].keys(), f"{where}/{group}"
        for name, cell in want[group].items():
            for field, value in cell.items():
                found = got[group][name][field]
                if value is None:
                    assert found is None, f"{where}/{group}/{name}/{field}: {found!r}"
                else:
                    assert found == pytest.approx(value, rel=1e-9, abs=1e-9), f"{where}/{group}/{name}/{field}"


@pytest.fixture(scope="module", params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def sent(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LLMLensServer, Traffic]]:
    args: list[str] = []
    if request.param == "clickhouse":
        ch_url: str = request.getfixturevalue("clickhouse_url")
        args = ["--store", ch_url.rsplit("/", 1)[0] + "/score_columns"]
    env = {"LLMLENS_BUDGETS": json.dumps(BUDGETS), "LLMLENS_QUALITY": json.dumps({"inferred": False})}
    with LLMLensServer(tmp_path_factory.mktemp("columns"), args=args, env=env) as server:
        yield server, _send(server, random.Random(5))


_GROUPS = {
    "by_feature": "feature",
    "by_model": "model",
    "by_template_version": "template",
    "by_user_tier": "tier",
    "by_speed": "speed",
}


@pytest.mark.parametrize("page", ["feedback", "latency", "prompts"])
def test_json_twins_carry_the_score_columns_the_data_gives(sent: tuple[LLMLensServer, Traffic], page: str) -> None:
    server, traffic = sent
    doc = httpx.get(
        f"{server.url}/api/v1/{page}", params={"range": "24h"}, headers={"X-LLMLens-Project": PROJECT}
    ).json()
    scores = doc["scores"]
    assert scores["data_types"] == {
        "quality": "numeric",
        "passed": "boolean",
        "topic": "categorical",
        "user_feedback": "boolean",
    }
    for field, key in _GROUPS.items():
        _assert_same(_page_groups(scores[field]), _expected(traffic, key), f"{page}.{field}")
        calls = _calls(traffic, key)
        for row in scores[field]:
            assert row["calls"] == calls[row["key"]], f"{page}.{field}.{row['key']}"
            for cell in row["scores"]:
                assert cell["per_call"] == pytest.approx(cell["count"] / calls[row["key"]]), f"{page}.{field}"
    assert scores["calls"] == sum(1 for c in traffic.calls.values() if c["recent"])
    overall = {c["name"]: c for c in scores["overall"]}
    recent = [s for s in traffic.scores if traffic.calls[s[0]]["recent"]]
    assert overall["quality"]["count"] == sum(1 for s in recent if s[1] == "quality")


def test_the_latency_pages_model_filter_narrows_the_scores(sent: tuple[LLMLensServer, Traffic]) -> None:
    server, traffic = sent
    params = {"range": "24h", "model": "gpt-4o"}
    doc = httpx.get(f"{server.url}/api/v1/latency", params=params, headers={"X-LLMLens-Project": PROJECT}).json()
    _assert_same(_page_groups(doc["scores"]["by_feature"]), _expected(traffic, "feature", "gpt-4o"), "latency?model")


_CELL = re.compile(r'<tr data-key="(?P<key>[^"]*)">(?P<cells>.*?)</tr>', re.S)
_ATTRS = re.compile(r'data-score="(?P<name>[^"]+)" data-count="(?P<count>\d+)" data-mean="(?P<mean>[^"]*)"')


@pytest.mark.parametrize(
    ("page", "group", "key"),
    [
        ("feedback", "feature", "feature"),
        ("latency", "model", "model"),
        ("prompts", "template_version", "template"),
        ("feedback", "user_tier", "tier"),
    ],
)
def test_html_pages_show_the_same_numbers(sent: tuple[LLMLensServer, Traffic], page: str, group: str, key: str) -> None:
    server, traffic = sent
    html = httpx.get(f"{server.url}/{page}", params={"range": "24h"}, headers={"X-LLMLens-Project": PROJECT}).text
    section = html.split(f'data-group="scores-{group}"', 1)[1].split("</section>", 1)[0]
    shown: dict[str, dict[str, tuple[int, float | None]]] = {}
    for row in _CELL.finditer(section):
        shown[row["key"]] = {
            m["name"]: (int(m["count"]), float(m["mean"]) if m["mean"] else None)
            for m in _ATTRS.finditer(row["cells"])
            if int(m["count"])
        }
    want = _expected(traffic, key)
    assert shown.keys() == want.keys()
    for g, cells in want.items():
        for name, cell in cells.items():
            count, mean = shown[g][name]
            assert count == cell["count"], f"{page} {g} {name}"
            assert mean == (None if cell["mean"] is None else pytest.approx(cell["mean"], rel=1e-9)), (
                f"{page} {g} {name}"
            )
