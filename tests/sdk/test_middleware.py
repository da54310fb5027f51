"""Request spans from the ASGI (Starlette, served by uvicorn) and WSGI (wsgiref) middleware."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import openai
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from tests.sdk._capture import CaptureServer
from tests.support.fake_provider import FakeProvider

import llmlens


def _serve_asgi(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


def test_asgi_request_span_is_parent_of_llm_spans(
    init_capture: Callable[..., CaptureServer], provider: FakeProvider
) -> None:
    cap = init_capture()
    llmlens.instrument_openai()
    client = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="sk", max_retries=0)

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        result = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": body["q"]}])
        return JSONResponse({"answer": result.choices[0].message.content})

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("handler failed")

    app = Starlette(routes=[Route("/chat/{room}", chat, methods=["POST"]), Route("/boom", boom)])
    server, thread, url = _serve_asgi(llmlens.LLMLensASGIMiddleware(app))
    try:
        response = httpx.post(f"{url}/chat/42", json={"q": "hello"})
        assert response.status_code == 200
        assert httpx.get(f"{url}/boom").status_code == 500
    finally:
        server.should_exit = True
        thread.join(5)
        llmlens.uninstrument_openai()
    assert llmlens.flush(5)
    spans = list(cap.spans())
    request = next(s for s in spans if s["kind"] == "request" and s["http_route"] == "/chat/{room}")
    llm = next(s for s in spans if s["kind"] == "llm")
    assert llm["parent_span_id"] == request["span_id"] and llm["trace_id"] == request["trace_id"]
    assert request["name"] == "POST /chat/{room}" and request["http_method"] == "POST"
    assert request["http_status"] == 200 and request["http_request_bytes"] == len(b'{"q":"hello"}')
    assert request["http_response_bytes"] == len(response.content) and request["latency_ms"] > 0
    failed = next(s for s in spans if s.get("http_route") == "/boom")
    assert failed["status"] == "error" and failed["http_status"] == 500


def test_wsgi_request_span(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with llmlens.span("work", kind="chain"):
            pass
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"made", b"!"]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = make_server("127.0.0.1", 0, llmlens.LLMLensWSGIMiddleware(app), handler_class=QuietHandler)
    thread = threading.Thread(target=httpd.handle_request, daemon=True)
    thread.start()
    response = httpx.post(f"http://127.0.0.1:{httpd.server_port}/items", content=b"abc")
    thread.join(5)
    httpd.server_close()
    assert response.status_code == 201
    assert llmlens.flush(5)
    spans = {s["name"]: s for s in cap.spans()}
    request = spans["POST /items"]
    assert request["http_status"] == 201 and request["http_response_bytes"] == 5
    assert request["http_request_bytes"] == 3
    assert spans["work"]["parent_span_id"] == request["span_id"]


_UVICORN_APP = """
import llmlens
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

llmlens.init(url="{url}", service="sigterm-app")

async def hello(request):
    return PlainTextResponse("hi")

app = Starlette(routes=[Route("/hello", hello)])
app.add_middleware(llmlens.LLMLensASGIMiddleware)
"""


def test_asgi_app_stopped_by_sigterm_sends_what_it_queued(tmp_path: Any) -> None:
    """uvicorn re-raises SIGTERM after shutting down, so exit hooks never run: the middleware flushes
    on the lifespan's shutdown instead, and the last request's span still arrives."""
    import os
    import signal
    import subprocess
    import sys

    from tests.support.llmlens_server import LLMLensServer

    with LLMLensServer(tmp_path / "data") as srv:
        (tmp_path / "sigterm_app.py").write_text(_UVICORN_APP.format(url=srv.url))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLENS_") and k != "PYTEST_CURRENT_TEST"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "sigterm_app:app", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=5).text == "hi"
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, "the app did not start"
                    time.sleep(0.05)
            # Well inside the exporter's batch delay: nothing has been sent yet.
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        rows = srv.sql("SELECT name, service FROM spans WHERE kind = 'request'")
        assert rows == [{"name": "GET /hello", "service": "sigterm-app"}]
