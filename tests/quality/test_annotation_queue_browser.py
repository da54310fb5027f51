"""The annotation queue in headless Chromium, with auth on: two logged-in reviewers go through a queue made
from a filter, one call at a time, with the keyboard (a digit scores and moves on, `c` opens the comment
box, `s` skips); reviews are `human` scores naming their reviewer, and progress is shown per reviewer.
Without auth the reviewer is `anonymous`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page
from tests.quality._quality_env import QualityEnv, quality_server
from tests.security._support import bearer, create_key, llmlens_cli
from tests.support.browser import chromium
from tests.support.fake_provider import FakeProvider

pytestmark = [pytest.mark.browser]

PASSWORD = "correct horse battery"
QUEUE = "support-review"
QUESTIONS = ["How do I reset my password?", "Where is my parcel?", "Can I get a refund?"]


class Secured:
    def __init__(self, env: QualityEnv, key: str) -> None:
        self.env = env
        self.key = key

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.env.server.url, headers=bearer(self.key), timeout=30)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    data: Path = tmp_path_factory.mktemp("annotations")
    with FakeProvider() as fp, quality_server(data, fp, args=["--auth", "on"]) as env:
        key = create_key(data, "default", "admin")
        for user in ("alice", "bob"):
            done = llmlens_cli(
                "users", "create", user, "--project", "default", "--role", "member", "--password-stdin",
                "--data", str(data), stdin=f"{PASSWORD}\n",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        now = time.time() - 60
        events = [
            {
                "type": "llm",
                "trace_id": uuid.uuid4().hex,
                "span_id": uuid.uuid4().hex[:16],
                "timestamp": now + i,
                "model": "gpt-4o",
                "feature": "support",
                "input_messages": [{"role": "user", "content": question}],
                "response": f"Here is how: {question.lower()}",
            }
            for i, question in enumerate(QUESTIONS)
        ]
        with httpx.Client(base_url=env.server.url, headers=bearer(key), timeout=30) as c:
            assert c.post("/api/v1/ingest", json=events).json()["accepted"] == 3
            queue = {
                "name": QUEUE,
                "filter": {"feature": "support", "range": "1d", "order": "oldest"},
                "score": {"name": "quality", "type": "numeric", "min": 1, "max": 5},
            }
            r = c.post("/api/v1/annotation-queues", json=queue)
            assert r.status_code == 201 and r.json()["items"] == 3, r.text
        yield Secured(env, key)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _reviewer_page(browser: Browser, base: str, user: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(30_000)
    page.goto(f"{base}/login?next=/annotations/{QUEUE}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/annotations/{QUEUE}")
    page.locator("#reviewer", has_text=user).wait_for()
    assert errors == []
    return page


def _question_shown(page: Page) -> str:
    return page.locator("#call .messages .content").first.inner_text()


def test_two_reviewers_work_through_a_queue_with_the_keyboard(secured: Secured, browser: Browser) -> None:
    base = secured.env.server.url
    alice = _reviewer_page(browser, base, "alice")
    assert _question_shown(alice) == QUESTIONS[0]
    assert "Here is how: how do i reset my password?" in alice.locator("#answer").inner_text()
    alice.keyboard.press("c")
    alice.keyboard.type("clear, and it answers the question")
    alice.keyboard.press("Escape")
    alice.keyboard.press("4")
    alice.locator("p.notice", has_text="saved quality = 4").wait_for()
    assert _question_shown(alice) == QUESTIONS[1]
    alice.keyboard.press("s")
    alice.locator("p.notice", has_text="skipped").wait_for()
    assert _question_shown(alice) == QUESTIONS[2]
    alice.keyboard.press("2")
    alice.locator("#queue-done").wait_for()
    assert alice.locator("#progress li[data-reviewer=alice]").inner_text() == "alice: 2"

    bob = _reviewer_page(browser, base, "bob")
    assert _question_shown(bob) == QUESTIONS[1]  # the one alice skipped: the others have their review
    bob.locator("button[data-key='5']").click()
    bob.locator("#queue-done").wait_for()
    progress = {li.get_attribute("data-reviewer"): li.inner_text() for li in bob.locator("#progress li").all()}
    assert progress == {"alice": "alice: 2", "bob": "bob: 1"}
    assert "3 / 3 calls done" in bob.locator("aside").inner_text()

    with secured.client() as c:
        doc = c.get(f"/api/v1/annotation-queues/{QUEUE}").json()
        assert doc["queue"]["progress"]["done"] == 3
        rows = c.post(
            "/api/v1/sql",
            json={"query": "SELECT value, source, comment, metadata FROM scores WHERE name = 'quality' ORDER BY value"},
        ).json()["rows"]
    assert [(r[0], r[1]) for r in rows] == [(2.0, "human"), (4.0, "human"), (5.0, "human")]
    assert rows[1][2] == "clear, and it answers the question"
    reviewers = [r[3].replace(" ", "") for r in rows]
    assert ['"reviewer":"alice"' in m for m in reviewers] == [True, True, False]
    assert '"reviewer":"bob"' in reviewers[2] and all(f'"queue":"{QUEUE}"' in m for m in reviewers)


def test_without_auth_the_reviewer_is_anonymous(tmp_path: Path) -> None:
    with FakeProvider() as fp, quality_server(tmp_path, fp) as env:
        env.ingest(
            [
                {
                    "type": "llm",
                    "trace_id": uuid.uuid4().hex,
                    "span_id": uuid.uuid4().hex[:16],
                    "model": "gpt-4o",
                    "feature": "faq",
                    "prompt": "Opening hours?",
                    "response": "Nine to five.",
                }
            ]
        )
        queue = {"name": "faq", "filter": {"feature": "faq"}, "score": {"name": "ok", "type": "boolean"}}
        env.post("/api/v1/annotation-queues", queue, expect=201)
        nxt = env.get("/api/v1/annotation-queues/faq")
        assert nxt["reviewer"] == "anonymous" and nxt["call"]["messages"][0]["content"] == "Opening hours?"
        with env.client() as c:
            bad = c.post("/api/v1/annotation-queues/faq/reviews", json={"span_id": nxt["call"]["span_id"], "value": 7})
            assert bad.status_code == 400 and "good (1) or bad (0)" in bad.json()["error"]
        env.post("/api/v1/annotation-queues/faq/reviews", {"span_id": nxt["call"]["span_id"], "value": "good"})
        done = env.get("/api/v1/annotation-queues/faq")
        assert done["done"] and done["queue"]["progress"]["by_reviewer"] == [{"reviewer": "anonymous", "reviewed": 1}]
