"""The hops' Redis commands of one loop turn go as one batch (gateway.pipeliner)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.pipeliner import Pipeliner
from gateway.redis_clients import Client


@pytest.fixture
async def pipeliner(redis: Client) -> AsyncIterator[Pipeliner]:
    made = Pipeliner(redis)
    try:
        yield made
    finally:
        await made.close()


async def test_pipeliner_each_command_of_a_batch_gets_its_own_reply(
    redis: Client, redis_prefix: str, pipeliner: Pipeliner
) -> None:
    # No command of a batch depends on another: on a cluster the batch goes node by node
    # (each hop's save follows its load's reply, never shares its batch).
    text, fresh = f"{redis_prefix}p:{{a}}", f"{redis_prefix}p:{{b}}"
    await redis.set(text, "한글 1")
    replies = await asyncio.gather(
        pipeliner.execute("SET", fresh, "2"),
        pipeliner.execute("INCR", text),  # not a number: an error for this command only
        pipeliner.execute("GET", text),
        pipeliner.execute("EXISTS", text, f"{redis_prefix}p:{{a}}:none"),
        return_exceptions=True,
    )
    assert replies[0] in (b"OK", True)  # as read off the wire, or through the cluster client
    assert isinstance(replies[1], ResponseError)
    assert replies[2:] == ["한글 1".encode(), 1]
    assert await redis.get(fresh) == b"2"


@pytest.fixture
async def silent_redis() -> AsyncIterator[int]:
    """A port that accepts connections and reads commands but never answers: a hung Redis."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_pipeliner_a_redis_that_never_answers_fails_the_batch_on_the_socket_timeout(
    silent_redis: int,
) -> None:
    pool = BlockingConnectionPool(host="127.0.0.1", port=silent_redis, socket_timeout=0.1)
    client = Redis(connection_pool=pool)
    try:
        pipeliner = Pipeliner(client)
        batch = [pipeliner.execute("GET", "a"), pipeliner.execute("GET", "b")]
        outcome = await asyncio.wait_for(asyncio.gather(*batch, return_exceptions=True), 10)
        await pipeliner.close()
    finally:
        await client.aclose()
        await pool.disconnect()
    assert [type(error) for error in outcome] == [RedisTimeoutError, RedisTimeoutError]


async def test_pipeliner_a_script_redis_lost_is_sent_whole_and_answers(
    redis: Client, redis_prefix: str, pipeliner: Pipeliner
) -> None:
    script = redis.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    key = f"{redis_prefix}p:{{s}}"
    assert await pipeliner.run_script(script, [key], [2]) == 2  # loaded on the way
    await redis.script_flush()  # as a restarted Redis, or a new master, would have it
    assert await asyncio.gather(
        pipeliner.run_script(script, [key], [3]), pipeliner.run_script(script, [key], [4])
    ) == [5, 9]


async def test_pipeliner_a_script_that_fails_fails_only_its_reply(
    redis: Client, redis_prefix: str, pipeliner: Pipeliner
) -> None:
    broken = redis.register_script("return redis.call('NO_SUCH_COMMAND')")
    fine = redis.register_script("return 7")
    key = f"{redis_prefix}p:{{s}}"
    outcome = await asyncio.gather(
        pipeliner.run_script(broken, [key], []),
        pipeliner.run_script(fine, [key], []),
        return_exceptions=True,
    )
    assert isinstance(outcome[0], ResponseError) and outcome[1] == 7
