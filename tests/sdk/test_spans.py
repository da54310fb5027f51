"""Spans, `@trace`, `llmlens.context` and nesting across threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from tests.sdk._capture import CaptureServer

import llmlens


def _by_name(cap: CaptureServer) -> dict[str, dict[str, Any]]:
    assert llmlens.flush(5)
    return {e["name"]: e for e in cap.spans()}


def test_trace_nests_spans_and_records_timing(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture(service="svc", environment="prod", project="p1")

    @llmlens.trace(kind="tool", name="lookup")
    def lookup(city: str, units: str = "c") -> dict[str, Any]:
        return {"city": city, "t": 21}

    @llmlens.trace(kind="agent")
    def agent() -> str:
        lookup("Paris", units="f")
        with llmlens.span("retrieve", kind="retrieval") as s:
            s.set_documents([{"id": "d1", "content": "x", "score": 0.9}, "plain"], query="q")
        return "done"

    assert agent() == "done"
    spans = _by_name(cap)
    root = spans[agent.__qualname__]
    assert root["kind"] == "agent" and "parent_span_id" not in root
    assert root["service"] == "svc" and root["environment"] == "prod"
    tool = spans["lookup"]
    assert tool["parent_span_id"] == root["span_id"] and tool["trace_id"] == root["trace_id"]
    assert tool["tool_name"] == "lookup"
    assert tool["tool_args"] == {"city": "Paris", "units": "f"}
    assert tool["tool_result"] == {"city": "Paris", "t": 21}
    assert tool["tool_success"] is True
    retrieval = spans["retrieve"]
    assert retrieval["documents"][1] == {"content": "plain"} and retrieval["retrieval_query"] == "q"
    assert all(s["latency_ms"] >= 0 and s["timestamp"] > 1.7e9 for s in spans.values())
    assert cap.requests[0]["headers"]["X-LLMLens-Project"] == "p1"
    assert cap.requests[0]["headers"]["Content-Encoding"] == "gzip"


def test_exceptions_are_recorded_and_reraised_unchanged(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture()

    class Boom(Exception):
        pass

    @llmlens.trace(kind="tool")
    def broken() -> None:
        raise Boom("rate limit exceeded")

    with pytest.raises(Boom):
        broken()
    with pytest.raises(KeyError), llmlens.span("kv", kind="chain"):
        raise KeyError("k")
    spans = _by_name(cap)
    tool = spans[broken.__qualname__]
    assert tool["status"] == "error" and tool["error_type"] == "rate_limit" and tool["tool_success"] is False
    assert spans["kv"]["status"] == "error" and spans["kv"]["error_message"] == "'k'"


def test_context_is_inherited_and_nested(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture()
    with llmlens.context(user_id="u1", session_id="s1", feature="summarise", team="a"):
        with llmlens.context(template_id="t", template_version="v2", variables={"x": 1}, team="b"):
            with llmlens.span("inner"):
                pass
            assert llmlens.current_context()["metadata"] == {"team": "b"}
        llmlens.log_llm_call("p", "r", "gpt-4o", 3, 4, 10.0, 0.01, metadata={"user_id": "override"})
    with llmlens.span("outside"):
        pass
    spans = _by_name(cap)
    inner = spans["inner"]
    assert (inner["user_id"], inner["session_id"], inner["feature"]) == ("u1", "s1", "summarise")
    assert (inner["template_id"], inner["template_version"], inner["variables"]) == ("t", "v2", {"x": 1})
    assert inner["metadata"] == {"team": "b"}
    llm = spans["gpt-4o"]
    assert llm["feature"] == "summarise" and llm["metadata"]["user_id"] == "override"
    assert "user_id" not in llm  # the call's own metadata wins over the context
    assert llm["total_tokens"] == 7 and llm["kind"] == "llm" and llm["message_id"].startswith("msg_")
    assert "user_id" not in spans["outside"]


def test_threads_with_copied_context_and_asyncio_tasks_nest(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture()

    @llmlens.trace(kind="llm", name="child")
    def child() -> None:
        pass

    @llmlens.trace(name="async-child")
    async def async_child(i: int) -> int:
        await asyncio.sleep(0.001)
        return i

    async def fan_out() -> list[int]:
        with llmlens.span("async-root"):
            return list(await asyncio.gather(*(async_child(i) for i in range(3))))

    with llmlens.span("thread-root") as root:
        ctx = contextvars.copy_context()
        worker = threading.Thread(target=ctx.run, args=(child,))
        worker.start()
        worker.join()
    assert asyncio.run(fan_out()) == [0, 1, 2]
    assert llmlens.flush(5)
    spans = list(cap.spans())
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)
    assert by_name["child"][0]["parent_span_id"] == root.span_id
    async_root = by_name["async-root"][0]
    assert len(by_name["async-child"]) == 3
    assert {s["parent_span_id"] for s in by_name["async-child"]} == {async_root["span_id"]}


def test_generators_are_traced_over_their_whole_iteration(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture()

    @llmlens.trace(name="gen")
    def gen(n: int) -> Iterator[int]:
        for i in range(n):
            with llmlens.span(f"step{i}"):
                pass
            yield i

    @llmlens.trace(name="agen")
    async def agen(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    async def consume() -> list[int]:
        return [i async for i in agen(3)]

    assert list(gen(2)) == [0, 1]
    assert asyncio.run(consume()) == [0, 1, 2]
    early = gen(5)
    assert next(early) == 0
    early.close()
    assert llmlens.flush(5)
    spans = list(cap.spans())
    gens = [s for s in spans if s["name"] == "gen"]
    assert len(gens) == 2 and all(s["status"] == "ok" for s in gens)
    steps = [s for s in spans if s["name"].startswith("step")]
    assert {s["parent_span_id"] for s in steps} <= {g["span_id"] for g in gens}
    assert len([s for s in spans if s["name"] == "agen"]) == 1


def test_capture_content_false_strips_content(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture(capture_content=False)
    llmlens.log_llm_call("secret prompt", "secret answer", "gpt-4o", 1, 1, 1.0, None)
    llmlens.log_tool_call("t", {"card": "1234"}, "ok", 1.0, True)
    assert llmlens.flush(5)
    text = str(cap.events)
    assert "secret" not in text and "1234" not in text
    assert {e["kind"] for e in cap.events} == {"llm", "tool"}


def test_feedback_events(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture()
    llmlens.log_feedback(llmlens.FeedbackEvent("u", "s", "m1", "retry"))
    with llmlens.context(user_id="u2", session_id="s2"):
        llmlens.feedback("m2", "thumbs_down", text="wrong")
    assert llmlens.flush(5)
    first, second = cap.events
    assert first["type"] == "feedback" and first["feedback_type"] == "retry" and first["feedback_id"]
    assert second["user_id"] == "u2" and second["feedback_text"] == "wrong"


def test_sdk_misuse_is_an_internal_error_raised_under_pytest(init_capture: Callable[..., CaptureServer]) -> None:
    from llmlens.sdk import _internal

    init_capture()
    before = _internal.internal_error_count()
    with pytest.raises(ValueError, match="feedback_type"):
        llmlens.feedback("m", "meh")
    # Not a crash outside pytest: logged once and swallowed.
    _internal._seen.clear()
    assert _internal.internal_error_count() == before + 1
    _internal._errors = before  # keep the autouse check for genuine SDK bugs
