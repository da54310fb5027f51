"""A stand-in LLM provider for the demo: answers OpenAI chat completions and embeddings and Anthropic messages
in process, with text that says it is simulated, so that Replay, Compare and the semantic tier of Insights
work offline.

It never leaves the process: `SimulatedTransport` answers requests to SIMULATED_HOST itself and passes
every other request to the network. Upstreams pointed at `simulated_base_url(...)` are "simulated", and
the spans of their calls carry SIMULATED_ATTRIBUTE so that the UI labels them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

SIMULATED_HOST = "simulated.llmlens.invalid"  # `.invalid` can never resolve: nothing is sent anywhere
SIMULATED_ATTRIBUTE = "llmlens.simulated"
SIMULATED_UPSTREAM = "simulated"  # an upstream name of its own, for `simulated:any-model` in Compare
NOTICE = "[simulated by llmlens: the demo's stand-in provider, not a real model]"


def simulated_base_url(wire: str) -> str:
    """The base URL of the stand-in for one wire format (`openai` or `anthropic`)."""
    return f"http://{SIMULATED_HOST}/{wire}/v1"


def simulated_upstreams(configured: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
    """Upstreams with the stand-in in place of every default one the user did not configure, plus its own."""
    out = dict(configured)
    for name in defaults:
        if name not in configured:
            out[name] = simulated_base_url("anthropic" if name.startswith("anthropic") else "openai")
    out.setdefault(SIMULATED_UPSTREAM, simulated_base_url("openai"))
    return out


def is_simulated_url(url: str) -> bool:
    return httpx.URL(url).host == SIMULATED_HOST if url else False


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text(message.get("content")).strip()
            if text:
                return text
    return ""


def _tokens(text: str) -> int:
    """A rough count (words and a third): the stand-in has no tokenizer, and its usage is only indicative."""
    words = len(text.split())
    return max(1, words + words // 3)


_JUDGE_SECTION = re.compile(r"<(question|answer|context|reference|chunk)>(.*?)</\1>", re.DOTALL)
_WORD = re.compile(r"[a-z0-9]{4,}")


def simulated_verdict(prompt: str) -> str | None:
    """A judge prompt of llmlens's templates (tagged sections, a JSON verdict asked for) gets a verdict: the
    share of the judged text's words found in its evidence. Labelled simulated, like every answer here."""
    if '"score"' not in prompt:
        return None
    sections = {m.group(1): m.group(2) for m in _JUDGE_SECTION.finditer(prompt)}
    if "chunk" in sections:
        judged, evidence = sections.get("question", ""), sections["chunk"]
    elif "answer" in sections:
        judged = sections["answer"]
        evidence = sections.get("context") or sections.get("reference") or sections.get("question", "")
    else:
        return None
    wanted = set(_WORD.findall(judged.lower()))
    found = wanted & set(_WORD.findall(evidence.lower()))
    score = round(len(found) / len(wanted), 2) if wanted else 0.0
    reasoning = f"{NOTICE} {len(found)} of {len(wanted)} words of the judged text appear in its evidence"
    return json.dumps({"score": score, "reasoning": reasoning})


def simulated_answer(model: str, body: Mapping[str, Any]) -> tuple[str, int, int]:
    """(answer text, prompt tokens, completion tokens) for a request body of either wire format."""
    messages = body.get("messages")
    prompt = json.dumps(messages, ensure_ascii=False, default=str) + _text(body.get("system"))
    verdict = simulated_verdict(_last_user_text(messages))
    if verdict is not None:
        return verdict, _tokens(prompt), _tokens(verdict)
    question = " ".join(_last_user_text(messages).split())
    if len(question) > 80:
        question = question[:77].rstrip() + "..."
    about = f'"{question}"' if question else "this conversation"
    answer = f"{NOTICE} {model or 'The model'} would answer {about} here."
    prompt = json.dumps(messages, ensure_ascii=False, default=str) + _text(body.get("system"))
    return answer, _tokens(prompt), _tokens(answer)


def _id(prefix: str, body: Mapping[str, Any]) -> str:
    digest = hashlib.blake2b(json.dumps(body, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()
    return f"{prefix}{digest}"


def openai_response(body: Mapping[str, Any]) -> dict[str, Any]:
    model = str(body.get("model") or "")
    text, prompt_tokens, completion_tokens = simulated_answer(model, body)
    return {
        "id": _id("chatcmpl-simulated-", body),
        "object": "chat.completion",
        "model": model,
        "system_fingerprint": "llmlens-simulated",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def anthropic_response(body: Mapping[str, Any]) -> dict[str, Any]:
    model = str(body.get("model") or "")
    text, prompt_tokens, completion_tokens = simulated_answer(model, body)
    return {
        "id": _id("msg_simulated_", body),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
    }


EMBEDDING_MODEL = "simulated-embedding"
_EMBEDDING_DIMENSIONS = 256
_EMBEDDING_WORD = re.compile(r"\w+")


def simulated_embedding(text: str) -> list[float]:
    """A unit vector that follows a text's words (each word adds +1 or -1 at a dimension its hash picks): texts
    sharing most of their words point almost the same way. A stand-in for meaning, for the demo only."""
    values = [0.0] * _EMBEDDING_DIMENSIONS
    for word in _EMBEDDING_WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        values[int.from_bytes(digest[:4], "big") % _EMBEDDING_DIMENSIONS] += 1.0 if digest[4] & 1 else -1.0
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [v / norm for v in values]


def embeddings_response(body: Mapping[str, Any]) -> dict[str, Any]:
    raw = body.get("input", "")
    texts = [raw] if isinstance(raw, str) else [str(t) for t in raw] if isinstance(raw, list) else [str(raw)]
    tokens = sum(_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": simulated_embedding(t)} for i, t in enumerate(texts)],
        "model": str(body.get("model") or EMBEDDING_MODEL),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"type": "invalid_request_error", "message": message}})


def simulated_response(request: httpx.Request) -> httpx.Response:
    """The stand-in's answer to one request: POST /openai/v1/chat/completions, /openai/v1/embeddings or
    /anthropic/v1/messages."""
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        return _error(400, "the simulated provider takes a JSON body")
    if not isinstance(body, dict):
        return _error(400, "the simulated provider takes a JSON object")
    if body.get("stream"):
        return _error(400, "the simulated provider does not stream; send the request without stream")
    path = request.url.path
    if request.method == "POST" and path.endswith("/chat/completions"):
        return httpx.Response(200, json=openai_response(body))
    if request.method == "POST" and path.endswith("/messages"):
        return httpx.Response(200, json=anthropic_response(body))
    if request.method == "POST" and path.endswith("/embeddings"):
        return httpx.Response(200, json=embeddings_response(body))
    return _error(
        404, f"the simulated provider answers POST .../chat/completions, .../messages and .../embeddings, not {path}"
    )


class SimulatedTransport(httpx.AsyncBaseTransport):
    """Answers requests to SIMULATED_HOST in process; sends the rest on with `network`."""

    def __init__(self, network: httpx.AsyncBaseTransport | None = None) -> None:
        self._network = network or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == SIMULATED_HOST:
            await request.aread()
            return simulated_response(request)
        return await self._network.handle_async_request(request)

    async def aclose(self) -> None:
        await self._network.aclose()


class SimulatedSyncTransport(httpx.BaseTransport):
    """SimulatedTransport for blocking clients (the insights worker's embeddings)."""

    def __init__(self, network: httpx.BaseTransport | None = None) -> None:
        self._network = network or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == SIMULATED_HOST:
            request.read()
            return simulated_response(request)
        return self._network.handle_request(request)

    def close(self) -> None:
        self._network.close()
