"""The pipeliner's batch on a Redis Cluster: one pipeline per node, each on its own.

A batch holds the commands of many hops, so of many subscribers, so of many hash slots on
several masters. redis-py's cluster pipeline splits it by node too, but fails the whole batch
when one node's connection fails, and before failing it closes every connection of the client
and waits: a dead master would fail the hops of every slot. Here each node's commands are
sent as one pipeline of their own (``ClusterNode.execute_pipeline``, what redis-py's pipeline
runs per node), so a node that fails fails only its commands. Those, and any a node redirects
(a slot moved, a replica promoted), are sent again one by one through the cluster client, which
re-reads the cluster's slots and follows them; what still fails is the hop's error (the "try
again" screen), and the next hop after the promotion finds the new master.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Queue = list[tuple[tuple[Any, ...], asyncio.Future[Any]]]
NO_LIMIT = 1 << 30  # a cluster client made elsewhere (a test's): its own pool decides

# A command a node did not run for its slot's sake: the cluster client finds where it goes.
_REDIRECTED = (MovedError, AskError, TryAgainError, ClusterDownError)
# A node that could not be reached or lost its connection: its master may have just died.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def by_node(cluster: RedisCluster) -> Callable[[Queue], Awaitable[None]]:
    """The pipeliner's ``send`` for ``cluster``."""
    # Commands wait their turn for a connection (gateway.redis_clients.WaitingCluster):
    # a node's pipeline takes a turn as one command does.
    turns = getattr(cluster, "turns", None) or asyncio.Semaphore(NO_LIMIT)

    async def alone(args: tuple[Any, ...], reply: asyncio.Future[Any]) -> None:
        await _alone(cluster, args, reply)

    async def on_node(node: ClusterNode, items: Queue) -> None:
        await _on_node(alone, turns, node, items)

    async def send(queue: Queue) -> None:
        groups: dict[str, tuple[ClusterNode, Queue]] = {}
        alone_items: Queue = []
        try:
            for item in queue:
                try:
                    node = cluster.nodes_manager.get_node_from_slot(_slot(cluster, item[0]))
                except (SlotNotCoveredError, RedisClusterException, LookupError):
                    # Not mapped yet (the client's first command): the client maps it.
                    alone_items.append(item)
                    continue
                groups.setdefault(node.name, (node, []))[1].append(item)
            sends = [on_node(node, items) for node, items in groups.values()]
            await asyncio.gather(*sends, *(alone(*item) for item in alone_items))
        except BaseException as error:  # a bug here must fail the hops, never leave them hanging
            for _, reply in queue:
                if not reply.done():
                    reply.set_exception(error)
            if not isinstance(error, Exception):
                raise

    return send


def _slot(cluster: RedisCluster, args: tuple[Any, ...]) -> int:
    """The slot of the command's (first) key: ``GET key``, ``EVALSHA sha n key ...``."""
    name = str(args[0]).upper()
    key = args[3] if name in ("EVALSHA", "EVAL") else args[1]
    return cluster.keyslot(key)


Alone = Callable[[tuple[Any, ...], asyncio.Future[Any]], Awaitable[None]]


async def _on_node(alone: Alone, turns: asyncio.Semaphore, node: ClusterNode, items: Queue) -> None:
    commands = [PipelineCommand(position, *args) for position, (args, _) in enumerate(items)]
    try:
        async with turns:
            await node.execute_pipeline(commands)
    except _UNREACHABLE:
        # This node only: its commands try the cluster client, which re-reads the slots.
        await asyncio.gather(*(alone(*item) for item in items))
        return
    again: list[asyncio.Future[None]] = []
    for command, (args, reply) in zip(commands, items, strict=True):
        if isinstance(command.result, _REDIRECTED):
            again.append(asyncio.ensure_future(alone(args, reply)))
        elif not reply.done():  # else its hop gave up (its deadline)
            if isinstance(command.result, Exception):
                reply.set_exception(command.result)
            else:
                reply.set_result(command.result)
    if again:
        await asyncio.gather(*again)


async def _alone(cluster: RedisCluster, args: tuple[Any, ...], reply: asyncio.Future[Any]) -> None:
    try:
        answer = await cluster.execute_command(*args)
    except Exception as error:
        if not reply.done():
            reply.set_exception(error)
        return
    if not reply.done():
        reply.set_result(answer)
