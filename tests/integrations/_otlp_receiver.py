"""A tiny OTLP/HTTP trace receiver on 127.0.0.1: decodes every ExportTraceServiceRequest it is sent."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OtlpReceiver:
    """`with OtlpReceiver() as rx: rx.url`; `stop()` closes the port, `start()` reopens the same one."""

    def __init__(self, port: int | None = None, *, stall_s: float = 0.0) -> None:
        self.port = port or free_port()
        self.stall_s = stall_s
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if receiver.stall_s:
                    time.sleep(receiver.stall_s)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver._lock:
                    receiver.requests.append(request)
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def spans(self) -> dict[str, tuple[Any, Any, Any]]:
        """span id (hex) -> (resource, scope, span) over everything received."""
        out = {}
        with self._lock:
            for request in self.requests:
                for rs in request.resource_spans:
                    for ss in rs.scope_spans:
                        for span in ss.spans:
                            out[span.span_id.hex()] = (rs.resource, ss.scope, span)
        return out

    def wait_for(self, span_ids: set[str], timeout_s: float = 15.0) -> dict[str, tuple[Any, Any, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.spans()
            if span_ids <= set(got):
                return got
            time.sleep(0.05)
        missing = span_ids - set(self.spans())
        raise AssertionError(f"{len(missing)} spans never arrived, e.g. {sorted(missing)[:3]}")
