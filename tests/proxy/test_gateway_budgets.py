"""Budgets: a user or feature over its monthly limit gets a 429 in the provider's format, counting every
ingestion path, and the blocked call is recorded without reaching the upstream."""

from __future__ import annotations

import datetime as dt
import json

import anthropic
import httpx
import openai
import pytest
from tests.proxy._support import Gateway
from tests.support.fake_provider import FakeProvider

HELLO = [{"role": "user", "content": "hello"}]
POLICY = {
    "tiers": {"free": 1.0, "pro": 50.0},
    "default_tier": "free",
    "users": {"user-pro-01": "pro"},
    "features": {"code_generation": 0.01},
}


@pytest.fixture(scope="module", autouse=True)
def budgets(gateway: Gateway) -> None:
    response = httpx.put(gateway.srv.url + "/api/v1/budgets", json=POLICY)
    assert response.status_code == 200, response.text
    now = dt.datetime.now(dt.UTC)
    last_month = now.replace(day=1) - dt.timedelta(days=2)
    # Spend that arrives through the native ingest API, not the gateway, counts too.
    gateway.srv.ingest(
        [
            {"type": "llm", "model": "gpt-4o", "user_id": "user-free-07", "cost_usd": 1.25, "prompt": "p"},
            {
                "type": "llm",
                "model": "gpt-4o",
                "user_id": "user-free-08",
                "cost_usd": 5.0,
                "prompt": "p",
                "timestamp": last_month.isoformat(),
            },
        ]
    )


def _call(gateway: Gateway, user: str, **headers: str) -> openai.types.chat.ChatCompletion:
    return gateway.openai().chat.completions.create(
        model="gpt-4o", messages=HELLO, extra_headers={"X-LLMLens-User-Id": user, **headers}
    )  # type: ignore[arg-type]


def test_user_over_budget_gets_a_429_in_openai_format_without_retries(gateway: Gateway, upstream: FakeProvider) -> None:
    client = openai.OpenAI(base_url=gateway.openai_url, api_key="sk-x")  # default max_retries=2
    with pytest.raises(openai.RateLimitError) as got:
        client.chat.completions.create(
            model="gpt-4o", messages=HELLO, extra_headers={"X-LLMLens-User-Id": "user-free-07"}
        )  # type: ignore[arg-type]
    error = got.value.response.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "user-free-07" in error["message"] and "free tier" in error["message"] and "$1.00" in error["message"]
    assert got.value.response.headers["x-should-retry"] == "false"
    assert upstream.requests == []  # never reached the provider, and the SDK did not retry

    rows = gateway.wait_rows("SELECT * FROM llm_logs WHERE user_id = 'user-free-07' AND blocked")
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "error" and row["error_type"] == "rate_limit" and row["cost_usd"] is None
    assert "budget exceeded" in row["error_message"]


def test_anthropic_clients_get_anthropic_shaped_429(gateway: Gateway, upstream: FakeProvider) -> None:
    with pytest.raises(anthropic.RateLimitError) as got:
        gateway.anthropic().messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=5,
            messages=HELLO,
            extra_headers={"X-LLMLens-User-Id": "user-free-07"},
        )  # type: ignore[arg-type]
    body = got.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "budget" in body["error"]["message"]
    assert upstream.requests == []


def test_tier_from_properties_config_users_and_last_month(gateway: Gateway, upstream: FakeProvider) -> None:
    # The same user as a pro (by the request's tier property) is within the $50 limit.
    _call(gateway, "user-free-07", **{"X-LLMLens-Properties": json.dumps({"tier": "pro"})})
    # Last month's spend does not count.
    _call(gateway, "user-free-08")
    _call(gateway, "user-pro-01")
    assert len(upstream.requests) == 3


def test_feature_limit_counts_the_gateways_own_calls(gateway: Gateway, upstream: FakeProvider) -> None:
    upstream.usage = {"input_tokens": 1000, "output_tokens": 1000}  # $0.0125 on gpt-4o: over the $0.01 limit
    headers = {"X-LLMLens-Feature": "code_generation"}
    _call(gateway, "user-pro-01", **headers)
    gateway.wait_rows("SELECT * FROM llm_logs WHERE feature = 'code_generation' AND cost_usd > 0")
    with pytest.raises(openai.RateLimitError) as got:
        _call(gateway, "user-pro-01", **headers)
    assert "feature 'code_generation'" in got.value.message
    assert len(upstream.requests) == 1


def test_budget_api_status_and_validation(gateway: Gateway) -> None:
    with httpx.Client(base_url=gateway.srv.url) as http:
        assert http.get("/api/v1/budgets").json()["tiers"] == {"free": 1.0, "pro": 50.0}
        status = http.get("/api/v1/budgets/status", params={"user_id": "user-free-07"}).json()
        user = status["user"]
        assert user["tier"] == "free" and user["limit_usd"] == 1.0 and user["blocked"] is True
        assert user["spent_usd"] >= 1.25 and user["remaining_usd"] == 0
        pro = http.get("/api/v1/budgets/status", params={"user_id": "user-free-07", "tier": "pro"}).json()["user"]
        assert pro["limit_usd"] == 50.0 and pro["blocked"] is False
        bad = http.put("/api/v1/budgets", json={"tiers": {"free": -1}})
        assert bad.status_code == 422 and "budgets.tiers.free" in bad.json()["error"]
        bad = http.put("/api/v1/budgets", json={"tiers": {"free": 1}, "default_tier": "gold"})
        assert bad.status_code == 422 and "default_tier" in bad.json()["error"]
        assert http.get("/api/v1/budgets/status").status_code == 400
