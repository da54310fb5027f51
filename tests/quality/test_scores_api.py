"""Scores in and out through a real server: POST /api/v1/scores, `{"type": "score"}` ingest, the SDK's
`llmlens.score`, and the `scores` SQL view; bad input refused by index; thumbs as `user_feedback`; a
score before its call; other projects see nothing. On DuckDB and on ClickHouse."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.reliability._hostile_shapes import HOSTILE_BODIES
from tests.support.llmlens_server import LLMLensServer

import llmlens
from llmlens.sdk import _internal

PROJECT = "scores-test"
OTHER = "someone-else"


@pytest.fixture(scope="module", params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    args: list[str] = []
    if request.param == "clickhouse":
        ch_url: str = request.getfixturevalue("clickhouse_url")
        args = ["--store", ch_url.rsplit("/", 1)[0] + "/scores_api"]
    env = {"LLMLENS_QUALITY": json.dumps({"inferred": False})}
    with LLMLensServer(tmp_path_factory.mktemp("scores"), args=args, env=env) as srv:
        yield srv


def _headers(project: str = PROJECT) -> dict[str, str]:
    return {"X-LLMLens-Project": project}


def _call(server: LLMLensServer, **fields: Any) -> dict[str, str]:
    """Store one LLM call; returns its ids."""
    ids = {
        "message_id": f"msg-{uuid.uuid4().hex[:10]}",
        "trace_id": uuid.uuid4().hex,
        "span_id": uuid.uuid4().hex[:16],
    }
    event = {
        "type": "llm",
        "model": "gpt-4o-mini",
        "prompt": "Summarise the ticket",
        "response": "Done.",
        "latency_ms": 1200.0,
        "cost_usd": 0.002,
        "feature": "support",
        "timestamp": time.time() - 60,
        **ids,
        **fields,
    }
    doc = server.ingest([event], headers=_headers(fields.get("project", PROJECT)))
    assert doc["rejected"] == []
    return ids


def _post(server: LLMLensServer, body: Any, project: str = PROJECT) -> httpx.Response:
    with server.client() as c:
        return c.post("/api/v1/scores", json=body, headers=_headers(project))


def _scores(server: LLMLensServer, where: str, project: str = PROJECT) -> list[dict[str, Any]]:
    return server.sql(
        "SELECT score_id, trace_id, span_id, message_id, name, data_type, value, label, source, evaluator, "
        f"evaluator_version, comment, reasoning, judge_cost_usd, timestamp, project FROM scores WHERE {where} "
        "ORDER BY name, score_id",
        headers=_headers(project),
    )


def test_scores_posted_come_back_through_sql_on_their_call(server: LLMLensServer) -> None:
    call = _call(server)
    answer = _post(
        server,
        [
            {"message_id": call["message_id"], "name": "helpfulness", "value": 0.8, "comment": "clear answer"},
            {"span_id": call["span_id"], "name": "correct", "value": True},
            {
                "message_id": call["message_id"],
                "name": "tone",
                "label": "friendly",
                "source": "evaluator",
                "evaluator": "tone-judge",
                "evaluator_version": "3",
                "reasoning": "polite wording throughout",
                "judge_cost_usd": 0.0004,
            },
        ],
    )
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["accepted"], doc["rejected"]) == (3, [])
    assert all(isinstance(i, str) for i in doc["score_ids"])
    rows = _scores(server, f"message_id = '{call['message_id']}'")
    assert [(r["name"], r["data_type"], r["value"], r["label"], r["source"]) for r in rows] == [
        ("correct", "boolean", 1.0, None, "human"),
        ("helpfulness", "numeric", 0.8, None, "human"),
        ("tone", "categorical", None, "friendly", "evaluator"),
    ]
    for r in rows:  # every score resolved to its call, whichever id it named
        assert (r["trace_id"], r["span_id"], r["message_id"]) == (call["trace_id"], call["span_id"], call["message_id"])
        assert r["project"] == PROJECT
    tone = rows[2]
    assert (tone["evaluator"], tone["evaluator_version"], tone["reasoning"]) == (
        "tone-judge",
        "3",
        "polite wording throughout",
    )
    assert tone["judge_cost_usd"] == pytest.approx(0.0004)
    assert rows[1]["comment"] == "clear answer"
    assert {r["score_id"] for r in rows} == set(doc["score_ids"])


def test_the_scores_object_form_and_idempotent_resends(server: LLMLensServer) -> None:
    call = _call(server)
    body = {"scores": [{"message_id": call["message_id"], "name": "helpfulness", "value": 0.5}]}
    first, again = _post(server, body).json(), _post(server, body).json()
    assert first["accepted"] == again["accepted"] == 1 and first["score_ids"] == again["score_ids"]
    assert len(_scores(server, f"message_id = '{call['message_id']}'")) == 1, "a re-sent score is stored once"
    explicit = [
        {"message_id": call["message_id"], "name": "helpfulness", "value": 0.9, "score_id": f"mine-{i}"} for i in (1, 2)
    ]
    assert _post(server, explicit).json()["accepted"] == 2
    assert len(_scores(server, f"message_id = '{call['message_id']}'")) == 3


def test_bad_scores_are_rejected_by_index_and_the_rest_kept(server: LLMLensServer) -> None:
    call = _call(server)
    mid = call["message_id"]
    assert _post(server, [{"message_id": mid, "name": "grade", "value": 3}]).json()["accepted"] == 1
    assert _post(server, [{"message_id": mid, "name": "verdict", "label": "pass"}]).json()["accepted"] == 1
    doc = _post(
        server,
        [
            {"message_id": mid, "name": "grade", "label": "B"},  # 0: numeric score given a category
            {"message_id": mid, "name": "grade", "value": 4.5},  # 1: fine
            {"message_id": mid, "name": "verdict", "value": 1},  # 2: categorical score given a number
            {"message_id": mid, "name": "brand-new", "value": False},  # 3: fine, created on first use
            {"name": "orphan", "value": 1},  # 4: about nothing
            {"message_id": mid, "value": 1},  # 5: no name
            {"message_id": mid, "name": "grade"},  # 6: no value
            {"message_id": mid, "name": "grade", "value": 1, "label": "x"},  # 7: both
            "not an object",  # 8
            {"message_id": mid, "name": "user_feedback", "value": 1},  # 9: made from thumbs only
            {"message_id": mid, "name": "grade", "value": [1]},  # 10
            {"message_id": mid, "name": "grade", "value": 2, "source": "inferred"},  # 11: not a caller's source
            {"message_id": mid, "name": "grade", "value": 2, "trace_id": "nope"},  # 12
        ],
    ).json()
    assert doc["accepted"] == 2
    errors = {r["index"]: r["error"] for r in doc["rejected"]}
    assert sorted(errors) == [0, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert "'grade' is numeric" in errors[0] and "number" in errors[0]
    assert "'verdict' is categorical" in errors[2] and "label" in errors[2]
    assert "message_id or span_id" in errors[4]
    assert "name" in errors[5] and "value" in errors[6] and "not both" in errors[7]
    assert (
        "JSON object" in errors[8] and "reserved" in errors[9] and "source" in errors[11] and "trace_id" in errors[12]
    )
    assert doc["score_ids"][1] and doc["score_ids"][3] and doc["score_ids"][0] is None
    names = {
        n["name"]: n["data_type"]
        for n in httpx.get(f"{server.url}/api/v1/scores/names", headers=_headers()).json()["names"]
    }
    assert (names["grade"], names["verdict"], names["brand-new"]) == ("numeric", "categorical", "boolean")
    values = sorted(r["value"] for r in _scores(server, f"message_id = '{mid}' AND name = 'grade'"))
    assert values == [3.0, 4.5]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"42", b'{"scores": 7}', b"[" * 5000 + b"]" * 5000, b"\xff\xfe"],
    ids=["not-json", "number", "scores-not-list", "deep", "not-utf8"],
)
def test_bodies_that_are_not_score_lists_get_a_400(server: LLMLensServer, body: bytes) -> None:
    with server.client() as c:
        r = c.post("/api/v1/scores", content=body, headers={**_headers(), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]


def test_hostile_numbers_and_shapes_never_get_a_server_error(server: LLMLensServer) -> None:
    call = _call(server)
    huge, giant = "9" * 400, "9" * 5000
    fields = f'"message_id": "{call["message_id"]}"'
    bodies = [
        *HOSTILE_BODIES,
        f'[{{{fields}, "name": "h1", "value": {huge}}}, {{{fields}, "name": "h2", "value": {giant}}}]',
        f'[{{{fields}, "name": "h3", "value": NaN}}, {{{fields}, "name": "h4", "value": -Infinity}}]',
        f'[{{{fields}, "name": "h5", "value": 1, "judge_cost_usd": {huge}, "timestamp": {huge}}}]',
        f'[{{{fields}, "name": "h6", "value": 1, "metadata": {{"a": NaN, "b": {huge}, "c": {giant}}}}}]',
    ]
    with server.client() as c:
        for body in bodies:
            for path in ("/api/v1/scores", "/api/v1/ingest"):
                text = (
                    body
                    if path == "/api/v1/scores"
                    else body.replace('{"message_id"', '{"type": "score", "message_id"')
                )
                r = c.post(path, content=text, headers={**_headers(), "Content-Type": "application/json"})
                assert r.status_code < 500, (path, body[:80], r.text[:300])
    stored = {r["name"] for r in _scores(server, f"message_id = '{call['message_id']}'")}
    assert stored == {"h6"}, "only the score with odd metadata is valid; its unwritable numbers are dropped"


def test_odd_but_valid_text_is_stored_not_a_500(server: LLMLensServer) -> None:
    call = _call(server)
    mid = call["message_id"]
    body = '[{"message_id": "' + mid + '", "name": "odd \\ud800 name", "value": 1, "comment": "lone \\udfff"}]'
    with server.client() as c:
        r = c.post("/api/v1/scores", content=body, headers={**_headers(), "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


def test_scores_in_ingest_are_checked_and_rejected_by_index(server: LLMLensServer) -> None:
    call = _call(server)
    # The name becomes numeric with its first score, whichever test ran before.
    first = server.ingest(
        [{"type": "score", "message_id": call["message_id"], "name": "ingest_grade", "value": 1.0}], headers=_headers()
    )
    assert first["accepted"] == 1, first
    doc = server.ingest(
        [
            {"type": "score", "message_id": call["message_id"], "name": "ingest_grade", "label": "A"},  # numeric
            {"type": "score", "message_id": call["message_id"], "name": "ingest_grade", "value": 2.0},
            {"type": "score", "message_id": call["message_id"]},
        ],
        headers=_headers(),
    )
    assert doc["accepted"] == 1
    assert [r["index"] for r in doc["rejected"]] == [0, 2]


def test_thumbs_are_user_feedback_scores_relatable_to_latency_and_cost(server: LLMLensServer) -> None:
    up, down = _call(server, feature="thumbs"), _call(server, feature="thumbs", latency_ms=3000.0)
    server.ingest(
        [
            {
                "type": "feedback",
                "message_id": up["message_id"],
                "feedback_type": "thumbs_up",
                "feedback_text": "great",
            },
            {"type": "feedback", "message_id": down["message_id"], "feedback_type": "thumbs_down"},
            {"type": "feedback", "message_id": down["message_id"], "feedback_type": "retry"},  # not a thumb
        ],
        headers=_headers(),
    )
    rows = _scores(server, f"name = 'user_feedback' AND message_id IN ('{up['message_id']}', '{down['message_id']}')")
    got = {r["message_id"]: r for r in rows}
    assert len(rows) == 2
    assert (got[up["message_id"]]["value"], got[down["message_id"]]["value"]) == (1.0, 0.0)
    for ids in (up, down):
        r = got[ids["message_id"]]
        assert (r["source"], r["data_type"], r["span_id"], r["trace_id"]) == (
            "feedback",
            "boolean",
            ids["span_id"],
            ids["trace_id"],
        )
    assert got[up["message_id"]]["comment"] == "great"
    # One query relates every kind of judgement to the calls' latency and cost.
    related = server.sql(
        "SELECT s.name AS name, AVG(s.value) AS mean, AVG(l.latency_ms) AS latency, SUM(l.cost_usd) AS cost "
        "FROM scores s JOIN llm_logs l ON l.span_id = s.span_id WHERE l.feature = 'thumbs' GROUP BY s.name",
        headers=_headers(),
    )
    assert len(related) == 1
    assert related[0]["name"] == "user_feedback" and related[0]["mean"] == pytest.approx(0.5)
    assert related[0]["latency"] == pytest.approx(2100.0) and related[0]["cost"] == pytest.approx(0.004)


def test_a_score_sent_before_its_call_joins_it_when_the_call_arrives(server: LLMLensServer) -> None:
    message_id = f"late-{uuid.uuid4().hex[:8]}"
    assert _post(server, [{"message_id": message_id, "name": "helpfulness", "value": 0.3}]).json()["accepted"] == 1
    early = _scores(server, f"message_id = '{message_id}'")
    assert [(r["trace_id"], r["span_id"]) for r in early] == [(None, None)]
    call = _call(server, message_id=message_id)
    late = _scores(server, f"message_id = '{message_id}'")
    assert [(r["trace_id"], r["span_id"]) for r in late] == [(call["trace_id"], call["span_id"])]


def test_another_project_sees_none_of_these_scores(server: LLMLensServer) -> None:
    call = _call(server)
    assert _post(server, [{"message_id": call["message_id"], "name": "private", "value": 1.0}]).json()["accepted"] == 1
    assert server.sql("SELECT COUNT(*) AS n FROM scores", headers=_headers(OTHER)) == [{"n": 0}]
    names = httpx.get(f"{server.url}/api/v1/scores/names", headers=_headers(OTHER)).json()
    assert names == {"project": OTHER, "names": []}
    for page in ("feedback", "latency", "prompts"):
        assert httpx.get(f"{server.url}/api/v1/{page}", headers=_headers(OTHER)).json()["scores"]["names"] == []
    # The other project may use the same name with another type: names are per project.
    other_call = _call(server, project=OTHER)
    doc = _post(
        server, [{"message_id": other_call["message_id"], "name": "private", "label": "yes"}], project=OTHER
    ).json()
    assert doc["accepted"] == 1
    # A score naming the first project's call from the other project stays in the other project.
    _post(
        server,
        [{"message_id": call["message_id"], "name": "intruder", "value": 1.0, "project": PROJECT}],
        project=OTHER,
    )
    assert _scores(server, "name = 'intruder'") == []


def test_the_trace_page_and_its_span_panel_show_the_scores(server: LLMLensServer) -> None:
    call = _call(server)
    _post(
        server,
        [
            {"message_id": call["message_id"], "name": "groundedness", "value": 0.25, "comment": "cites nothing"},
            {"span_id": call["span_id"], "name": "verdict", "label": "fail"},
        ],
    )
    with server.client(headers=_headers()) as c:
        doc = c.get(f"/api/v1/traces/{call['trace_id']}").json()
        html = c.get(f"/traces/{call['trace_id']}", params={"span": call["span_id"]}).text
    assert sorted((s["name"], s["value"], s["label"]) for s in doc["scores"]["all"]) == [
        ("groundedness", 0.25, None),
        ("verdict", None, "fail"),
    ]
    assert sorted(s["name"] for s in doc["scores"]["by_span"][call["span_id"]]) == ["groundedness", "verdict"]
    trace_part = html.split('id="trace-scores"', 1)[1].split("</section>", 1)[0]
    panel = html.split('id="span-detail"', 1)[1]
    for part in (trace_part, panel):
        assert 'data-score="groundedness"' in part and "0.25" in part and "cites nothing" in part
        assert 'data-score="verdict"' in part and "fail" in part


def test_the_sdk_sends_scores(server: LLMLensServer) -> None:
    before = _internal.internal_error_count()
    llmlens.init(url=server.url, project=PROJECT, schedule_delay_s=0.05)
    try:
        message_id = llmlens.log_llm_call("Hi", "Hello!", "gpt-4o-mini", 3, 2, 150.0, 0.00001)
        llmlens.score(message_id, "helpfulness", 0.9, comment="from the app")
        llmlens.score(message_id, "resolved", True)
        llmlens.score(message_id, "tone", "warm")
        assert llmlens.flush(10)
    finally:
        llmlens.shutdown(timeout=5)
    assert _internal.internal_error_count() == before
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(rows) < 3:
        rows = _scores(server, f"message_id = '{message_id}'")
    assert [(r["name"], r["value"], r["label"], r["source"], r["comment"]) for r in rows] == [
        ("helpfulness", 0.9, None, "sdk", "from the app"),
        ("resolved", 1.0, None, "sdk", None),
        ("tone", None, "warm", "sdk", None),
    ]
    assert all(r["span_id"] and r["trace_id"] for r in rows), "resolved to the call the SDK logged"
