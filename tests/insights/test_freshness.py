"""Findings are cached per project and window, and follow new data: a read after new writes recomputes them."""

from __future__ import annotations

from pathlib import Path

from tests.insights._support import ingest, insights, matching
from tests.insights._traffic import Traffic
from tests.support.llmlens_server import LLMLensServer


def test_new_data_shows_in_the_next_answer(tmp_path: Path) -> None:
    with LLMLensServer(tmp_path / "data") as srv:
        baseline = Traffic(seed=31)
        baseline.clean(120)
        ingest(srv, baseline.events, "live")
        first = insights(srv, "live")
        assert first["insights"] == [] and first["examined"]["calls"] == 120
        assert insights(srv, "live")["computed_at"] == first["computed_at"]  # served from the cache
        more = Traffic(seed=32)
        expected = more.duplicates()
        ingest(srv, more.events, "live")
        second = insights(srv, "live")
        assert second["computed_at"] > first["computed_at"]
        (found,) = matching(second, "cacheable_prompts", feature="faq")
        assert found["calls_affected"] == expected["calls_affected"]
        # Another project's writes leave this project's answer as it was.
        other = Traffic(seed=33)
        other.clean(10)
        ingest(srv, other.events, "other")
        assert insights(srv, "live")["computed_at"] == second["computed_at"]
