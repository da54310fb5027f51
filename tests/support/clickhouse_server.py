"""A real `clickhouse-server` in a temporary directory on free 127.0.0.1 ports, for store tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/usr/local/bin"])

_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{root}/log/server.log</log>
        <errorlog>{root}/log/server.err.log</errorlog>
        <size>10M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <interserver_http_port>{interserver_port}</interserver_http_port>
    <path>{root}/data/</path>
    <tmp_path>{root}/tmp/</tmp_path>
    <user_files_path>{root}/user_files/</user_files_path>
    <format_schema_path>{root}/format_schemas/</format_schema_path>
    <users_config>{root}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mlock_executable>false</mlock_executable>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval><duration>3600</duration><queries>0</queries><errors>0</errors>
            <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
        </default>
    </quotas>
</yandex>
"""


def clickhouse_binary() -> str | None:
    """The `clickhouse-server` executable (Debian installs it in /usr/sbin), or None."""
    found = shutil.which("clickhouse-server", path=_SEARCH_PATH)
    if found:
        return found
    combined = shutil.which("clickhouse", path=_SEARCH_PATH)
    return f"{combined} server" if combined else None


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class ClickHouseServer:
    """`with ClickHouseServer() as ch: ch.url` -> `clickhouse://default:@127.0.0.1:PORT/default`."""

    def __init__(
        self, *, startup_timeout_s: float = 60.0, root: Path | None = None, extra_config: dict[str, str] | None = None
    ) -> None:
        """`root`: keep the server's data in this folder across runs (benchmarks cache stores there);
        default: a temporary folder removed on stop. `extra_config`: files written under `root` before
        each start (path relative to it -> text), e.g. `config.d/cluster.xml` or `users.d/user.xml`, which
        the server merges into its configuration. Ports are picked on the first start and kept on restarts."""
        binary = clickhouse_binary()
        if binary is None:
            raise FileNotFoundError("clickhouse-server is not installed (scripts/setup-test-env.sh installs it)")
        self.command = binary.split(" ")
        self.startup_timeout_s = startup_timeout_s
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._keep_root = root
        self.root: Path | None = None
        self.tcp_port = 0
        self.http_port = 0
        self.interserver_port = 0
        self.extra_config = dict(extra_config or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"clickhouse://default:@127.0.0.1:{self.tcp_port}/default"

    def database_url(self, database: str) -> str:
        return f"clickhouse://default:@127.0.0.1:{self.tcp_port}/{database}"

    def start(self) -> ClickHouseServer:
        if self._keep_root is not None:
            root = self.root = self._keep_root
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="llmlens-clickhouse-")
            root = self.root = Path(self._tmp.name)
        for sub in ("log", "data", "tmp", "user_files", "format_schemas"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        if not self.tcp_port:
            self.tcp_port, self.http_port, self.interserver_port = _free_ports(3)
        config = root / "config.xml"
        config.write_text(
            _CONFIG.format(
                root=root, tcp_port=self.tcp_port, http_port=self.http_port, interserver_port=self.interserver_port
            )
        )
        (root / "users.xml").write_text(_USERS)
        for relative, text in self.extra_config.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text)
        log = open(root / "log" / "stdout.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [*self.command, f"--config-file={config}"], stdout=log, stderr=subprocess.STDOUT, cwd=root
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited with {self.proc.returncode}:\n{self.log()}")
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"clickhouse-server did not start in {self.startup_timeout_s} s:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5) as s:
                s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
                return b"Ok." in s.recv(1024)
        except OSError:
            return False

    def log(self) -> str:
        if self.root is None:
            return ""
        parts = []
        for name in ("stdout.log", "server.err.log"):
            try:
                parts.append((self.root / "log" / name).read_text(errors="replace")[-3000:])
            except OSError:
                pass
        return "\n".join(parts)

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (or with `kill`, SIGKILL: a crash); a temporary folder is removed, a given `root` kept."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ClickHouseServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
