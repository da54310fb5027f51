"""A real `llmlens serve` in a subprocess on a free port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


class LLMLensServer:
    """`with LLMLensServer() as srv: srv.url`. `stop()`/`start()` restart on the same port and data."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        demo: bool = False,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self._tmp = None if data_dir is not None else tempfile.TemporaryDirectory(prefix="llmlens-test-")
        self.data_dir = Path(data_dir) if data_dir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.args = list(args or [])
        self.env = dict(env or {})
        self.demo = demo
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        assert self.port is not None, "server not started"
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LLMLensServer:
        ready = self.data_dir / f"ready-{time.monotonic_ns()}"
        cmd = [
            sys.executable,
            "-m",
            "llmlens.cli",
            "serve",
            "--data",
            str(self.data_dir),
            "--port",
            str(self.port or 0),
            "--ready-file",
            str(ready),
            "--otlp-grpc-port",
            "0",
            *self.args,
        ]
        if self.demo:
            cmd.append("--demo")
        env = {**os.environ, **self.env}
        env.pop("LLMLENS_URL", None)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if ready.exists() and ready.read_text():
                self.port = int(ready.read_text().rsplit(":", 1)[1])
                ready.unlink()
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"llmlens serve exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"llmlens serve did not start in {self.startup_timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> LLMLensServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- conveniences -------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def ingest(self, events: Any, **kwargs: Any) -> dict[str, Any]:
        with self.client() as c:
            r = c.post("/api/v1/ingest", json=events, **kwargs)
            r.raise_for_status()
            doc: dict[str, Any] = r.json()
            return doc

    def sql(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        with self.client() as c:
            r = c.post("/api/v1/sql", json={"query": query}, **kwargs)
            if r.status_code != 200:
                raise AssertionError(f"SQL failed with {r.status_code}: {r.text}")
            doc = r.json()
            return [dict(zip(doc["columns"], row, strict=True)) for row in doc["rows"]]
