"""A Redis Cluster of a test's own: 3 masters, 3 replicas on free loopback ports.

Started from the project's redis-server (gateway.local_cluster) in a couple of seconds, so the
failover and fleet tests run in every ``make test``, whatever Redis the rest of the suite uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.local_cluster import LocalCluster, start_on_free_ports

__all__ = ["cluster"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    nodes = start_on_free_ports(tmp_path / "cluster")
    try:
        yield nodes
    finally:
        nodes.stop()
