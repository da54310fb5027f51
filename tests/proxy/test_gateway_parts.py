"""The gateway's pure parts: SSE decoding, upstream URLs, header splitting, budget policy, cache bounds."""

from __future__ import annotations

import pytest

from llmlens.proxy import BudgetPolicy, GatewayConfig, ResponseCache, cache_key, parse_upstreams
from llmlens.proxy._attribution import split_headers
from llmlens.proxy._sse import SseDecoder, stream_events


def test_sse_decoder_handles_split_lines_crlf_and_split_utf8() -> None:
    decoder = SseDecoder()
    data = 'event: message_start\r\ndata: {"a": "é"}\r\n\r\ndata: [DONE]\n\n'.encode()
    events = []
    for i in range(len(data)):  # one byte at a time: every split point, including inside "é"
        events += decoder.feed(data[i : i + 1])
    assert [(e.event, e.data) for e in events] == [("message_start", '{"a": "é"}'), ("", "[DONE]")]
    assert SseDecoder().feed(b": comment\n\ndata: a\ndata: b\n\n")[0].data == "a\nb"


def test_stream_events_match_the_incremental_decoder_at_every_split() -> None:
    streams = [
        b'data: {"a": 1}\n\ndata: {"b": "\xc3\xa9"}\n\ndata: [DONE]\n\n',
        b"event: message_start\ndata: x\n\n: ping\n\nevent: e\ndata: a\ndata: b\nid: 7\n\n\n\ndata:c\n\ndata: tail",
        b"data: one\r\n\r\ndata: two\r\rdata: three\n\n",
    ]
    for stream in streams:
        for cut in range(len(stream) + 1):
            chunks = [c for c in (stream[:cut], stream[cut:]) if c]
            decoder, want = SseDecoder(), []
            for index, chunk in enumerate(chunks):
                want += [(index, e.data.encode()) for e in decoder.feed(chunk)]
            want += [(len(chunks) - 1, e.data.encode()) for e in decoder.close()]
            assert list(stream_events(chunks)) == want, (stream, cut)


def test_upstream_urls_accept_a_base_url_with_or_without_the_version() -> None:
    upstreams = parse_upstreams({"vllm": "http://gpu:8000/v1/"})
    openai, anthropic, vllm = upstreams["openai"], upstreams["anthropic"], upstreams["vllm"]
    assert openai.url_for("v1/chat/completions", "") == "https://api.openai.com/v1/chat/completions"
    assert openai.url_for("chat/completions", "") == "https://api.openai.com/v1/chat/completions"
    assert anthropic.url_for("v1/messages", "beta=true") == "https://api.anthropic.com/v1/messages?beta=true"
    assert vllm.url_for("v1/embeddings", "") == "http://gpu:8000/v1/embeddings"
    with pytest.raises(ValueError, match="bad"):
        parse_upstreams({"bad": "ftp://x"})


def test_headers_split_into_attribution_and_forwarded() -> None:
    raw = [
        (b"authorization", b"Bearer sk-1"),
        (b"host", b"llmlens"),
        (b"content-length", b"10"),
        (b"x-llmlens-user-id", b"u1"),
        (b"x-llmlens-properties", b'{"tier": "pro"}'),
        (b"x-llmlens-trace-id", b"my-request-7"),
        (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        (b"x-stainless-lang", b"python"),
    ]
    attribution, forward = split_headers(raw)
    assert attribution.user_id == "u1" and attribution.tier == "pro"
    assert attribution.trace_id == "0af7651916cd43dd8448eb211c80319c"  # traceparent wins
    assert attribution.parent_span_id == "b7ad6b7169203331"
    assert attribution.credential == b"Bearer sk-1"
    assert forward == [(b"authorization", b"Bearer sk-1"), (b"x-stainless-lang", b"python")]
    bad, _ = split_headers([(b"traceparent", b"garbage"), (b"x-llmlens-properties", b"[1]")])
    assert bad.trace_id is None and len(bad.problems) == 2


def test_budget_policy_tiers_and_errors() -> None:
    policy = BudgetPolicy.from_config(
        {
            "tiers": {"free": 1, "pro": 50},
            "default_tier": "free",
            "users": {"u-pro": "pro"},
            "user_limits": {"u-vip": 500},
            "features": {"code_generation": 500},
        }
    )
    assert policy.user_limit("someone", None) == (1.0, "free")
    assert policy.user_limit("someone", "pro") == (50.0, "pro")
    assert policy.user_limit("someone", "gold") == (1.0, "free")  # unknown tiers fall back
    assert policy.user_limit("u-pro", "free") == (50.0, "pro")  # the config wins over the request
    assert policy.user_limit("u-vip", None) == (500.0, "free")
    assert BudgetPolicy.from_config(policy.to_config()) == policy
    assert not BudgetPolicy.from_config({}).enabled
    with pytest.raises(ValueError, match="unknown budgets keys"):
        BudgetPolicy.from_config({"tier": {}})
    with pytest.raises(ValueError, match=r"budgets\.users\.x"):
        BudgetPolicy.from_config({"tiers": {"free": 1}, "users": {"x": "gold"}})


def test_cache_key_is_canonical_and_per_project_and_credential() -> None:
    a = cache_key("alpha", "openai", "v1/chat/completions", "", b'{"model": "m", "n": 1}', b"Bearer k1")
    b = cache_key("alpha", "openai", "v1/chat/completions", "", b'{"n":1,"model":"m"}', b"Bearer k1")
    c = cache_key("alpha", "openai", "v1/chat/completions", "", b'{"n":1,"model":"m"}', b"Bearer k2")
    d = cache_key("beta", "openai", "v1/chat/completions", "", b'{"n":1,"model":"m"}', b"Bearer k1")
    assert a == b and len({a, c, d}) == 3


def test_cache_bounds_ttl_and_lru() -> None:
    now = [0.0]
    cache = ResponseCache(ttl_s=10, max_entries=2, max_bytes=10_000, clock=lambda: now[0])
    for key in (b"a", b"b", b"c"):
        assert cache.put(key, 200, [], [b"x" * 100])
    assert cache.get(b"a") is None and len(cache) == 2  # least recently used went first
    assert not cache.put(b"big", 200, [], [b"x" * 2000])  # over a tenth of the byte bound
    now[0] = 11
    assert cache.get(b"b") is None and cache.get(b"c") is None  # expired
    assert cache.size_bytes == 0


def test_gateway_config() -> None:
    config = GatewayConfig.from_config({"cache": ["openai"], "timeout_s": 30})
    assert config.caches("openai") and not config.caches("anthropic")
    with pytest.raises(ValueError, match="unknown gateway keys"):
        GatewayConfig.from_config({"cache_ttl": 1})
