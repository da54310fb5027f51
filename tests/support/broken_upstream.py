"""Upstreams whose connection fails: a port nobody listens on, a host no DNS knows, a listener that
resets every connection before answering, and one that answers plain HTTP to a TLS handshake."""

from __future__ import annotations

import socket
import struct
import threading

# RFC 2606 reserves `.invalid`: resolving it fails at once, on any machine, without a network.
UNRESOLVABLE_HOST = "llmlens-test-upstream.invalid"


def closed_port() -> int:
    """A local port that refuses connections (bound, then released, so nothing listens on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BrokenListener:
    """`with BrokenListener("reset") as b: b.port`. Accepts connections and, per `mode`:

    - `reset`: reads the request, then closes with SO_LINGER 0 (a TCP RST, no response byte);
    - `not-tls`: answers a plain HTTP 400 to whatever comes first, so a TLS client's handshake fails.
    """

    def __init__(self, mode: str) -> None:
        if mode not in ("reset", "not-tls"):
            raise ValueError(f"mode must be 'reset' or 'not-tls', got {mode!r}")
        self.mode = mode
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name=f"broken-listener-{mode}", daemon=True)

    def __enter__(self) -> BrokenListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown() wakes the blocked accept(); close() alone does not on Linux.
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed by __exit__
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    if self.mode == "not-tls":
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    else:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
