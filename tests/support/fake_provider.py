"""A local stand-in for OpenAI and Anthropic: a real HTTP server speaking their wire formats, with scenarios.

    with FakeProvider() as fp:
        client = openai.OpenAI(base_url=fp.openai_base_url, api_key="sk-test")
        anthropic_client = anthropic.Anthropic(base_url=fp.anthropic_base_url, api_key="sk-ant-test")

A scenario (see `SCENARIOS`) is chosen per request by, in this order: the `X-Fake-Scenario` header, the
next entry queued with `fp.enqueue(...)`, the model name (`fake-ratelimit`, `fake-tool`, ...; a model in
`fp.judge_models` plays the judge). Any other model answers normally. Run `python -m tests.support.fake_provider --port 9999` to try it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, replace
from functools import partial
from types import TracebackType
from typing import Any

import uvicorn

from . import _fake_anthropic as anthropic_wire
from . import _fake_openai as openai_wire
from ._fake_common import (
    CHUNKS_BEFORE_BREAK,
    ERROR_SCENARIOS,
    MID_STREAM_SCENARIOS,
    SCENARIOS,
    Frame,
    IdFactory,
    Turn,
    check_usage_override,
    count_tokens,
    default_reply_text,
    normalize_scenario,
    scenario_for_model,
)
from ._fake_planning import ApiKind, plan_turn, prompt_text

__all__ = ["SCENARIOS", "FakeProvider", "RecordedRequest", "count_tokens", "default_reply_text"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SCENARIO_HEADER = "x-fake-scenario"
ROUTES: dict[tuple[str, str], ApiKind | str] = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/responses"): "responses",
    ("POST", "/v1/completions"): "completions",
    ("POST", "/v1/messages"): "messages",
    ("POST", "/v1/embeddings"): "embeddings",
    ("POST", "/v1/messages/count_tokens"): "count_tokens",
    ("GET", "/v1/models"): "models",
}
ANTHROPIC_KINDS = {"messages", "count_tokens"}
# The per-test settings that `FakeProvider.reset()` restores.
_SETTINGS = (
    "reply_text",
    "usage",
    "ttft_delay_s",
    "chunk_delay_s",
    "slow_ttft_delay_s",
    "slow_chunk_delay_s",
    "hang_s",
    "retry_after_s",
    "embedding_dimensions",
    "tool_arguments",
    "api_key",
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, before any scenario ran."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    json: Any  # the parsed body, or None if it was not JSON
    received_at: float  # time.monotonic()
    client: tuple[str, int] | None = None  # the peer address; one port per TCP connection (keep-alive)
    scenario: str | None = None  # filled in once resolved; None for unrouted requests


class FakeProvider:
    """An OpenAI + Anthropic compatible HTTP server on 127.0.0.1, run by uvicorn in a background thread.

    Settings are plain attributes, read on every request, so a test may change them at any time.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reply_text: str | None = None,
        usage: dict[str, int] | None = None,
        ttft_delay_s: float = 0.0,
        chunk_delay_s: float = 0.0,
        slow_ttft_delay_s: float = 0.3,
        slow_chunk_delay_s: float = 0.1,
        hang_s: float = 30.0,
        retry_after_s: float = 1.0,
        embedding_dimensions: int = 8,
        tool_arguments: dict[str, Any] | None = None,
        api_key: str | None = None,
        seed: int = 0,
        tls_cert: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self._tls_cert = tls_cert  # (certificate file, key file): serve HTTPS
        self.reply_text = reply_text  # None: "Fake reply to: <last user message>"
        self.usage = usage  # neutral keys, see Usage; merged over the counted defaults
        self.ttft_delay_s = ttft_delay_s  # before the first generated chunk (streams) or the body
        self.chunk_delay_s = chunk_delay_s  # between generated chunks
        self.slow_ttft_delay_s = slow_ttft_delay_s
        self.slow_chunk_delay_s = slow_chunk_delay_s
        self.hang_s = hang_s
        self.retry_after_s = retry_after_s
        self.embedding_dimensions = embedding_dimensions
        self.tool_arguments = tool_arguments  # None: derived from the tool's JSON schema
        self.api_key = api_key  # if set, other keys get the provider's 401
        # Models that answer as an LLM judge (scenario `judge`: a JSON verdict derived from the prompt), so that
        # a judge can be a real, priced model name.
        self.judge_models: set[str] = set()
        self._settings = {name: getattr(self, name) for name in _SETTINGS}
        self._ids = IdFactory(seed)
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._queue: collections.deque[str] = collections.deque()

    # --- configuration and inspection ---------------------------------------------------------------------

    @property
    def usage(self) -> dict[str, int] | None:
        return self._usage

    @usage.setter
    def usage(self, value: dict[str, int] | None) -> None:
        self._usage = check_usage_override(value)

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("FakeProvider is not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._tls_cert else 'http'}://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("the fake provider has received no request")
            return self._requests[-1]

    @property
    def pending_scenarios(self) -> list[str]:
        with self._lock:
            return list(self._queue)

    def enqueue(self, scenario: str, times: int = 1) -> None:
        """Make the next `times` requests (without an X-Fake-Scenario header) play `scenario`."""
        name = normalize_scenario(scenario)
        with self._lock:
            self._queue.extend([name] * times)

    def clear(self) -> None:
        """Forget recorded requests and queued scenarios (settings stay as they are)."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def reset(self) -> None:
        """`clear()` and put every setting back to what the constructor was given: lets tests share
        one running provider (starting and stopping uvicorn costs ~0.2 s)."""
        self.clear()
        for name, value in self._settings.items():
            setattr(self, name, value)
        self.judge_models = set()

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        if self._thread is not None:
            raise RuntimeError("FakeProvider already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(1024)
        self._socket = sock
        config = uvicorn.Config(
            _FakeApp(self),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=2,
            ssl_certfile=self._tls_cert[0] if self._tls_cert else None,
            ssl_keyfile=self._tls_cert[1] if self._tls_cert else None,
        )
        self._server = uvicorn.Server(config)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="fake-provider", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("FakeProvider failed to start")
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def stop(self) -> None:
        """Stop serving; hanging and stalled requests are cut short so this takes well under a second."""
        if self._thread is None or self._server is None:
            return
        self._stopping.set()
        self._server.should_exit = True
        self._server.force_exit = True  # our handlers already end on _stopping; do not wait on clients
        self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._thread = None
        self._server = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- used by the app ----------------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _pop_queued(self) -> str | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up early when the provider stops, so shutdown never waits on a hang."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 0.05))


class _Exchange:
    """One request/response on the ASGI interface."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def start(self, status: int, headers: dict[str, str]) -> None:
        self.started = True
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def body(self, data: bytes, more: bool = False) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        await self.start(status, headers | {"content-type": "application/json", "content-length": str(len(data))})
        await self.body(data)


class _FakeApp:
    """The ASGI application behind FakeProvider."""

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        recorded = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=bytes(body),
            json=parsed,
            received_at=time.monotonic(),
            client=tuple(scope["client"]) if scope.get("client") else None,
        )
        await _Handler(self.provider, recorded, _Exchange(send)).run()


class _Handler:
    """Routes one recorded request, resolves its scenario and writes the answer."""

    def __init__(self, provider: FakeProvider, request: RecordedRequest, out: _Exchange) -> None:
        self.p = provider
        self.request = request
        self.out = out
        self.kind = ROUTES.get((request.method, request.path))
        self.is_anthropic = self.kind in ANTHROPIC_KINDS or request.path.startswith("/v1/messages")
        self.request_id = self.p._ids.anthropic_request() if self.is_anthropic else self.p._ids.openai_request()

    def _headers(self) -> dict[str, str]:
        if self.is_anthropic:
            return {"request-id": self.request_id, "anthropic-organization-id": "fake-org"}
        return {
            "x-request-id": self.request_id,
            "openai-organization": "fake-org",
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
        }

    async def _invalid(self, status: int, message: str, anthropic_type: str = "invalid_request_error") -> None:
        if self.is_anthropic:
            payload = anthropic_wire.error_body(anthropic_type, message, self.request_id)
        else:
            payload = openai_wire.error_body(message, "invalid_request_error")
        await self.out.json(status, payload, self._headers())

    def _scenario(self) -> str:
        header = self.request.headers.get(SCENARIO_HEADER)
        if header:
            return normalize_scenario(header)
        queued = self.p._pop_queued()
        if queued is not None:
            return queued
        body = self.request.json if isinstance(self.request.json, dict) else {}
        model = str(body.get("model", ""))
        if model in self.p.judge_models:
            return "judge"
        return scenario_for_model(model) or "normal"

    def _api_key_ok(self) -> bool:
        if self.p.api_key is None:
            return True
        headers = self.request.headers
        return self.p.api_key in (
            headers.get("x-api-key"),
            headers.get("authorization", "").removeprefix("Bearer "),
        )

    async def run(self) -> None:
        body = self.request.json
        scenario: str | None = None
        problem: str | None = None
        if self.kind not in (None, "models"):
            try:
                scenario = self._scenario() if isinstance(body, dict) else None
            except ValueError as exc:
                problem = str(exc)
        # Recorded once the scenario is known, so a test never sees a request without it.
        self.p._record(replace(self.request, scenario=scenario))
        if self.kind is None:
            await self._invalid(404, f"Invalid URL ({self.request.method} {self.request.path})", "not_found_error")
            return
        if self.kind == "models":
            await self.out.json(200, openai_wire.models_list(int(time.time())), self._headers())
            return
        if not isinstance(body, dict):
            await self._invalid(400, "We could not parse the JSON body of your request.")
            return
        if problem is not None or scenario is None:
            await self._invalid(400, problem or "no scenario")
            return
        if not self._api_key_ok():
            scenario = "auth"
        if scenario == "hang":
            await self.p._sleep(self.p.hang_s)
            if self.p._stopping.is_set():
                await self._invalid(503, "fake provider is shutting down")
                return
            scenario = "normal"
        model = str(body.get("model", ""))
        if scenario in ERROR_SCENARIOS:
            await self._error(scenario, model)
        elif self.kind == "embeddings":
            await self.out.json(200, openai_wire.embeddings(body, self.p.embedding_dimensions), self._headers())
        elif self.kind == "count_tokens":
            tokens = count_tokens(prompt_text("messages", body))
            await self.out.json(200, {"input_tokens": tokens}, self._headers())
        else:
            await self._generate(self.kind, body, scenario)  # type: ignore[arg-type]

    async def _error(self, scenario: str, model: str) -> None:
        if self.is_anthropic:
            status, payload, extra = anthropic_wire.error_response(
                scenario, model, self.p.retry_after_s, self.request_id
            )
        else:
            status, payload, extra = openai_wire.error_response(scenario, model, self.p.retry_after_s)
        await self.out.json(status, payload, self._headers() | extra)

    def _delays(self, scenario: str) -> tuple[float, float]:
        if scenario == "slow":
            return max(self.p.ttft_delay_s, self.p.slow_ttft_delay_s), max(
                self.p.chunk_delay_s, self.p.slow_chunk_delay_s
            )
        return self.p.ttft_delay_s, self.p.chunk_delay_s

    async def _generate(self, kind: ApiKind, body: dict[str, Any], scenario: str) -> None:
        turn = plan_turn(
            kind,
            body,
            scenario=scenario,
            ids=self.p._ids,
            reply_text=self.p.reply_text,
            usage_override=self.p.usage,
            tool_arguments=self.p.tool_arguments,
        )
        frames_of, payload_of, break_frame = _wire_for(kind, turn, self.p._ids, body)
        ttft, gap = self._delays(scenario)
        if body.get("stream"):
            await self._stream(frames_of(), scenario, ttft, gap, break_frame)
            return
        payload = payload_of()
        await self.p._sleep(ttft + gap * max(0, len(turn.chunks) - 1))
        if scenario == "stall":
            await self.p._sleep(self.p.hang_s)
        if scenario == "stream-error":
            await self._error("error", str(body.get("model", "")))
            return
        if scenario == "disconnect":
            data = json.dumps(payload).encode()
            headers = self._headers() | {"content-type": "application/json", "content-length": str(len(data))}
            await self.out.start(200, headers)
            await self.out.body(data[: len(data) // 2], more=True)
            return  # uvicorn closes the connection on a response left incomplete
        await self.out.json(200, payload, self._headers())

    async def _stream(self, frames: list[Frame], scenario: str, ttft: float, gap: float, broken: Frame) -> None:
        headers = self._headers() | {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
        }
        await self.out.start(200, headers)
        sent_content = 0
        for frame in frames:
            if frame.content:
                if sent_content == CHUNKS_BEFORE_BREAK and scenario in MID_STREAM_SCENARIOS:
                    await self._break_stream(scenario, broken)
                    return
                await self.p._sleep(ttft if sent_content == 0 else gap)
                sent_content += 1
            await self.out.body(frame.data, more=True)
        await self.out.body(b"")

    async def _break_stream(self, scenario: str, broken: Frame) -> None:
        if scenario == "stream-error":
            await self.out.body(broken.data, more=True)
            await self.out.body(b"")
        elif scenario == "stall":
            await self.p._sleep(self.p.hang_s)
            await self.out.body(b"")
        # "disconnect": return with the response incomplete; uvicorn drops the connection.


def _wire_for(
    kind: ApiKind, turn: Turn, ids: IdFactory, body: dict[str, Any]
) -> tuple[Callable[[], list[Frame]], Callable[[], dict[str, Any]], Frame]:
    """The stream builder, JSON builder and mid-stream error event of one API, sharing ids within a turn."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if kind == "chat":
        return (
            partial(openai_wire.chat_completion_frames, turn, ids, include_usage),
            partial(openai_wire.chat_completion, turn, ids),
            openai_wire.stream_error_frame(),
        )
    if kind == "completions":
        return (
            partial(openai_wire.completion_frames, turn, ids, include_usage),
            partial(openai_wire.completion, turn, ids),
            openai_wire.stream_error_frame(),
        )
    if kind == "responses":
        response = openai_wire.ResponseBuilder(turn, ids, body)
        return (
            response.frames,
            partial(response.response, done=True),
            openai_wire.responses_stream_error_frame(),
        )
    message = anthropic_wire.MessageBuilder(turn, ids)
    return message.frames, message.message, anthropic_wire.stream_error_frame()


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted: `python -m tests.support.fake_provider --port 9999`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--ttft-delay", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--reply", default=None, help="fixed reply text instead of echoing the prompt")
    args = parser.parse_args(argv)
    provider = FakeProvider(
        host=args.host,
        port=args.port,
        ttft_delay_s=args.ttft_delay,
        chunk_delay_s=args.chunk_delay,
        reply_text=args.reply,
    )
    with provider:
        print(f"fake provider on {provider.url}")
        print(f"  OpenAI:    base_url={provider.openai_base_url}")
        print(f"  Anthropic: base_url={provider.anthropic_base_url}")
        print(f"  scenarios (model fake-<name> or header X-Fake-Scenario): {', '.join(sorted(SCENARIOS))}")
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
