"""The hops' batches on a lane of their own (gateway.redis_lane), against a real Redis; the
failures through a TCP relay in front of it that drops connections on cue."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError

from gateway.pipeliner import Pipeliner
from gateway.redis_clients import Client, connect, is_cluster
from gateway.redis_lane import lane_options


@pytest.fixture
def server_url(redis_url: str) -> str:
    if is_cluster(redis_url):
        pytest.skip("a lane serves one Redis server; a cluster's batches go node by node")
    return redis_url


@dataclass
class Relay:
    """A TCP relay to Redis: ``drop`` connections are closed on their first bytes (commands
    read, never passed on, never answered); the rest are relayed both ways."""

    target: tuple[str, int]
    drop: int = 0
    connections: int = 0
    port: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            writer.close()
            self.tasks.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.drop > 0:
            self.drop -= 1
            await reader.read(65536)
            return
        upstream_reader, upstream = await asyncio.open_connection(*self.target)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
            sink.close()

        try:
            await asyncio.gather(pump(reader, upstream), pump(upstream_reader, writer))
        finally:
            upstream.close()

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def relay(server_url: str) -> AsyncIterator[Relay]:
    client = connect(server_url, 2)
    options = lane_options(client)
    await client.aclose()
    if options is None or options.host is None:
        pytest.skip("the relay stands in front of a TCP Redis")
    made = Relay((options.host, options.port))
    server = await asyncio.start_server(made.handle, "127.0.0.1", 0)
    made.port = server.sockets[0].getsockname()[1]
    try:
        yield made
    finally:
        server.close()
        await made.stop()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def pipeliner_on(url: str) -> AsyncIterator[Pipeliner]:
    """A pipeliner on its own client for ``url``, its lane and client closed after."""
    client = connect(url, 2)
    pipeliner = Pipeliner(client)
    try:
        yield pipeliner
    finally:
        await pipeliner.close()
        await client.aclose()


@pytest.fixture
async def relayed(relay: Relay) -> AsyncIterator[Pipeliner]:
    async with pipeliner_on(f"redis://127.0.0.1:{relay.port}/0") as pipeliner:
        yield pipeliner


async def test_lane_replies_to_batches_written_back_to_back_in_order(
    server_url: str, redis: Client, redis_prefix: str
) -> None:
    key = f"{redis_prefix}lane:n"
    async with pipeliner_on(server_url) as pipeliner:
        turns = []
        for _ in range(20):  # twenty loop turns: twenty batches, none waiting for the last
            turns.append([pipeliner.execute("INCR", key) for _ in range(50)])
            await asyncio.sleep(0)
        replies = [reply for turn in turns for reply in await asyncio.gather(*turn)]
    assert replies == list(range(1, 1001))


async def test_lane_reply_of_a_hop_that_gave_up_does_not_shift_the_others(
    server_url: str, redis: Client, redis_prefix: str
) -> None:
    key = f"{redis_prefix}lane:g"
    async with pipeliner_on(server_url) as pipeliner:
        assert await pipeliner.execute("GET", key) is None  # the lane is open
        batch = [pipeliner.execute("INCR", key) for _ in range(5)]
        await asyncio.sleep(0)  # one loop turn: the batch is written
        batch[2].cancel()  # its hop outlasted its deadline, its reply still to come
        replies = await asyncio.gather(*batch, return_exceptions=True)
        after = await pipeliner.execute("INCR", key)
    assert replies[:2] + replies[3:] == [1, 2, 4, 5] and after == 6


async def test_lane_selects_the_database_and_authenticates_as_the_url_says(
    server_url: str, redis: Client, redis_prefix: str
) -> None:
    if "@" in server_url or not server_url.startswith("redis://"):
        pytest.skip("needs a Redis without a password, to add a user of its own")
    user, password = f"okryu-lane-{secrets.token_hex(4)}", secrets.token_hex(8)
    await redis.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "+@all")
    host_port = server_url.removeprefix("redis://").split("/")[0]
    key = f"{redis_prefix}lane:db"
    try:
        async with pipeliner_on(f"redis://{user}:{password}@{host_port}/5") as pipeliner:
            assert await pipeliner.execute("SET", key, "five") == b"OK"
            assert await pipeliner.execute("ACL", "WHOAMI") == user.encode()
            other = Redis.from_url(f"redis://{host_port}/5")
            assert await other.get(key) == b"five" and await redis.get(key) is None
            await other.delete(key)
            await other.aclose()
    finally:
        await redis.execute_command("ACL", "DELUSER", user)


async def test_lane_dropped_sends_its_commands_again_on_a_new_connection(
    relay: Relay, relayed: Pipeliner, redis: Client, redis_prefix: str
) -> None:
    key = f"{redis_prefix}lane:d"
    relay.drop = 1  # the first connection is cut as soon as commands arrive (Redis restarted)
    replies = await asyncio.gather(relayed.execute("INCR", key), relayed.execute("GET", key))
    assert replies == [1, b"1"] and relay.connections == 2


async def test_lane_dropped_twice_fails_its_commands_with_a_connection_error(
    relay: Relay, relayed: Pipeliner, redis: Client, redis_prefix: str
) -> None:
    relay.drop = 2
    key = f"{redis_prefix}lane:f"
    outcome = await asyncio.wait_for(
        asyncio.gather(relayed.execute("INCR", key), return_exceptions=True), 10
    )
    assert isinstance(outcome[0], RedisConnectionError)
    assert await redis.get(key) is None  # never reached Redis
    assert await relayed.execute("INCR", key) == 1  # the next batch opens a lane that works


async def test_lane_of_a_closed_pipeliner_sends_nothing_more(
    relay: Relay, relayed: Pipeliner
) -> None:
    assert await relayed.execute("PING") == b"PONG"
    await relayed.close()  # the gateway is stopping
    outcome = await asyncio.gather(relayed.execute("PING"), return_exceptions=True)
    assert isinstance(outcome[0], RedisConnectionError) and relay.connections == 1


async def test_lane_to_nowhere_fails_its_commands_with_a_connection_error() -> None:
    async with pipeliner_on("redis://127.0.0.1:1/0") as pipeliner:  # nothing listens there
        outcome = await asyncio.gather(
            pipeliner.execute("GET", "a"), pipeliner.execute("GET", "b"), return_exceptions=True
        )
    assert [type(error) for error in outcome] == [RedisConnectionError] * 2


def test_lane_is_not_used_over_tls_but_is_over_a_unix_socket() -> None:
    assert lane_options(Redis.from_url("rediss://127.0.0.1:6380/0")) is None
    unix = lane_options(Redis.from_url("unix:///run/redis.sock?db=2"))
    assert unix is not None and (unix.path, unix.db, unix.host) == ("/run/redis.sock", 2, None)
    tcp = lane_options(Redis.from_url("redis://u:s3cret@h:7000/1", socket_timeout=0.5))
    assert tcp is not None
    assert (tcp.host, tcp.port, tcp.username, tcp.password, tcp.db, tcp.timeout) == (
        "h", 7000, "u", "s3cret", 1, 0.5,
    )  # fmt: skip
    assert "s3cret" not in repr(tcp)  # the options never show the password


async def test_lane_command_that_cannot_be_sent_fails_alone(
    server_url: str, redis: Client, redis_prefix: str
) -> None:
    key = f"{redis_prefix}lane:bad"
    async with pipeliner_on(server_url) as pipeliner:
        for _ in range(2):  # while the lane opens, then on the open lane
            batch = [
                pipeliner.execute("INCR", key),
                pipeliner.execute("SET", key, None),  # no wire type: a caller's bug
                pipeliner.execute("GET", key),
            ]
            outcome = await asyncio.gather(*batch, return_exceptions=True)
            assert isinstance(outcome[1], DataError)
            assert outcome[2] == str(outcome[0]).encode()


async def test_lane_closed_while_opening_settles_what_waited_for_it() -> None:
    # A server that accepts and never finishes the hello: the lane is still opening.
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = connect(f"redis://:secret@127.0.0.1:{port}/0", 2)
    pipeliner = Pipeliner(client)
    waiting = pipeliner.execute("GET", "a")
    await asyncio.sleep(0)  # the batch is flushed: a lane is being opened for it
    await pipeliner.close()
    outcome = await asyncio.wait_for(asyncio.gather(waiting, return_exceptions=True), 10)
    await client.aclose()
    server.close()
    assert isinstance(outcome[0], RedisConnectionError)


async def test_lane_reading_what_is_not_redis_fails_its_commands_once() -> None:
    commands: list[bytes] = []

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        commands.append(await reader.read(65536))
        writer.write(b"?this is not RESP\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with pipeliner_on(f"redis://127.0.0.1:{port}/0") as pipeliner:
            outcome = await asyncio.wait_for(
                asyncio.gather(pipeliner.execute("INCR", "a"), return_exceptions=True), 10
            )
    finally:
        server.close()
    assert isinstance(outcome[0], RedisConnectionError) and len(commands) == 1  # not resent


async def test_lane_error_replies_are_redis_py_errors_nested_ones_too(server_url: str) -> None:
    async with pipeliner_on(server_url) as pipeliner:
        nested, missing = await asyncio.gather(
            pipeliner.execute("EVAL", "return {1, redis.error_reply('boom')}", 0),
            pipeliner.execute("EVALSHA", "0" * 40, 0),
            return_exceptions=True,
        )
    assert nested[0] == 1 and isinstance(nested[1], ResponseError)
    assert isinstance(missing, NoScriptError)
