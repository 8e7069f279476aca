"""The in-process catalog, reloaded when its version changes; the versions, told to every
process without a round trip on the hop.

Browsing hops never touch the database. An admin change bumps the catalog version and every
process reloads before answering a hop after it hears; an order only changes stock, which
bumps the stock version, and the snapshot is refreshed in the background.

How the versions travel (DESIGN §2 read them in the hop's MGET, which a Redis Cluster refuses:
the session key and the version keys live in different hash slots): a bump increments the
version key and PUBLISHes it; every process holds the versions in memory, updated by the
message, and re-reads the keys every ``POLL`` seconds in case a message was lost (a dropped
subscription, a Redis restart, after which it also reloads the catalog). A process is stale by
the message's flight (well under a millisecond on one network) and at most ``POLL`` seconds
when a message is lost. Stock is not announced (one bump per order would wake every process
of a fleet per order): other processes read it at their next poll, well within the interval
at which a snapshot is refreshed for stock anyway. That is safe: a stale catalog only decides
what a screen shows; an order's transaction takes the real stock and the current price under
its row lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from gateway.logs import describe
from gateway.pipeliner import Pipeliner
from gateway.redis_clients import Client
from menus.ports import Catalog
from store.catalog import fingerprints, load_catalog
from store.db import Database

log = logging.getLogger("okryu.catalog")


WATCH = 5.0  # seconds between looks at the database for changes made outside the gateway
POLL = 1.0  # seconds between re-reads of the versions, should a message have been lost
RECONNECT = 1.0  # seconds before subscribing again after the subscription failed
# Increment a version and announce it ("kind:value") on the channel, in one command. PUBLISH
# takes no key: on a Redis Cluster the script runs on the version key's node and the message
# reaches every node's subscribers.
_BUMP = """
local value = redis.call('INCR', KEYS[1])
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2] .. ':' .. value) end
return value
"""
# Stock moves with every order, and a snapshot is refreshed for it at most every few seconds
# (CatalogCache.stock_refresh): announcing each bump woke every process of a fleet for every
# order. A stock bump is only counted; the others read it at their next poll.
_ANNOUNCED = ("catalog", "cards")


class CatalogVersions:
    """The catalog and stock versions as this process last heard them."""

    def __init__(
        self, redis: Client, prefix: str, *, poll: float = POLL, pipeliner: Pipeliner | None = None
    ) -> None:
        self.redis = redis
        # One hash tag: both keys share a slot, so one MGET reads them on a cluster too.
        self.keys = {
            "catalog": f"{prefix}{{catalog}}:version",
            "stock": f"{prefix}{{catalog}}:stock",
            "cards": f"{prefix}{{catalog}}:cards",  # bumped when a shop card is issued
        }
        self.channel = f"{prefix}catalog"
        self.poll = poll
        self.tags: dict[str, bytes | None] = {kind: None for kind in self.keys}
        self.epoch = 0  # bumped when every cached catalog must be read again (a Redis restart)
        self._read_at = -float("inf")  # when the keys were last read (loop time)
        # The hops' pipeliner when given (gateway.app): an order's stock bump then goes in the
        # same batch as the other hops' commands of its loop turn, not in a write of its own.
        self._pipeliner = pipeliner or Pipeliner(redis)
        self._bump = redis.register_script(_BUMP)

    async def close(self) -> None:
        await self._pipeliner.close()

    @property
    def catalog_tag(self) -> bytes:
        """The catalog version, tied to the subscription it was heard on (after a Redis
        restart the counters start again: a new epoch makes every process reload)."""
        return b"%d.%s" % (self.epoch, self.tags["catalog"] or b"0")

    @property
    def stock_tag(self) -> bytes | None:
        return self.tags["stock"]

    @property
    def cards_tag(self) -> bytes:
        """The cards version, tied to its subscription as ``catalog_tag`` is."""
        return b"%d.%s" % (self.epoch, self.tags["cards"] or b"0")

    async def bump(self, kind: str) -> None:
        """A ``kind`` ("catalog", "stock" or "cards") change: every process hears of it."""
        await self._bumping(kind)

    def _bumping(self, kind: str) -> asyncio.Future[Any]:
        """The bump of ``kind``, sent; its reply, when it comes (this process's tag is set
        by then: its next hop needs no message)."""
        # One command, sent with the hops' commands of the same loop turn: every order bumps
        # the stock, and an INCR then a PUBLISH through redis-py cost the confirming hop
        # as much CPU as the order's own SQL.
        channel = self.channel if kind in _ANNOUNCED else ""
        reply = self._pipeliner.run_script(self._bump, [self.keys[kind]], [channel, kind])

        def heard(reply: asyncio.Future[Any]) -> None:
            if not reply.cancelled() and reply.exception() is None:
                self.tags[kind] = str(reply.result()).encode()

        reply.add_done_callback(heard)
        return reply

    async def cards_issued(self) -> None:
        """A shop card was issued: every process forgets who it knew to hold none (or, with
        Redis out of reach, learns it within ``gateway.cardless.TTL``)."""
        try:
            await self.bump("cards")
        except (RedisError, OSError) as error:
            log.warning("could not announce a new card (%s)", describe(error))

    def stock_changed(self) -> asyncio.Future[None]:
        """Stock changed (an order, a cancellation): bump it, or, if Redis cannot be reached
        (its master is failing over), say so in the log and go on. The change is in the
        database already; a menu shows the old stock until the next bump, and an order takes
        the real stock under its row lock either way, so the hop that changed it need not
        fail.

        The bump goes with the hops' commands of this loop turn. What is returned is done
        once the bump is (it never fails): a cancellation waits for it; an order's hop does
        not, for nothing it shows depends on it, and waiting cost every order a turn of its
        own. (On one Redis the hop's session save follows the bump on the same connection;
        on a cluster or over TLS they may go separately, which nothing relies on.)"""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        reply = self._bumping("stock")

        def heard(reply: asyncio.Future[Any]) -> None:
            error = None if reply.cancelled() else reply.exception()
            if error is not None:
                log.warning("could not announce a stock change (%s)", describe(error))
            if not done.done():
                done.set_result(None)

        reply.add_done_callback(heard)
        return done

    async def refresh(self) -> None:
        self._read_at = asyncio.get_running_loop().time()
        found: list[bytes | None] = await self.redis.mget(*self.keys.values())  # type: ignore[assignment]
        self.tags = dict(zip(self.keys, found, strict=True))  # bytes: not decoded

    def hear(self, data: bytes) -> None:
        kind, _, value = data.partition(b":")
        name = kind.decode(errors="replace")
        if name in self.tags and value:
            self.tags[name] = value

    async def run(self, stopping: asyncio.Event) -> None:
        """Listen for bumps and re-read now and then, until ``stopping`` is set."""
        listened = False
        while not stopping.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self.refresh()
                if listened:  # not the first time: Redis may have restarted meanwhile
                    self.epoch += 1  # whatever was missed while not listening: read afresh
                listened = True
                stop = asyncio.ensure_future(stopping.wait())
                loop = asyncio.get_running_loop()
                while not stopping.is_set():
                    due = max(0.0, self._read_at + self.poll - loop.time())
                    heard = asyncio.ensure_future(pubsub.get_message(timeout=due))
                    await asyncio.wait([heard, stop], return_when=asyncio.FIRST_COMPLETED)
                    if not heard.done():
                        heard.cancel()
                        break
                    message = heard.result()
                    if message is not None and isinstance(message.get("data"), bytes):
                        self.hear(message["data"])
                    if loop.time() - self._read_at >= self.poll:
                        await self.refresh()  # every poll, messages or not (stock has none)
            except (RedisError, OSError) as error:
                if stopping.is_set():
                    return
                listened = True  # a reconnection: the counters may have started again
                log.warning("catalog versions: %s; listening again shortly", describe(error))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), RECONNECT)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


EMPTY_CATALOG = (
    "the catalog is empty: shoppers see nothing to buy or no delivery district; fill it with"
    " okryu seed, the admin API or /admin/ (the gateway notices within seconds)"
)


def empty_catalog(catalog: Catalog) -> bool:
    """Nothing a shopper could order: no product listed, or nowhere to deliver it."""
    return not catalog.categories or not catalog.zones


class CatalogWatch:
    """Notices catalog changes no gateway process made (``okryu seed`` against a gateway whose
    Redis it cannot reach, an edit in SQL) and bumps the versions, so every process reloads.

    Every ``interval`` seconds it reads the active catalog and compares digests with the last
    look: one small read, in each process, a few times a minute.
    """

    def __init__(self, db: Database, versions: CatalogVersions, *, interval: float = WATCH):
        self.db = db
        self.versions = versions
        self.interval = interval
        self.seen: tuple[str, str] | None = None

    async def check(self) -> list[str]:
        """Look once; the versions bumped ("catalog", "stock"). The first look only records."""
        found = await fingerprints(self.db)
        bumped = []
        if self.seen is not None:
            for kind, before, now in zip(("catalog", "stock"), self.seen, found, strict=True):
                if before != now:
                    await self.versions.bump(kind)
                    bumped.append(kind)
        self.seen = found
        if "catalog" in bumped:
            log.info("the catalog changed outside the gateway; every process reloads it")
        return bumped

    async def run(self, stopping: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)
            if stopping.is_set():
                return
            try:
                await self.check()
            except Exception as error:  # a database or Redis away: look again later
                log.warning("catalog watch: %s; looking again shortly", describe(error))


class CatalogCache:
    def __init__(
        self,
        db: Database,
        *,
        stock_refresh: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        # Stock changes with every order; reloading the catalog after each would cost a
        # busy shop one catalog read per order per process. At most one per interval.
        self.stock_refresh = stock_refresh
        self.clock = clock
        self._refreshed_at = -float("inf")
        self.snapshot: Catalog | None = None
        self._stock_tag: bytes | None = None
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        self._readings = itertools.count(1)

    async def get(self, catalog_tag: bytes | None, stock_tag: bytes | None) -> Catalog:
        """The catalog for these versions (``CatalogVersions.catalog_tag`` and ``stock_tag``)."""
        version = (catalog_tag or b"0").decode()
        snapshot = self.snapshot
        if snapshot is None or snapshot.version != version:
            async with self._lock:
                if self.snapshot is None or self.snapshot.version != version:
                    self.snapshot = await self._read(version)
                    self._stock_tag = stock_tag
            return self.snapshot
        idle = self._refresh is None or self._refresh.done()
        due = self.clock() - self._refreshed_at >= self.stock_refresh
        if stock_tag != self._stock_tag and idle and due:
            self._stock_tag = stock_tag
            self._refreshed_at = self.clock()
            self._refresh = asyncio.create_task(self._reload(version))
        return snapshot

    async def _reload(self, version: str) -> None:
        try:
            fresh = await self._read(version)
        except Exception:
            log.exception("background catalog refresh failed; serving the previous snapshot")
            self._stock_tag = None  # try again on a later hop
            return
        async with self._lock:
            if self.snapshot is None or self.snapshot.version == version:
                self.snapshot = fresh

    async def _read(self, version: str) -> Catalog:
        """The catalog as the store has it now, numbered: a screen cached from another
        reading (whose stock may differ, under the same version) is not reused for this one."""
        catalog = await load_catalog(self.db, version)
        return dataclasses.replace(catalog, reading=next(self._readings))

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            try:
                await self._refresh
            except asyncio.CancelledError:
                pass
