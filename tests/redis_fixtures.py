"""Redis for tests: one real server per session, one client and one key prefix per test.

``OKRYU_TEST_REDIS_URL`` points the suite at a running Redis (CI), or a Redis Cluster as
``redis+cluster://host:port,...`` (``make test-cluster``); without it the session starts an
embedded redis-server on a private unix socket. Tests share the server, so each one
writes only under its own ``redis_prefix``; the ``redis`` fixture deletes those keys afterwards.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest

from gateway.embedded_redis import BlockingEmbeddedRedis
from gateway.redis_clients import Client, connect

__all__ = ["redis", "redis_prefix", "redis_url"]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of the session's Redis: ``OKRYU_TEST_REDIS_URL``, else an embedded server."""
    configured = os.environ.get("OKRYU_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with BlockingEmbeddedRedis() as url:
        yield url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses, such as ``t1a2b3c4d:``."""
    return f"t{uuid4().hex[:8]}:"


@pytest.fixture
async def redis(redis_url: str, redis_prefix: str) -> AsyncIterator[Client]:
    """A client on the session's Redis, made as the gateway makes its own (a cluster client
    for a cluster); keys under ``redis_prefix`` are deleted afterwards (on a cluster SCAN
    walks every master)."""
    client = connect(redis_url, 8)
    try:
        yield client
        async for key in client.scan_iter(match=f"{redis_prefix}*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()
