"""RAG relevance on retrieval traces through a real server: a `rag` rule on retrieval spans has the judge (here
over the Anthropic wire format) score each retrieved chunk against the query, the whole context, and the
groundedness of the answer that followed; the retrieval view lists the least relevant context first, by
retriever and index, and against the thumbs the answers got."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from tests.quality._quality_env import BACKENDS, QualityEnv, new_id, quality_server, store_args, wait_for
from tests.support.fake_provider import FakeProvider

JUDGE = "claude-3-5-haiku-latest"
RESET_DOC = "To reset your password open Settings, choose Security and press Reset password."
HOLIDAY_DOC = "Our office is closed on public holidays and weekends."
PRICING_DOC = "Gift cards cannot be exchanged for cash."


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QualityEnv]:
    with (
        FakeProvider() as fp,
        quality_server(tmp_path_factory.mktemp("rag"), fp, args=store_args(request, "quality_rag")) as quality,
    ):
        fp.judge_models = {JUDGE}
        yield quality


def _trace(q: QualityEnv, query: str, docs: list[str], answer: str, *, retriever: str, index: str) -> dict[str, str]:
    trace = uuid.uuid4().hex
    ids = {"trace_id": trace, "message_id": new_id("msg"), "retrieval": trace[:14] + "a1", "llm": trace[:14] + "b1"}
    now = time.time() - 30
    q.ingest(
        [
            {
                "type": "retrieval",
                "trace_id": ids["trace_id"],
                "span_id": ids["retrieval"],
                "name": retriever,
                "timestamp": now,
                "latency_ms": 40.0,
                "query": query,
                "documents": [{"id": f"doc-{i}", "content": d, "score": 0.5} for i, d in enumerate(docs)],
                "metadata": {"index": index},
                "feature": "help",
            },
            {
                "type": "llm",
                "trace_id": ids["trace_id"],
                "span_id": ids["llm"],
                "message_id": ids["message_id"],
                "timestamp": now + 0.1,
                "latency_ms": 900.0,
                "model": "gpt-4o",
                "input_messages": [{"role": "user", "content": query}],
                "response": answer,
                "feature": "help",
            },
        ]
    )
    return ids


def test_relevance_of_each_chunk_the_context_and_the_answer(env: QualityEnv) -> None:
    q = env.in_project(new_id("rag"))
    spec = {"type": "rag", "model": f"anthropic:{JUDGE}"}
    q.post("/api/v1/evaluators/rules", {"name": "rag relevance", "evaluator": spec, "kind": "retrieval"})
    good = _trace(
        q,
        "How do I reset my password?",
        [RESET_DOC, HOLIDAY_DOC],
        "Open Settings, choose Security and press Reset password.",
        retriever="kb-search",
        index="help-center",
    )
    bad = _trace(
        q,
        "Which plan includes priority support?",
        [HOLIDAY_DOC, PRICING_DOC],
        "The Enterprise tier comes with a dedicated account manager.",
        retriever="faq-search",
        index="faq",
    )
    q.ingest([{"type": "feedback", "message_id": bad["message_id"], "feedback_type": "thumbs_down"}])

    rows = q.wait_rows("SELECT span_id, name, value, metadata FROM scores WHERE source = 'evaluator'", 8)
    chunks = {(r["span_id"], r["metadata"]) for r in rows if r["name"] == "chunk_relevance"}
    by_name = {(r["span_id"], r["name"]): r["value"] for r in rows if r["name"] != "chunk_relevance"}
    assert len(chunks) == 4
    values = sorted(
        (r["span_id"], '"chunk":1' in r["metadata"].replace(" ", ""), r["value"])
        for r in rows
        if r["name"] == "chunk_relevance"
    )
    # The stand-in judge's relevance is the share of the query's words found in the chunk.
    assert values == sorted(
        [
            (good["retrieval"], False, 1.0),
            (good["retrieval"], True, 0.0),
            (bad["retrieval"], False, 0.0),
            (bad["retrieval"], True, 0.0),
        ]
    )
    assert by_name[(good["retrieval"], "context_relevance")] == 0.5
    assert by_name[(bad["retrieval"], "context_relevance")] == 0.0
    # Groundedness is on the answer that followed the retrieval, judged against its chunks.
    assert by_name[(good["llm"], "groundedness")] == 1.0
    assert by_name[(bad["llm"], "groundedness")] == 0.0
    # The judge was called over the Anthropic wire format, once per chunk and once per answer.
    judged = [r for r in env.fp.requests if r.path == "/v1/messages" and r.json and r.json.get("model") == JUDGE]
    assert len(judged) >= 6

    view = wait_for(lambda: q.get("/api/v1/retrieval", range="1h"), lambda d: d["scored"] == 2)
    assert view["retrievals"] == 2
    least = view["least_relevant"]
    assert [r["span_id"] for r in least] == [bad["retrieval"], good["retrieval"]]
    assert [(r["context_relevance"], r["groundedness"], r["documents"]) for r in least] == [
        (0.0, 0.0, 2),
        (0.5, 1.0, 2),
    ]
    assert [(g["retriever"], g["mean"]) for g in view["by_retriever"]] == [("faq-search", 0.0), ("kb-search", 0.5)]
    assert {g["index"]: g["mean"] for g in view["by_index"]} == {"faq": 0.0, "help-center": 0.5}
    assert {g["feedback"]: g["mean"] for g in view["by_feedback"]} == {"thumbs_down": 0.0, "no thumbs": 0.5}
    page = q.client().get("/retrieval", params={"range": "1h"}).text
    assert "faq-search" in page and "Which plan includes priority support?" in page
