"""The one place a Redis client is made from ``OKRYU_REDIS_URL``: one server or a cluster.

One server: ``redis://host:port/db``, ``rediss://...`` (TLS) or ``unix:///path/redis.sock``.
A Redis Cluster: ``redis+cluster://host:port,host:port,...`` (``rediss+cluster://`` for TLS;
``redis+cluster://user:password@host:port,...`` with ACLs). Any one reachable node is enough
to start, the client learns the others from it; naming several lets a process start while one
of them is down. The cluster client is redis-py's ``RedisCluster``: it sends each command to
the master of its key's hash slot, follows the cluster when a replica is promoted, and splits
a pipeline by node. Every key one command or script touches must share a slot (a hash tag:
gateway.sessions, gateway.catalog, gateway.replies); tests/gateway/test_cluster.py checks.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias
from urllib.parse import unquote

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["Client", "cluster_nodes", "connect", "is_cluster"]

# What every Redis user in the gateway is given. Both have the commands the gateway sends.
Client: TypeAlias = Redis | RedisCluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
POOL_WAIT = 5.0  # seconds a command may wait for a pooled connection (one server)
# A cluster command that fails on a connection (its master just died) is tried again this
# many times, each after the client has re-read the cluster's slots. Immediately: redis-py's
# cluster client does not back off between them; the hop's deadline bounds them all.
CLUSTER_RETRIES = 3


def is_cluster(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` of every node a ``redis+cluster://`` URL names.

    >>> cluster_nodes("redis+cluster://127.0.0.1:7100,[::1]:7101,db.internal")
    [('127.0.0.1', 7100), ('::1', 7101), ('db.internal', 6379)]
    """
    netloc = _split(url)[1]
    nodes: list[tuple[str, int]] = []
    for part in netloc.rpartition("@")[2].split(","):
        part = part.strip()
        if part.startswith("["):  # [IPv6]:port
            host, _, rest = part[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, _, port_text = part.partition(":")
        if not host:
            raise ValueError("a redis+cluster:// URL names its nodes as host:port,host:port")
        try:
            port = int(port_text) if port_text else 6379
        except ValueError:
            raise ValueError(f"not a port: {port_text[:20]!r}") from None
        if not 0 < port < 65536:
            raise ValueError(f"not a port: {port}")
        nodes.append((host, port))
    return nodes


def _split(url: str) -> tuple[str, str, str]:
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"not a cluster URL (redis+cluster://host:port,...): {scheme!r}")
    netloc, _, path = rest.partition("/")
    if path.strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0")
    return scheme.lower(), netloc, path


def connect(url: str, connections: int) -> Client:
    """A client for ``url`` whose commands survive a Redis restart or a failover.

    ``connections`` bounds the connections to each server. ``ValueError`` for a URL that is
    neither a server's nor a cluster's.
    """
    if is_cluster(url):
        return _cluster(url, connections)
    return _server(url, connections)


def _server(url: str, connections: int) -> Redis:
    """One server: pooled connections die with it, and each fails its next command. That
    command is sent again at once, once, on a fresh connection (redis-py's defaults, by
    version and constructor, never send it again or back off for seconds). Connection errors
    only: a timeout may be a slow server, and waiting twice would outlast the hop's deadline.
    Every command the gateway sends may run twice: GET, MGET and PING read; the session's
    compare-and-set script writes only at the version it read (and redis-py loads it again
    when a new server answers NOSCRIPT); INCR bumps the catalog and stock tags, which readers
    only compare for change, so a bump counted twice still says "changed".
    """
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    # A burst of hops waits its turn for a connection instead of failing: redis-py's default
    # pool refuses the 101st concurrent command ("Too many connections"), which showed 48 of
    # 150 subscribers dialling at once the error screen. The wait is bounded by the hop's
    # deadline, which answers first.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        timeout=POOL_WAIT,
        retry=retry,
        retry_on_error=[RedisConnectionError],  # redis-py 5 retries only the errors listed here
    )
    client = Redis(connection_pool=pool, retry=retry, retry_on_error=[RedisConnectionError])
    client.auto_close_connection_pool = True  # aclose() closes the pool it was given too
    return client


class WaitingCluster(RedisCluster):
    """redis-py's cluster client, whose commands wait their turn for a connection.

    A cluster node refuses a command beyond its pool (``MaxConnectionsError``) where the
    single-server pool lets it wait, and a burst of hops would see the error screen. Here at
    most ``turns`` commands (and per-node pipelines: gateway.cluster_pipeline) are in flight
    at once; the others wait, bounded by the hop's deadline. A command may hold two
    connections at once (its own, and one to re-read the slots after a failover), and the
    catalog versions' subscription holds one for good: hence about half the pool.
    """

    def __init__(self, *args: Any, connections: int, **kwargs: Any) -> None:
        kwargs["max_connections"] = connections
        super().__init__(*args, **kwargs)
        self.turns = asyncio.Semaphore(max(1, (connections - 1) // 2))

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.turns:
            return await super().execute_command(*args, **kwargs)


def _cluster(url: str, connections: int) -> RedisCluster:
    """A cluster: the same "may run twice" reasoning as for one server holds for every
    command, now also after a promotion (the new master answers NOSCRIPT once per script:
    gateway.pipeliner and redis-py's Script send it whole then)."""
    scheme, netloc, _ = _split(url)
    userinfo = netloc.rpartition("@")[0] if "@" in netloc else ""
    username, _, password = userinfo.partition(":")
    return WaitingCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster_nodes(url)],
        connections=connections,
        retry=Retry(NoBackoff(), CLUSTER_RETRIES),
        username=unquote(username) or None,
        password=unquote(password) or None,
        ssl=scheme == "rediss+cluster",
    )
