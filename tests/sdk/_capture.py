"""A tiny HTTP server that captures what the exporter POSTs, with scripted failures.

Only for exporter behaviour a real llmlens server cannot be made to show on demand (503 with
Retry-After, a refused batch); everything else is tested against the real server.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CaptureServer:
    """`with CaptureServer() as cap: cap.url`; `cap.events` is every event received, in order."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # headers and decoded events per POST
        self.script: deque[tuple[int, dict[str, str]]] = deque()  # answers to play before 200s
        self._lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with capture._lock:
                    status, headers = capture.script.popleft() if capture.script else (200, {})
                    raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
                    events = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
                    capture.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "events": events, "status": status}
                    )
                answer = json.dumps({"accepted": len(events), "rejected": []}).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def events(self) -> list[dict[str, Any]]:
        """Events of the POSTs that were answered 2xx."""
        with self._lock:
            return [e for r in self.requests if 200 <= r["status"] < 300 for e in r["events"]]

    def spans(self) -> Iterator[dict[str, Any]]:
        return (e for e in self.events if e.get("type") == "span")

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
