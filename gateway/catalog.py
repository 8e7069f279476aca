"""The in-process catalog, reloaded when the version read with each session changes.

Browsing hops never touch the database. An admin change bumps the catalog version and every
process reloads before answering its next hop. An order only changes stock; that bumps the
stock version, and the snapshot is refreshed in the background, because a stale stock figure
only decides what a list shows: the order transaction itself checks the real stock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from menus.ports import Catalog
from store.catalog import load_catalog
from store.db import Database

log = logging.getLogger("okryu.catalog")


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

    async def get(self, catalog_tag: bytes | None, stock_tag: bytes | None) -> Catalog:
        """The catalog for these versions (as read from Redis in the hop's one ``MGET``)."""
        version = (catalog_tag or b"0").decode()
        snapshot = self.snapshot
        if snapshot is None or snapshot.version != version:
            async with self._lock:
                if self.snapshot is None or self.snapshot.version != version:
                    self.snapshot = await load_catalog(self.db, version)
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
            fresh = await load_catalog(self.db, version)
        except Exception:
            log.exception("background catalog refresh failed; serving the previous snapshot")
            self._stock_tag = None  # try again on a later hop
            return
        async with self._lock:
            if self.snapshot is None or self.snapshot.version == version:
                self.snapshot = fresh

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            try:
                await self._refresh
            except asyncio.CancelledError:
                pass
