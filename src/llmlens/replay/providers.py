"""Minimal async clients for OpenAI chat completions (and compatible servers) and Anthropic messages.

Upstreams are the gateway's (`settings.upstreams`, name -> base URL) over the public defaults. Keys
come from the environment given at the edge: `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `<NAME>_API_KEY`.
That environment is the server's for replays asked over HTTP, so errors name the process that lacks
a key (`KeySource`), and a call of a provider with no upstream of its own names the upstream to add.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from llmlens.model import classify_error

from .simulated import is_simulated_url, simulated_base_url
from .wire import WireFormat, as_dict

DEFAULT_UPSTREAMS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}
ANTHROPIC_VERSION = "2023-06-01"
# Upstreams that cannot be called without a key; others (vLLM, Ollama) get one only when it is set.
_KEY_REQUIRED = frozenset({"openai", "anthropic"})
_OPENAI_MODELS = re.compile(r"^(gpt-|o\d|chatgpt|text-|davinci|babbage|ft:gpt)")


class ProviderError(Exception):
    """A replay that cannot be sent: the message says what to fix."""


@dataclass(frozen=True, slots=True)
class KeySource:
    """Whose environment the API keys come from, and how to give it one: for messages about a missing key."""

    owner: str  # e.g. "the llmlens server (pid 4242)"
    fix: str  # how to set a variable there; `{variable}` is filled in

    @classmethod
    def server(cls, pid: int) -> KeySource:
        return cls(
            f"the llmlens server (pid {pid})",
            "replays are sent by the server, so set {variable} in the environment the server is started from "
            "and restart it (a key set in the shell that runs `llmlens replay`, or in the browser, does not "
            "reach the server)",
        )

    @classmethod
    def this_process(cls) -> KeySource:
        return cls("this llmlens command", "set {variable} in this shell, e.g. `export {variable}=...`")


class MissingKey(ProviderError):
    def __init__(self, upstream: str, variable: str, source: KeySource) -> None:
        super().__init__(
            f"{source.owner} has no {variable} in its environment, and the {upstream!r} upstream needs it: "
            + source.fix.format(variable=variable)
        )
        self.variable = variable


class UnknownUpstream(ProviderError):
    """A call of a provider that has no upstream here (no URL to replay it on)."""


class Unreachable(ProviderError):
    """The endpoint did not answer (connection refused, DNS, timeout)."""


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    base_url: str
    wire: WireFormat
    configured: bool = True  # False: a provider seen on a stored call, with no URL here to send it to

    @property
    def simulated(self) -> bool:
        """Answered by the demo's stand-in provider (replay/simulated.py): needs no key, and is labelled."""
        return is_simulated_url(self.base_url)

    @property
    def key_variable(self) -> str:
        return re.sub(r"[^A-Z0-9]", "_", self.name.upper()) + "_API_KEY"

    @property
    def endpoint(self) -> str:
        if self.wire == "anthropic":
            return self.base_url + ("/messages" if self.base_url.endswith("/v1") else "/v1/messages")
        return self.base_url + "/chat/completions"


@dataclass(slots=True)
class CallOutcome:
    """What one replayed call answered."""

    request_body: dict[str, Any]
    status: int
    latency_ms: float
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    response_id: str | None = None
    response_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    error_type: str | None = None
    error_message: str | None = None


def _upstream_name(provider: str) -> str:
    """The upstream name a provider would have here (`Vertex AI` -> `vertex_ai`)."""
    return re.sub(r"[^a-z0-9_-]+", "_", provider.strip().lower()).strip("_")


def _wire_of(name: str, base_url: str) -> WireFormat:
    return "anthropic" if name.startswith("anthropic") or "anthropic" in base_url else "openai"


class Providers:
    """Which upstream serves a model, with what key, and sending one call to it."""

    def __init__(
        self,
        upstreams: Mapping[str, str],
        env: Mapping[str, str],
        *,
        timeout_s: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
        key_source: KeySource | None = None,
        stand_in: bool = False,
    ) -> None:
        """`stand_in`: calls of providers without an upstream of their own go to the simulated stand-in."""
        merged = {**DEFAULT_UPSTREAMS, **upstreams}
        self.upstreams = {name: Upstream(name, url.rstrip("/"), _wire_of(name, url)) for name, url in merged.items()}
        self._env = dict(env)
        self.key_source = key_source or KeySource.this_process()
        self.stand_in = stand_in
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)), transport=transport, trust_env=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def upstream_of(self, span: Mapping[str, Any]) -> Upstream:
        """The upstream a stored call went to: the gateway's, a configured name, or by provider.

        A provider with no upstream here (a Gemini or self-hosted call, say) gives an unconfigured
        Upstream named after it, so that replaying on it asks for that upstream, not for OpenAI's key.
        """
        metadata = as_dict(span.get("metadata"))
        provider = str(span.get("provider") or "").strip()
        for name in (metadata.get("gateway_upstream"), provider, _upstream_name(provider)):
            if isinstance(name, str) and name and name in self.upstreams:
                return self.upstreams[name]
        lowered = provider.lower()
        model = str(span.get("model") or "").lower()
        if "anthropic" in lowered or model.startswith("claude"):
            return self.upstreams["anthropic"]
        if "azure" in lowered:
            return self.upstreams.get("azure") or self._without_upstream("azure")
        if not lowered or lowered == "openai":
            return self.upstreams["openai"]
        return self._without_upstream(_upstream_name(provider) or "unknown")

    def _without_upstream(self, name: str) -> Upstream:
        """A provider with no upstream here: the stand-in when it answers for every provider, else unconfigured."""
        if self.stand_in:
            return Upstream(name, simulated_base_url("openai"), "openai")
        return Upstream(name, "", "openai", configured=False)

    def route(self, model: str, original: Upstream, original_model: str | None) -> tuple[Upstream, str]:
        """`upstream:model` names the upstream; a bare model goes where its family lives."""
        name, sep, rest = model.partition(":")
        if sep and name in self.upstreams and rest:
            return self.upstreams[name], rest
        if model == original_model:
            return original, model
        if model.startswith("claude") and original.wire != "anthropic":
            return self.upstreams["anthropic"], model
        if _OPENAI_MODELS.match(model) and (original.wire == "anthropic" or not original.configured):
            return self.upstreams["openai"], model
        return original, model

    def key_for(self, upstream: Upstream) -> str | None:
        if not upstream.configured:
            raise UnknownUpstream(self._no_upstream_message(upstream))
        key = self._env.get(upstream.key_variable)
        if not key and upstream.name in _KEY_REQUIRED and not upstream.simulated:
            raise MissingKey(upstream.name, upstream.key_variable, self.key_source)
        return key or None

    def _no_upstream_message(self, upstream: Upstream) -> str:
        name = upstream.name
        return (
            f"this call went to provider {name!r}, and {self.key_source.owner} has no {name!r} upstream to replay "
            f"it on. Add its OpenAI-compatible base URL: `llmlens serve --upstream {name}=URL`, or "
            f'`{name} = "URL"` under [upstreams] in llmlens.toml; a key it needs is read from '
            f"{upstream.key_variable}. Or replay it on a configured upstream with a model named UPSTREAM:MODEL "
            f"(configured: {', '.join(sorted(self.upstreams))})"
        )

    def headers(self, upstream: Upstream) -> dict[str, str]:
        key = self.key_for(upstream)
        headers = {"content-type": "application/json"}
        if upstream.wire == "anthropic":
            headers["anthropic-version"] = ANTHROPIC_VERSION
            if key:
                headers["x-api-key"] = key
        elif key:
            headers["authorization"] = f"Bearer {key}"
            if "azure" in upstream.base_url:
                headers["api-key"] = key
        return headers

    async def send(self, upstream: Upstream, body: dict[str, Any]) -> CallOutcome:
        headers = self.headers(upstream)
        data = json.dumps(body, ensure_ascii=False).encode()
        started = time.perf_counter()
        try:
            response = await self._client.post(upstream.endpoint, content=data, headers=headers)
        except httpx.TimeoutException as exc:
            raise Unreachable(f"upstream {upstream.name!r} at {upstream.endpoint} timed out ({exc!r})") from exc
        except httpx.HTTPError as exc:
            raise Unreachable(
                f"cannot reach upstream {upstream.name!r} at {upstream.endpoint}: {exc or type(exc).__name__}; "
                f"set its URL with --upstream {upstream.name}=URL or the `upstreams` setting"
            ) from exc
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        outcome = CallOutcome(request_body=body, status=response.status_code, latency_ms=latency_ms)
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if response.status_code >= 400 or not isinstance(doc, dict):
            _read_error(outcome, doc, response.text)
        elif upstream.wire == "anthropic":
            _read_anthropic(outcome, doc)
        else:
            _read_openai(outcome, doc)
        return outcome


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    return arguments


def _read_error(outcome: CallOutcome, doc: Any, text: str) -> None:
    error = doc.get("error") if isinstance(doc, dict) else None
    code: str | None = None
    if isinstance(error, dict):
        code = str(error.get("code") or error.get("type") or "") or None
        outcome.error_message = str(error.get("message") or "") or None
    if outcome.error_message is None:
        outcome.error_message = text[:500] or f"HTTP {outcome.status}"
    outcome.error_type = classify_error(code, outcome.error_message, status=outcome.status).value


def _read_openai(outcome: CallOutcome, doc: dict[str, Any]) -> None:
    outcome.response_id = doc.get("id") if isinstance(doc.get("id"), str) else None
    outcome.response_model = doc.get("model") if isinstance(doc.get("model"), str) else None
    choices = doc.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    outcome.finish_reason = choice.get("finish_reason")
    message = as_dict(choice.get("message"))
    content = message.get("content")
    outcome.text = content if isinstance(content, str) else ""
    for call in message.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            outcome.tool_calls.append(
                {"id": call.get("id"), "name": fn.get("name"), "arguments": parse_arguments(fn.get("arguments"))}
            )
    usage = as_dict(doc.get("usage"))
    outcome.prompt_tokens = _int(usage.get("prompt_tokens"))
    outcome.completion_tokens = _int(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        outcome.cached_tokens = _int(details.get("cached_tokens"))
    details = usage.get("completion_tokens_details")
    if isinstance(details, dict):
        outcome.reasoning_tokens = _int(details.get("reasoning_tokens"))


def _read_anthropic(outcome: CallOutcome, doc: dict[str, Any]) -> None:
    outcome.response_id = doc.get("id") if isinstance(doc.get("id"), str) else None
    outcome.response_model = doc.get("model") if isinstance(doc.get("model"), str) else None
    outcome.finish_reason = doc.get("stop_reason")
    texts: list[str] = []
    for block in doc.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            outcome.tool_calls.append(
                {"id": block.get("id"), "name": block.get("name"), "arguments": block.get("input")}
            )
    outcome.text = "".join(texts)
    usage = as_dict(doc.get("usage"))
    outcome.prompt_tokens = _int(usage.get("input_tokens"))
    outcome.completion_tokens = _int(usage.get("output_tokens"))
    outcome.cached_tokens = _int(usage.get("cache_read_input_tokens"))
    outcome.cache_write_tokens = _int(usage.get("cache_creation_input_tokens"))
