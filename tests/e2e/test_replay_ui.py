"""Replay and Compare from the trace page in headless Chromium, against a fake OpenAI/Anthropic upstream."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from tests.support.browser import chromium
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


@pytest.fixture(scope="module")
def server(fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    args = ["--upstream", f"openai={fake.openai_base_url}", "--upstream", f"anthropic={fake.anthropic_base_url}"]
    env = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}
    with LLMLensServer(tmp_path_factory.mktemp("replay-ui"), args=args, env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    assert errors == [], errors


def test_replay_and_compare_from_the_trace_page(server: LLMLensServer, fake: FakeProvider, page: object) -> None:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    server.ingest(
        [
            {
                "type": "span",
                "kind": "llm",
                "trace_id": trace_id,
                "span_id": span_id,
                "model": "gpt-4o-mini",
                "provider": "openai",
                "input_messages": [{"role": "user", "content": "Where is the Eiffel tower"}],
                "response": "In Paris.",
                "latency_ms": 800,
            }
        ]
    )
    page.goto(f"{server.url}/traces/{trace_id}")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Replay", exact=True).click()  # type: ignore[attr-defined]
    result = page.locator("#replay-results .replay-row")  # type: ignore[attr-defined]
    result.first.wait_for()
    assert result.first.locator(".resp-text").inner_text() == "Fake reply to: Where is the Eiffel tower"
    assert fake.last_request.json["temperature"] == 0

    page.get_by_label("Models").fill("gpt-4o-mini, anthropic:claude-3-5-haiku-latest")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Compare").click()  # type: ignore[attr-defined]
    page.locator("#replay-results .summary-row[data-model='anthropic:claude-3-5-haiku-latest']").wait_for()  # type: ignore[attr-defined]
    assert page.locator("#replay-results .replay-row").count() == 2  # type: ignore[attr-defined]
    assert page.locator("#replay-results .summary-row").count() == 3  # type: ignore[attr-defined]
    assert "exact_match" in page.locator("#replay-results .replay-summary").inner_text()  # type: ignore[attr-defined]
    page.locator("#replay-run-link").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/replays/[0-9a-f]{32}"))  # type: ignore[attr-defined]
    assert page.locator(".replay-row").count() == 2  # type: ignore[attr-defined]
