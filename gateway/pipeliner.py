"""The Redis commands concurrent hops send in one turn of the event loop go as one pipeline.

On one Redis server (not TLS) the batches go on a lane of their own (gateway.redis_lane),
written back to back on one socket; on a cluster, or over TLS, through redis-py's connections.

Every hop sends two commands (load the session, save it). Sent one by one through redis-py,
each takes a pooled connection, a retry wrapper, a write and a read: profiled, that was a
third of a hop's CPU. Hops in flight together (50 subscribers at a time is the benchmark's
load) issue theirs within the same turn of the loop; here they wait for the end of that turn
and go to Redis as one pipeline: one connection, one write, one read of all the replies.
Each hop still awaits only its own reply, and a reply that is an error fails only its hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

from hiredis import pack_command
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.cluster_pipeline import by_node
from gateway.redis_clients import Client
from gateway.redis_lane import Lane, Pending, fail, lane_options

RETRIES = 1  # a batch whose connection dropped is sent once more on a fresh one


class Pipeliner:
    def __init__(self, redis: Client) -> None:
        self.redis = redis
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._scheduled = False
        # On a Redis Cluster, each node's commands go as a pipeline of their own (issue 11).
        self._send_batch = by_node(redis) if isinstance(redis, RedisCluster) else self._send
        self._options = None if isinstance(redis, RedisCluster) else lane_options(redis)
        self._lane: Lane | None = None
        self._opening: asyncio.Future[None] | None = None
        self._parked: list[Pending] = []  # batches waiting for a lane to open
        self._closed = False

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Send ``args`` as a command with the others of this turn; its reply, when it comes."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(args, reply)
        return reply

    def run_script(
        self, script: AsyncScript, keys: list[Any], args: list[Any]
    ) -> asyncio.Future[Any]:
        """``script`` by its SHA with the others of this turn; sent whole if Redis lost it
        (a restarted server, a new node)."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        reply = _Scripted(loop=asyncio.get_running_loop())
        reply.resend = (self, script.script, command)
        self._enqueue(command, reply)
        return reply

    def _enqueue(self, args: tuple[Any, ...], reply: asyncio.Future[Any]) -> None:
        self._queue.append((args, reply))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        self._scheduled = False
        if self._options is None:
            asyncio.ensure_future(self._send_batch(queue))
            return
        self._dispatch([(command, reply, False) for command, reply in queue])

    def _dispatch(self, batch: list[Pending]) -> None:
        if self._closed:  # the process is stopping: no new lane
            fail(batch, RedisConnectionError("the gateway is stopping"))
            return
        lane = self._lane
        if lane is not None and lane.alive:
            lane.send(batch)
            return
        self._parked.extend(batch)
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())

    async def _open(self) -> None:
        assert self._options is not None
        try:
            lane = await Lane.open(self._options, self._lost)
        except Exception as error:
            parked, self._parked = self._parked, []
            fail(parked, error)
            return
        finally:
            self._opening = None
        self._lane = lane
        parked, self._parked = self._parked, []
        live = [pending for pending in parked if not pending[1].done()]
        if live:
            lane.send(live)

    def _lost(self, lane: Lane, pending: list[Pending]) -> None:
        """A lane closed with replies owed: each command sent once goes again on a new lane
        (a restarted Redis), one sent twice fails."""
        if self._lane is lane:
            self._lane = None
        again: list[Pending] = []
        for command, reply, sent_before in pending:
            if reply.done():
                continue
            if sent_before:
                reply.set_exception(RedisConnectionError("Connection closed by server."))
            else:
                again.append((command, reply, True))
        if again:
            self._dispatch(again)

    async def close(self) -> None:
        """Close the lane (the client's own connections are the client's to close)."""
        self._closed = True
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(BaseException):
                await self._opening
        parked, self._parked = self._parked, []
        fail(parked, RedisConnectionError("the gateway is stopping"))
        if self._lane is not None:
            self._lane.close()
            self._lane = None

    async def _send(self, queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._exchange([args for args, _ in queue])
        except BaseException as error:  # the connection failed: every hop of the batch hears
            for _, reply in queue:
                if not reply.done():
                    reply.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for (_, reply), answer in zip(queue, replies, strict=True):
            if reply.done():
                continue  # its hop gave up (its deadline)
            if isinstance(answer, Exception):
                reply.set_exception(answer)
            else:
                reply.set_result(answer)

    async def _exchange(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Write ``commands`` on one pooled connection, then read every reply.

        Straight on the connection rather than through ``redis.pipeline()``: the pipeline
        object's stacking, callbacks and bookkeeping cost more than the two commands of a hop
        (profiled: 15% of a browsing hop's CPU in redis-py, 6% after). A reply that is an
        error stays in its place; a dropped connection is tried once more on a fresh one, as
        the client's own retry policy does for single commands (a restarted Redis).
        """
        assert isinstance(self.redis, Redis)  # a cluster's batches go by_node instead
        pool = self.redis.connection_pool
        for attempt in range(RETRIES + 1):
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                # hiredis packs a command in C: redis-py's own packer, in Python, was 4% of
                # a browsing hop's CPU.
                await connection.send_packed_command(b"".join(map(pack_command, commands)))
                replies: list[Any] = []
                try:
                    # One timer for the batch's replies, on the connection's socket timeout:
                    # redis-py arms one for every reply it reads (4 us each, 6% of a hop).
                    async with asyncio.timeout(connection.socket_timeout):
                        for _ in commands:
                            try:
                                replies.append(await connection.read_response(timeout=math.inf))
                            except ResponseError as error:
                                replies.append(error)
                except TimeoutError:
                    raise RedisTimeoutError("Timeout reading from Redis") from None
                return replies
            except (RedisConnectionError, RedisTimeoutError):
                await connection.disconnect()
                if attempt == RETRIES:
                    raise
            except BaseException:
                await connection.disconnect()  # half-read replies: the socket is out of step
                raise
            finally:
                await pool.release(connection)
        raise AssertionError("unreachable")


class _Scripted(asyncio.Future[Any]):
    """The reply to a script sent by its SHA: told NOSCRIPT, it sends the script whole and
    waits for that reply instead. One future per hop, and no callback to run in between
    (chaining a second future was 3% of a browsing hop's CPU)."""

    # (the pipeliner, the script's source, the EVALSHA command); None once sent whole
    resend: tuple[Pipeliner, Any, tuple[Any, ...]] | None = None

    def set_exception(self, exception: type | BaseException) -> None:
        resend, self.resend = self.resend, None
        if isinstance(exception, NoScriptError) and resend is not None and not self.done():
            pipeliner, source, command = resend
            pipeliner._enqueue(("EVAL", source, *command[2:]), self)  # a second NOSCRIPT stands
            return
        super().set_exception(exception)
