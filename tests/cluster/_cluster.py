"""The two-machine cluster of docs/clickhouse.md ("Two machines") on this one: ZooKeeper and two
`clickhouse-server` processes (`ch1`, `ch2`), each with its own ports and directory, configured with the
guide's own files (tests/cluster/guide/). The only changes are where things are: host names become
127.0.0.1, ports become free ones, ZooKeeper's data goes to a temporary directory."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.clickhouse_server import ClickHouseServer, clickhouse_binary
from tests.support.zookeeper_server import ZooKeeperServer, zookeeper_command

GUIDE = Path(__file__).parent / "guide"
# What the guide's files and commands name.
CLUSTER = "llmlens"
DATABASE = "llmlens"
NODES = ("ch1", "ch2")
GUIDE_PORT = 9000
ZOOKEEPER_HOST, ZOOKEEPER_PORT = "ch1", 2181


def missing_prerequisite() -> str | None:
    """What the setup step has not installed, said as the step to run; None when all is there."""
    if clickhouse_binary() is None:
        return "clickhouse-server is not installed: run scripts/setup-test-env.sh (make test does)"
    if zookeeper_command() is None:
        return "ZooKeeper (Debian's zookeeper package) is not installed: run scripts/setup-test-env.sh"
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def localized_xml(text: str, tcp_ports: dict[str, int], zookeeper_port: int) -> str:
    """A guide config file with each machine's name and port replaced by this machine's address and the
    node's (or ZooKeeper's) port."""
    root = ET.fromstring(text)
    for replica in root.iter("replica"):
        host, port = replica.find("host"), replica.find("port")
        if host is None or port is None or host.text not in tcp_ports or port.text != str(GUIDE_PORT):
            continue
        port.text = str(tcp_ports[host.text])
        host.text = "127.0.0.1"
    for node in root.iter("node"):
        host, port = node.find("host"), node.find("port")
        if host is not None and port is not None and (host.text, port.text) == (ZOOKEEPER_HOST, str(ZOOKEEPER_PORT)):
            host.text, port.text = "127.0.0.1", str(zookeeper_port)
    for element in (*root.iter("interserver_http_host"), *root.iter("listen_host")):
        element.text = "127.0.0.1"
    return ET.tostring(root, encoding="unicode")


class LocalCluster:
    """ZooKeeper plus `ch1` and `ch2`; `url(node)` is the guide's store URL pointed at that node."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.zookeeper = ZooKeeperServer(config=(GUIDE / "zoo.cfg").read_text())
        self.nodes: dict[str, ClickHouseServer] = {}

    def start(self) -> LocalCluster:
        self.zookeeper.start()
        ports = {name: _free_ports(3) for name in NODES}
        tcp_ports = {name: p[0] for name, p in ports.items()}
        shared = localized_xml((GUIDE / "llmlens-cluster.xml").read_text(), tcp_ports, self.zookeeper.port)
        user = (GUIDE / "llmlens-user.xml").read_text()
        for name in NODES:
            own = localized_xml((GUIDE / f"llmlens-node-{name}.xml").read_text(), tcp_ports, self.zookeeper.port)
            node = ClickHouseServer(
                root=self.root / name,
                extra_config={
                    "config.d/llmlens-cluster.xml": shared,
                    f"config.d/llmlens-node-{name}.xml": own,
                    "users.d/llmlens-user.xml": user,
                },
            )
            node.tcp_port, node.http_port, node.interserver_port = ports[name]
            self.nodes[name] = node
        for node in self.nodes.values():
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        self.zookeeper.stop()

    def url(self, node: str) -> str:
        return f"clickhouse://llmlens:change-me@127.0.0.1:{self.nodes[node].tcp_port}/{DATABASE}?cluster={CLUSTER}"

    def localized(self, text: str) -> str:
        """A guide command line pointed at this machine's nodes."""
        for name, node in self.nodes.items():
            text = text.replace(f"@{name}:{GUIDE_PORT}/", f"@127.0.0.1:{node.tcp_port}/")
        return text.replace("--host 0.0.0.0", "--host 127.0.0.1")

    def client(self, node: str) -> Any:
        """A driver client on one node's own tables (not through the cluster), as the llmlens user."""
        from clickhouse_driver import Client

        return Client(
            "127.0.0.1", port=self.nodes[node].tcp_port, user="llmlens", password="change-me", database=DATABASE
        )

    def local_count(self, node: str, sql: str) -> int:
        client = self.client(node)
        try:
            return int(client.execute(sql)[0][0])
        finally:
            client.disconnect()


def guide_commands() -> list[list[str]]:
    """The `llmlens ...` commands of the guide, in order, as argument lists."""
    text = (GUIDE / "commands.sh").read_text()
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.startswith("llmlens ")]


def run_llmlens(args: list[str], *, cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """`llmlens ARGS` as the guide runs it (this checkout's interpreter), in `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "llmlens.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=cwd,
    )


def wait_until(condition: Callable[[], bool], what: str, *, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(0.2)
