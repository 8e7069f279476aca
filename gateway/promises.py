"""Promises a subscriber was given, kept in Redis until they are kept.

When an order outlasts its hop, the subscriber reads "Your order is being placed. An SMS will
confirm it shortly." The placement goes on in the process's memory; if that process dies
(``kill -9``, a lost machine) before it ends, nobody would ever tell them. So the promise is
written to Redis before the screen is answered, as the order request itself, and every
gateway process looks at old promises now and then: one whose ending was told (its order
exists, with its confirmation queued in the same transaction; or its failure SMS is queued)
is dropped, and one that was not is placed again. Placing is idempotent on the order's key,
and so is the failure SMS, so two processes recovering the same promise do no harm.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import orjson

from gateway.redis_clients import Client
from menus.ports import OrderLineRequest, PlaceOrder

GRACE = 15.0  # seconds a promise is left to the process that made it before another looks


class Promises:
    def __init__(self, redis: Client, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.key = f"{prefix}promised"  # one hash: order key -> the request and when
        self.clock = clock

    async def make(self, request: PlaceOrder) -> None:
        """Remember that the subscriber was promised an SMS about ``request``."""
        body = {"at": self.clock(), "request": dataclasses.asdict(request)}
        await self.redis.hset(self.key, request.idempotency_key, orjson.dumps(body))

    async def due(self, grace: float = GRACE) -> list[PlaceOrder]:
        """The promises older than ``grace`` seconds, oldest first."""
        stored: dict[bytes, bytes] = await self.redis.hgetall(self.key)  # type: ignore[assignment]
        found: list[tuple[float, PlaceOrder]] = []
        for raw in stored.values():
            try:
                body = orjson.loads(raw)
                data = body["request"]
                data["lines"] = tuple(OrderLineRequest(**line) for line in data["lines"])
                request = PlaceOrder(**data)
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # unreadable: nothing this release can keep
            if self.clock() - float(body["at"]) >= grace:
                found.append((float(body["at"]), request))
        return [request for _, request in sorted(found, key=lambda pair: pair[0])]

    async def drop(self, order_key: str) -> None:
        """The promise about ``order_key`` is kept."""
        await self.redis.hdel(self.key, order_key)
