"""One ClickHouse cluster for the session, set up by the commands of docs/clickhouse.md ("Two machines"):
`llmlens migrate --cluster`, the first API key, and one `llmlens serve` per ClickHouse node."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

from ._cluster import LocalCluster, guide_commands, missing_prerequisite, run_llmlens


@dataclass
class ClusterEnv:
    """The running cluster, its two llmlens servers (`servers["ch1"]` talks to node ch1) and API keys."""

    cluster: LocalCluster
    servers: dict[str, LLMLensServer]
    workdir: Path
    keys: dict[str, str] = field(default_factory=dict)
    # Tests ask from several threads at once (one ingest thread per server): the key is made once.
    _making: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def key(self, project: str) -> str:
        """An admin key of `project` (made once, through the shared state: valid on both servers)."""
        with self._making:
            return self._key(project)

    def _key(self, project: str) -> str:
        if project not in self.keys:
            done = run_llmlens(
                [
                    "keys",
                    "create",
                    "--project",
                    project,
                    "--role",
                    "admin",
                    "--create-project",
                    "--store",
                    self.cluster.url("ch1"),
                ],
                cwd=self.workdir,
            )
            assert done.returncode == 0, done.stderr
            self.keys[project] = done.stdout.splitlines()[0].strip()
        return self.keys[project]

    def api(self, node: str, project: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key(project)}"}
        return httpx.Client(base_url=self.servers[node].url, headers=headers, timeout=60)


@pytest.fixture(scope="session")
def cluster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterEnv]:
    missing = missing_prerequisite()
    if missing is not None:
        pytest.fail(missing)
    root = tmp_path_factory.mktemp("cluster")
    cluster = LocalCluster(root).start()
    workdir = root / "workdir"  # where the guide's commands run: no data folder of this checkout
    workdir.mkdir()
    servers: dict[str, LLMLensServer] = {}
    try:
        migrate, first_key, *serve = guide_commands()
        done = run_llmlens([cluster.localized(a) for a in migrate[1:]], cwd=workdir)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        done = run_llmlens([cluster.localized(a) for a in first_key[1:]], cwd=workdir)
        assert done.returncode == 0, done.stderr
        env = ClusterEnv(cluster, servers, workdir, {"default": done.stdout.splitlines()[0].strip()})
        for node, command in zip(cluster.nodes, serve, strict=True):
            assert command[:2] == ["llmlens", "serve"] and f"@{node}:" in " ".join(command), command
            args = [cluster.localized(a) for a in command[2:]]
            servers[node] = LLMLensServer(root / f"llmlens-{node}", args=args).start()
        yield env
    finally:
        for server in servers.values():
            server.stop()
        cluster.stop()
