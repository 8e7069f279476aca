"""The gateway on a Redis Cluster: the URL, the keys' slots, the pipeliner split by node.

The whole suite also runs against a cluster (``make test-cluster``); these tests run on a
cluster of their own in every ``make test`` (tests/cluster_fixtures.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from gateway import keys
from gateway.catalog import CatalogVersions
from gateway.embedded_redis import find_redis_server
from gateway.local_cluster import (
    LocalCluster,
    NodeExited,
    free_ports,
    parse_ports,
    start_on_free_ports,
)
from gateway.pipeliner import Pipeliner
from gateway.redis_clients import cluster_nodes, connect, is_cluster
from gateway.replies import ReplyGuard
from gateway.sessions import Record, SessionStore
from gateway.startup import StartupError
from tests.gateway.test_ussd import post

Make = Callable[..., Awaitable[TestClient[Any, Any]]]


def test_cluster_url_names_its_nodes() -> None:
    url = "redis+cluster://127.0.0.1:7100,[::1]:7101,redis.internal"
    assert is_cluster(url) and not is_cluster("redis://127.0.0.1:6379/0")
    assert cluster_nodes(url) == [("127.0.0.1", 7100), ("::1", 7101), ("redis.internal", 6379)]
    assert cluster_nodes("redis+cluster://u:p%40ss@h:1")[0] == ("h", 1)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://", "names its nodes"),
        ("redis+cluster://h:port", "not a port"),
        ("redis+cluster://h:70000", "not a port"),
        ("redis+cluster://h:7000/3", "only database 0"),
        ("redis+cluster://h:7000,,h:7001", "names its nodes"),
    ],
)
def test_cluster_url_that_is_wrong_says_why(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        connect(url, 8)


async def test_cluster_url_that_is_wrong_stops_the_start_naming_the_setting(
    make_gateway: Make,
) -> None:
    with pytest.raises(StartupError, match=r"^cannot reach Redis \(OKRYU_REDIS_URL\): .*port"):
        await make_gateway(redis_url="redis+cluster://127.0.0.1:port")


def test_cluster_ports_are_read_as_ranges_and_lists() -> None:
    assert parse_ports("7100-7102,7200") == [7100, 7101, 7102, 7200]
    with pytest.raises(Exception, match="not a port"):
        parse_ports("71OO")


def _stand_in(path: Path, body: str) -> str:
    """A redis-server stand-in: a shell script that logs and exits, or runs the real one."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_cluster_node_that_exits_on_start_is_named_with_its_last_words(tmp_path: Path) -> None:
    # As when its port was taken between the free-port check and the bind: the start names
    # the node and what it said at once, instead of waiting out the ready timeout.
    gone = _stand_in(tmp_path / "gone", 'echo "Could not create server TCP listening socket"\n')
    nodes = LocalCluster(free_ports(3), tmp_path / "cluster", masters=3, executable=gone)
    with pytest.raises(NodeExited, match=r"exited: Could not create server TCP listening socket"):
        nodes.start()
    assert not (tmp_path / "cluster").exists()  # stopped and cleaned up


def test_cluster_started_on_free_ports_picks_again_when_a_node_exits(tmp_path: Path) -> None:
    # The first node ever launched finds its port taken; the second try runs real nodes.
    marker = tmp_path / "tried"
    flaky = _stand_in(
        tmp_path / "flaky",
        f'if mkdir "{marker}" 2>/dev/null; then echo "Address already in use"; exit 1; fi\n'
        f'exec "{find_redis_server()}" "$@"\n',
    )
    nodes = start_on_free_ports(tmp_path / "cluster", 3, executable=flaky)
    try:
        assert marker.exists()
        with nodes.client(nodes.ports[0]) as node:
            assert node.ping()
    finally:
        nodes.stop()


def test_cluster_catalog_versions_share_a_slot() -> None:
    # Read together (one MGET): a cluster refuses keys of two slots in one command.
    versions = CatalogVersions(Redis(), "okryu:")  # never connects: nothing is sent
    assert len({key_slot(key.encode()) for key in versions.keys.values()}) == 1


async def test_cluster_pipeliner_answers_each_hop_from_its_own_node(
    cluster: LocalCluster, redis_prefix: str
) -> None:
    client = connect(cluster.url, 8)
    assert isinstance(client, RedisCluster)
    try:
        store = SessionStore(client, redis_prefix, 600)
        subscribers = [f"+85019123{n:05d}" for n in range(60)]  # on all three masters
        slots = {key_slot(store.key("*123#", m).encode()) * 3 // 16384 for m in subscribers}
        assert slots == {0, 1, 2}
        # A fresh client (no map of the slots yet), every command in one loop turn.
        saved = await asyncio.gather(
            *(store.save(store.key("*123#", m), Record(ref=m)) for m in subscribers)
        )
        assert saved == [1] * len(subscribers)
        loaded = await asyncio.gather(*(store.load(store.key("*123#", m)) for m in subscribers))
        assert [Record.loads(raw).ref for raw in loaded] == subscribers  # type: ignore[union-attr]
        # A script no node knows (a node just promoted): sent whole, once, and answered.
        await client.script_flush()
        again = await asyncio.gather(
            *(store.save(store.key("*123#", m), Record(version=1, ref="b")) for m in subscribers)
        )
        assert again == [1] * len(subscribers)
        # An error is its own command's: a GET of a key holding a hash fails only that GET.
        await client.hset(f"{redis_prefix}h:{{x}}", "f", "v")
        pipeliner = Pipeliner(client)
        wrong = pipeliner.execute("GET", f"{redis_prefix}h:{{x}}")
        right = pipeliner.execute("GET", store.key("*123#", subscribers[0]))
        assert (await asyncio.gather(wrong, right, return_exceptions=True))[1].startswith(b"2|")
        assert isinstance(wrong.exception(), Exception)
    finally:
        async for key in client.scan_iter(match=f"{redis_prefix}*"):
            await client.delete(key)
        await client.aclose()


async def test_cluster_reply_guard_counts_on_the_cluster(
    cluster: LocalCluster, redis_prefix: str
) -> None:
    client = connect(cluster.url, 8)
    try:
        guard = ReplyGuard(client, redis_prefix, regions=["KP"], per_sender=2, per_hour=100)
        answers = [await guard.refusal("+8501912345678") for _ in range(3)]
        assert answers == [None, None, "sender"]
    finally:
        await client.aclose()


async def test_cluster_gateway_serves_a_journey_and_hears_catalog_changes(
    cluster: LocalCluster, make_gateway: Make
) -> None:
    first = await make_gateway(redis_url=cluster.url)
    other = await make_gateway(redis_url=cluster.url)  # a second process on the same cluster
    assert isinstance(first.app[keys.REDIS], RedisCluster)
    assert (await post(first, ""))[1].startswith("CON Okryu Shop")
    assert (await post(other, "1"))[1].startswith("CON Categories")  # the session is shared
    versions = other.app[keys.GATEWAY].versions
    before = versions.catalog_tag
    await first.app[keys.GATEWAY].versions.bump("catalog")
    async with asyncio.timeout(5):  # the message's flight, through the cluster's pub/sub
        while versions.catalog_tag == before:
            await asyncio.sleep(0.005)


async def test_cluster_with_no_node_answering_stops_the_start_without_the_password(
    make_gateway: Make,
) -> None:
    port = free_ports(1)[0]  # nothing listens there
    url = f"redis+cluster://:n3ver-shown@127.0.0.1:{port}"
    with pytest.raises(StartupError) as stopped:
        await make_gateway(redis_url=url)
    assert str(stopped.value).startswith("cannot reach Redis (OKRYU_REDIS_URL): Redis Cluster")
    assert "n3ver-shown" not in str(stopped.value)
