"""Cluster settings that cannot work are refused at start, in one line that says what to do: a cluster name
the server does not define (with the names it does define), a cluster database opened as one server's,
and a database the cluster's definition does not name."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.support.llmlens_server import LLMLensServer

from ._cluster import run_llmlens
from .conftest import ClusterEnv

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow, pytest.mark.timeout(300)]


def _serve_fails(store: str, tmp_path: Path) -> str:
    server = LLMLensServer(tmp_path / "srv", args=["--store", store])
    with pytest.raises(RuntimeError, match="llmlens serve exited with 1") as failed:
        server.start()
    return str(failed.value)


def test_a_cluster_the_server_does_not_know_is_refused_with_the_ones_it_knows(
    cluster_env: ClusterEnv, tmp_path: Path
) -> None:
    url = cluster_env.cluster.url("ch1").replace("?cluster=llmlens", "?cluster=llmlens_typo")
    said = _serve_fails(url, tmp_path)
    assert "no cluster named 'llmlens_typo'" in said, said
    assert "the clusters in its configuration (system.clusters): llmlens" in said, said

    done = run_llmlens(["migrate", "--store", url.split("?")[0], "--cluster", "llmlens_typo"], cwd=tmp_path)
    assert done.returncode == 1
    assert "no cluster named 'llmlens_typo'" in done.stderr and "llmlens" in done.stderr.split("system.clusters")[1]


def test_a_cluster_database_opened_as_one_servers_is_refused(cluster_env: ClusterEnv, tmp_path: Path) -> None:
    said = _serve_fails(cluster_env.cluster.url("ch2").split("?")[0], tmp_path)
    assert "spread over the cluster 'llmlens': add ?cluster=llmlens to the store URL" in said, said


def test_a_database_the_cluster_does_not_name_is_refused(cluster_env: ClusterEnv, tmp_path: Path) -> None:
    """The shards run statements in the database their <replica> names: another one cannot work."""
    other = f"fresh_{uuid.uuid4().hex[:8]}"
    url = cluster_env.cluster.url("ch1").replace("/llmlens?", f"/{other}?")
    said = _serve_fails(url, tmp_path)
    assert f"give every replica <default_database>{other}</default_database> in <remote_servers>" in said, said
