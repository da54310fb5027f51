"""POSTing gzip NDJSON batches to `/api/v1/ingest` with the standard library's http.client.

http.client, not httpx: it keeps `import llmlens` light and the exporter's own calls out of any
tracing that patches httpx. One keep-alive connection, rebuilt after any error.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

INGEST_PATH = "/api/v1/ingest"
USER_AGENT = "llmlens-python"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one POST came to. `status` is None when no HTTP answer arrived (connection error, timeout)."""

    status: int | None
    retry_after_s: float | None = None
    error: str | None = None
    answer: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUS


class Transport(Protocol):
    def send(self, body: bytes) -> SendResult: ...

    def close(self) -> None: ...


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds; HTTP dates are rare from our server and read as 'no hint'."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


class HTTPTransport:
    """Sends one gzip-compressed NDJSON body per call; never raises for network or HTTP failures."""

    def __init__(self, url: str, *, api_key: str | None, project: str | None, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"llmlens url must be http(s)://host[:port][/prefix], got {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + INGEST_PATH
        self._timeout_s = timeout_s
        self._headers = {
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
            "User-Agent": USER_AGENT,
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        if project:
            self._headers["X-LLMLens-Project"] = project
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout_s)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        return self._conn

    def send(self, body: bytes) -> SendResult:
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            data = response.read()
            status = response.status
            retry_after = parse_retry_after(response.getheader("Retry-After"))
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return SendResult(status=None, error=f"{type(exc).__name__}: {exc}")
        answer: dict[str, Any] = {}
        if data:
            try:
                decoded = json.loads(data)
                if isinstance(decoded, dict):
                    answer = decoded
            except ValueError:
                pass
        error = None if 200 <= status < 300 else data[:500].decode("utf-8", "replace")
        return SendResult(status=status, retry_after_s=retry_after, error=error, answer=answer)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
