"""The in-process catalog: reloaded at once for catalog changes, at most once per interval for stock."""

from __future__ import annotations

from sqlalchemy import update

from gateway.catalog import CatalogCache
from store.db import Database
from store.models import Product


async def set_stock(db: Database, stock: int) -> None:
    async with db.write() as s:
        await s.exec(update(Product).values(stock=stock))  # type: ignore[call-overload]


async def stock_seen(cache: CatalogCache, catalog: bytes, stock: bytes) -> int:
    snapshot = await cache.get(catalog, stock)
    if cache._refresh is not None:
        await cache._refresh  # the background refresh, if one was started
    snapshot = cache.snapshot or snapshot
    return next(iter(snapshot.products.values())).stock


async def test_catalog_version_change_reloads_before_answering(seeded_db: Database) -> None:
    cache = CatalogCache(seeded_db)
    first = await cache.get(b"1", None)
    assert await cache.get(b"1", None) is first  # same version: no reload
    second = await cache.get(b"2", None)
    assert second is not first and second.version == "2"


async def test_catalog_stock_refresh_happens_at_most_once_per_interval(seeded_db: Database) -> None:
    now = [100.0]
    cache = CatalogCache(seeded_db, stock_refresh=5.0, clock=lambda: now[0])
    await cache.get(b"1", b"0")
    await set_stock(seeded_db, 7)
    assert await stock_seen(cache, b"1", b"1") == 7  # first stock change: refreshed
    await set_stock(seeded_db, 3)
    now[0] += 1
    assert await stock_seen(cache, b"1", b"2") == 7  # within the interval: still the old figure
    now[0] += 5
    assert await stock_seen(cache, b"1", b"3") == 3  # past it: refreshed


async def test_each_reading_of_the_catalog_is_numbered_anew(seeded_db: Database) -> None:
    """A stock refresh reads the same catalog version again: its snapshot is another reading,
    so screens cached from the last one (a product listed as sold out) are not reused."""
    cache = CatalogCache(seeded_db, stock_refresh=0.0)
    first = await cache.get(b"1", b"0")
    assert (await cache.get(b"1", b"0")).reading == first.reading  # nothing moved: no re-read
    await stock_seen(cache, b"1", b"1")
    assert cache.snapshot is not None and cache.snapshot.version == first.version
    assert cache.snapshot.reading > first.reading
