"""A running gateway notices catalog changes made outside it: ``okryu seed`` bumps the version
in the gateways' Redis, and each process watches the database for edits no process made. An
empty catalog is a warning at start and on ``/readyz``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from sqlalchemy import update
from sqlmodel import select

from gateway import keys
from gateway.app import create_app
from gateway.catalog import EMPTY_CATALOG, CatalogCache, CatalogVersions, CatalogWatch
from gateway.cli import main
from gateway.settings import Settings
from simulators.phone import Phone
from store.db import Database
from store.models import Order, Product
from tests.gateway.test_ussd import ORDER_PATH, walk

Client = TestClient[Any, Any]


@pytest.fixture
async def empty_gateway(
    aiohttp_client: Callable[..., Awaitable[Client]], gateway_settings: Settings, db: Database
) -> Client:
    """The gateway started on a database with no catalog at all."""
    app: web.Application = create_app(gateway_settings)
    return await aiohttp_client(TestServer(app))


async def categories_shown(client: Client, msisdn: str) -> str:
    async with Phone(str(client.make_url("/ussd/africastalking")), msisdn) as phone:
        await phone.dial("*123#")
        return (await phone.send("1")).text


async def test_seed_bumps_the_catalog_so_a_running_gateway_shows_it_at_once(
    empty_gateway: Client,
    gateway_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = await categories_shown(empty_gateway, "+8501912341001")
    assert "Food" not in before
    monkeypatch.setenv("OKRYU_DATABASE_URL", gateway_settings.database_url)
    monkeypatch.setenv("OKRYU_REDIS_URL", gateway_settings.redis_url or "")
    monkeypatch.setenv("OKRYU_REDIS_PREFIX", gateway_settings.redis_prefix)
    handlers = logging.getLogger().handlers[:]
    try:
        assert await asyncio.to_thread(main, ["seed"]) == 0
    finally:
        logging.getLogger().handlers[:] = handlers
    assert capsys.readouterr().out == "seeded the demo catalog; running gateways reload it now\n"
    # No restart, no wait: this process bumped nothing itself; it heard the seed's bump, or
    # read the version key on its next poll. The hop reads the versions it holds in memory.
    gateway = empty_gateway.server.app[keys.GATEWAY]
    await gateway.versions.refresh()  # as the next poll would, should the message be slow
    assert "1. Food" in await categories_shown(empty_gateway, "+8501912341002")


async def test_catalog_watch_bumps_for_a_change_made_in_sql(
    seeded_db: Database, redis: Redis, redis_prefix: str
) -> None:
    versions = CatalogVersions(redis, redis_prefix)
    await versions.refresh()
    watch = CatalogWatch(seeded_db, versions)
    cache = CatalogCache(seeded_db)
    assert await watch.check() == []  # the first look records what is there
    assert await watch.check() == []  # nothing changed: nothing bumped
    first = await cache.get(versions.catalog_tag, versions.stock_tag)
    async with seeded_db.write() as session:
        renamed = update(Product).where(Product.sku == first.products[1].sku)  # type: ignore[arg-type]
        await session.exec(renamed.values(name_en="Corn noodles, fresh"))  # type: ignore[call-overload]
    assert await watch.check() == ["catalog"]
    assert await redis.get(versions.keys["catalog"]) == b"1"
    fresh = await cache.get(versions.catalog_tag, versions.stock_tag)
    assert fresh.products[1].name_en == "Corn noodles, fresh"
    async with seeded_db.write() as session:
        await session.exec(update(Product).values(stock=3))  # type: ignore[call-overload]
    assert await watch.check() == ["stock"]  # stock alone: the cheaper reload
    await versions.close()


async def test_empty_catalog_is_a_warning_at_start_and_on_readyz(
    aiohttp_client: Callable[..., Awaitable[Client]],
    gateway_settings: Settings,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="okryu"):
        client = await aiohttp_client(TestServer(create_app(gateway_settings)))
    assert [r.getMessage() for r in caplog.records if r.name == "okryu.app"].count(
        EMPTY_CATALOG
    ) == 1
    ready = await client.get("/readyz")
    assert ready.status == 200  # ready to serve: staff may fill the catalog while it runs
    assert await ready.json() == {
        "status": "ok",
        "catalog": {"categories": 0, "products": 0, "zones": 0},
        "warnings": [EMPTY_CATALOG],
    }


async def test_readyz_counts_a_filled_catalog_without_warnings(
    make_gateway: Callable[..., Awaitable[Client]],
) -> None:
    client = await make_gateway()
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (
        200,
        {"status": "ok", "catalog": {"categories": 6, "products": 48, "zones": 9}},
    )


async def test_stock_bumps_are_counted_not_announced_and_read_at_the_next_poll(
    redis: Any, redis_prefix: str
) -> None:
    # One bump per order: announced, it would wake every process of a fleet for every order.
    ours, theirs = CatalogVersions(redis, redis_prefix), CatalogVersions(redis, redis_prefix)
    await theirs.refresh()  # before any bump (and, on a cluster, the client learns its slots)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(ours.channel)
    try:
        await ours.stock_changed()
        await ours.bump("catalog")
        message = None
        while message is None:  # the subscription's own confirmation is skipped
            message = await pubsub.get_message(timeout=5.0)
        assert message["data"] == b"catalog:1"  # the first message: the stock went unsaid
    finally:
        await pubsub.aclose()
    assert ours.stock_tag == b"1"  # the process that bumped knows at once
    assert theirs.stock_tag is None  # not told
    await theirs.refresh()  # its poll
    assert (theirs.stock_tag, theirs.catalog_tag) == (b"1", ours.catalog_tag)
    await ours.close()
    await theirs.close()


async def test_an_order_is_placed_and_told_when_its_stock_bump_fails(
    make_gateway: Callable[..., Awaitable[Client]],
    seeded_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The hop does not wait for its order's stock bump (it goes with the turn's commands); a
    # bump Redis refuses is a warning, never the order's failure or a traceback.
    client = await make_gateway()
    versions = client.app[keys.GATEWAY].versions
    await versions.redis.set(versions.keys["stock"], "not a number")  # INCR refuses it
    assert (await walk(client, [*ORDER_PATH, "1"])).startswith("END Order ")
    async with seeded_db.session() as session:
        assert len((await session.exec(select(Order))).all()) == 1
    assert await versions.stock_changed() is None  # done, never failed
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("could not announce a stock change" in m for m in warned) == 2
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
