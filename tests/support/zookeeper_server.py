"""A real ZooKeeper (Debian's `zookeeper` package) in a temporary directory on a free 127.0.0.1 port."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# Where Debian's package puts the server's jar; its manifest names the libraries it needs.
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
# A logger for the server's own log (without one it says nothing), when Debian's libslf4j-java has it.
_LOGGER_JAR = Path("/usr/share/java/slf4j-simple.jar")

_CONFIG = """tickTime=500
initLimit=10
syncLimit=5
admin.enableServer=false
4lw.commands.whitelist=srvr
"""


def zookeeper_command() -> list[str] | None:
    """`java -cp zookeeper.jar` with the standalone server's main class, or None when either is missing."""
    java = shutil.which("java")
    if java is None or not ZOOKEEPER_JAR.exists():
        return None
    classpath = [str(ZOOKEEPER_JAR), *([str(_LOGGER_JAR)] if _LOGGER_JAR.exists() else [])]
    return [java, "-Xmx256m", "-cp", ":".join(classpath), "org.apache.zookeeper.server.ZooKeeperServerMain"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _localized(config: str, root: Path, port: int) -> str:
    """`config` (a zoo.cfg) with its data in `root` and its client port `port` on 127.0.0.1 only."""
    own = {"dataDir": f"{root}/data", "clientPort": str(port), "clientPortAddress": "127.0.0.1"}
    lines = []
    for line in config.splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key}={own.pop(key)}" if key in own else line)
    lines += [f"{key}={value}" for key, value in own.items()]
    return "\n".join(lines) + "\n"


class ZooKeeperServer:
    """`with ZooKeeperServer() as zk: zk.port`: a standalone ZooKeeper, its data removed on stop."""

    def __init__(self, *, startup_timeout_s: float = 60.0, config: str | None = None) -> None:
        """`config`: a zoo.cfg to run (its data directory and client port are replaced by the test's own)."""
        command = zookeeper_command()
        if command is None:
            raise FileNotFoundError(
                f"ZooKeeper is not installed (java and {ZOOKEEPER_JAR}): scripts/setup-test-env.sh installs it"
            )
        self.command = command
        self.startup_timeout_s = startup_timeout_s
        self.config = config if config is not None else _CONFIG
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.root: Path | None = None
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ZooKeeperServer:
        self._tmp = tempfile.TemporaryDirectory(prefix="llmlens-zookeeper-")
        root = self.root = Path(self._tmp.name)
        (root / "data").mkdir()
        self.port = _free_port()
        config = root / "zoo.cfg"
        config.write_text(_localized(self.config, root, self.port))
        log = open(root / "zookeeper.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [*self.command, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=root, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited with {self.proc.returncode}:\n{self.log()}")
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ZooKeeper did not start in {self.startup_timeout_s} s:\n{self.log()}")

    def _answers(self) -> bool:
        """ZooKeeper's `srvr` command names the server's mode once it serves sessions (`ruok` answers
        earlier, while it still refuses them)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"srvr")
                return b"Mode:" in s.recv(4096)
        except OSError:
            return False

    def log(self) -> str:
        if self.root is None:
            return ""
        try:
            return (self.root / "zookeeper.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ZooKeeperServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
