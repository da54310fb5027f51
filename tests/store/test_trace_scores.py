"""A trace's scores and thumbs read without the `scores` view (stores without `feedback_calls`: ClickHouse)
are the rows the view gives for that trace: a score on the trace named by its own trace id, by its span's
trace, or by the first call of its message; thumbs on their message's first call; on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.store.test_id_lookups import NOW_US, _span

from llmlens.model import Feedback, Score
from llmlens.query._call_feedback import _SCORE_COLUMNS, _trace_scores_resolved, feedback_on_spans, score_order
from llmlens.query._spans import read_spans
from llmlens.store import Store, open_store

T, U = f"{0xA:032x}", f"{0xB:032x}"


def _spans(project: str) -> list[Any]:
    a, b = _span(0x10, 1, trace=T, project=project), _span(0x11, 1, trace=T, project=project)
    c = _span(0x12, 1, trace=T, project=project, kind="tool")
    a.message_id, b.message_id = "mA", "mB"
    d = _span(0x05, 30, trace=U, project=project)  # mB's first call, in another trace
    d.message_id = "mB"
    e = _span(0x20, 30, trace=U, project=project)
    e.message_id = "mE"
    f = _span(0x30, 30, trace=U, project=project)  # a later call of mA
    f.message_id = "mA"
    return [a, b, c, d, e, f]


def _score(score_id: str, project: str = "default", **ids: str) -> Score:
    return Score(score_id, "helpful", "numeric", NOW_US, project=project, value=0.5, source="human", **ids)


def _view(store: Store, trace_id: str, source: str) -> list[dict[str, Any]]:
    result = store.query(
        f"SELECT {', '.join(_SCORE_COLUMNS)} FROM scores WHERE project = ? AND trace_id = ? AND source {source}",
        ["default", trace_id],
    )
    return sorted(result.dicts(), key=score_order)


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = None
    if request.param == "clickhouse":
        url = (
            request.getfixturevalue("clickhouse_url").rsplit("/", 1)[0]
            + f"/trace_scores_{tmp_path.name[-8:].replace('-', '_')}"
        )
    opened = open_store(url, tmp_path)
    yield opened
    opened.close()


def test_trace_scores_without_the_view_are_the_views(store: Store) -> None:
    store.write(
        [*_spans("default"), *_spans("other")],
        [
            Feedback(feedback_id="up", message_id="mA", feedback_type="thumbs_up", timestamp_us=NOW_US),
            Feedback(feedback_id="down", message_id="mB", feedback_type="thumbs_down", timestamp_us=NOW_US),
            Feedback(feedback_id="other", message_id="mA", feedback_type="thumbs_up", timestamp_us=NOW_US,
                     project="other"),
        ],
    )  # fmt: skip
    span = {n: f"{i:016x}" for n, i in (("a", 0x10), ("c", 0x12), ("d", 0x05), ("e", 0x20))}
    store.write_scores(
        [
            _score("own-trace", trace_id=T),
            _score("span-a", span_id=span["a"]),
            _score("span-elsewhere-own-trace", trace_id=T, span_id=span["e"]),
            _score("message-first-call-here", message_id="mA"),
            _score("message-first-call-elsewhere", message_id="mB"),
            _score("tool-span", span_id=span["c"]),
            _score("span-in-U", span_id=span["d"]),
            _score("no-such-span", span_id=f"{0x99:016x}"),
            _score("other-project", project="other", trace_id=T),
        ]
    )
    resolved = sorted(_trace_scores_resolved(store, "default", T), key=score_order)
    assert resolved == _view(store, T, "<> 'feedback'")
    by_id = {r["score_id"]: r for r in resolved}
    assert sorted(by_id) == sorted(
        ["own-trace", "span-a", "span-elsewhere-own-trace", "message-first-call-here", "tool-span"]
    )
    assert by_id["message-first-call-here"]["span_id"] == span["a"]
    assert by_id["span-elsewhere-own-trace"]["message_id"] == "mE"
    in_u = sorted(_trace_scores_resolved(store, "default", U), key=score_order)
    assert in_u == _view(store, U, "<> 'feedback'")
    assert sorted(r["score_id"] for r in in_u) == ["message-first-call-elsewhere", "span-in-U"]

    trace_spans = read_spans(store, "project = ? AND trace_id = ?", ["default", T])
    on_calls = feedback_on_spans(store, "default", trace_spans)
    thumbs = sorted(on_calls.thumbs, key=score_order)
    assert thumbs == _view(store, T, "= 'feedback'")
    assert [(t["score_id"], t["span_id"]) for t in thumbs] == [("feedback:up", span["a"])]
    assert sorted(e["message_id"] for e in on_calls.events) == ["mA", "mB"]
