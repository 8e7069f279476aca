"""A slow store never makes a hop wait past its deadline, and never costs an order."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlalchemy import update
from sqlmodel import col, select

from gateway import keys
from gateway.hop import Gateway
from gateway.promises import Promises
from menus.ports import PlaceOrder
from store import orders
from store.db import Database
from store.models import Order, OutboundMessage, Product
from tests.gateway.test_ussd import MSISDN, ORDER_PATH, post, walk
from tests.store.factories import first_zone, order_request, product_by_sku, set_product

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
DEADLINE = 0.6
PENDING = "Your order is being placed."
FIRST_PRODUCT = "FD-CORNNOODLE"  # the product ORDER_PATH buys


@asynccontextmanager
async def slow_store(client: TestClient[Any, Any], test_db: Database) -> AsyncIterator[Any]:
    """Hold the products locked, as a long transaction elsewhere would; yield a session."""
    if test_db.is_sqlite:
        # SQLite writers queue on the app's in-process write lock: take it.
        async with client.app[keys.DATABASE].write() as session:
            yield session
        return
    async with test_db.write() as session:
        await session.exec(select(Product).with_for_update())  # type: ignore[call-overload]
        yield session


async def shop_and_hurried(make_gateway: Make) -> tuple[TestClient[Any, Any], TestClient[Any, Any]]:
    """Two processes of one gateway: the shop, with the default deadline, for walking to the
    confirm and looking afterwards (a loaded machine can outlast a short deadline on any hop),
    and a hurried one, with DEADLINE, that answers the confirm under test."""
    return await make_gateway(), await make_gateway(hop_deadline=DEADLINE)


async def test_deadline_slow_order_is_pending_then_placed_exactly_once(
    make_gateway: Make, seeded_db: Database
) -> None:
    shop, client = await shop_and_hurried(make_gateway)
    await walk(shop, ORDER_PATH)
    confirm = "*".join([*ORDER_PATH, "1"])
    async with slow_store(client, seeded_db):
        started = time.monotonic()
        status, body = await post(client, confirm)
        waited = time.monotonic() - started
        assert (status, body) == (
            200,
            "END Your order is being placed.\nAn SMS will confirm it shortly.",
        )
        assert waited < DEADLINE + 0.3
        assert await post(client, confirm) == (status, body)  # the aggregator retries
    await client.app[keys.GATEWAY].close()  # the placement finishes once the store frees up
    async with seeded_db.session() as s:
        assert len((await s.exec(select(Order))).all()) == 1
        sms = (await s.exec(select(OutboundMessage))).all()
    assert [m.kind for m in sms] == ["order_placed"]
    _, home = await post(shop, "", session="ATUid_2")
    assert home.startswith("CON Okryu Shop\n1. Shop\n2. Cart (0)")  # the cart went with the order


async def test_deadline_slow_order_that_fails_says_so_by_sms_and_keeps_the_cart(
    make_gateway: Make, seeded_db: Database
) -> None:
    shop, client = await shop_and_hurried(make_gateway)
    await walk(shop, ORDER_PATH)
    async with slow_store(client, seeded_db) as session:
        _, body = await post(client, "*".join([*ORDER_PATH, "1"]))
        assert body.startswith("END Your order is being placed.")
        await session.exec(update(Product).values(stock=0))  # meanwhile the goods run out
    await client.app[keys.GATEWAY].close()
    async with seeded_db.session() as s:
        assert (await s.exec(select(Order))).all() == []
        sms = (await s.exec(select(OutboundMessage).order_by(col(OutboundMessage.id)))).all()
    assert [m.kind for m in sms] == ["order_failed"]
    assert sms[0].body.startswith("Okryu: sorry, we could not place your order.")
    _, home = await post(shop, "", session="ATUid_2")
    assert home.startswith("CON Okryu Shop\n1. Shop\n2. Cart (1)")


async def test_deadline_every_subscriber_told_pending_gets_an_sms(
    make_gateway: Make, seeded_db: Database
) -> None:
    # 200 buyers confirm at once for 5 orders' worth of stock: most hops give up waiting for
    # the store and promise an SMS. Each placement ends in an order or a sell-out, and its
    # subscriber must hear which: no promise may slip between giving up and the ending.
    client = await make_gateway(hop_deadline=0.3)
    product = await product_by_sku(seeded_db, FIRST_PRODUCT)
    await set_product(seeded_db, product.id, stock=10)  # ORDER_PATH takes 2
    buyers = [f"+8501912{i:06d}" for i in range(200)]
    await asyncio.gather(*(post(client, "", phone=b, session=f"s-{b}") for b in buyers))
    confirm = "*".join([*ORDER_PATH, "1"])
    answers = await asyncio.gather(
        *(post(client, confirm, phone=b, session=f"s-{b}") for b in buyers)
    )
    await client.app[keys.GATEWAY].close()  # every placement ends
    promised = {b for b, (_, body) in zip(buyers, answers, strict=True) if PENDING in body}
    async with seeded_db.session() as s:
        told = (await s.exec(select(OutboundMessage.to))).all()
        orders = (await s.exec(select(Order))).all()
    assert promised, "the store kept up: this test proves nothing"
    assert promised - set(told) == set()
    assert len(orders) == 5 and sorted(told) == sorted(set(told))  # one SMS each, no more


async def test_deadline_pending_promise_is_written_before_the_screen_says_it(
    make_gateway: Make, seeded_db: Database
) -> None:
    shop, client = await shop_and_hurried(make_gateway)
    await walk(shop, ORDER_PATH)
    async with slow_store(client, seeded_db):
        _, body = await post(client, "*".join([*ORDER_PATH, "1"]))
        assert body.startswith(f"END {PENDING}")
        promised = await client.app[keys.GATEWAY].promises.due(grace=0)  # type: ignore[union-attr]
        assert [request.msisdn for request in promised] == [MSISDN]
    await client.app[keys.GATEWAY].close()


async def test_deadline_promise_of_a_process_that_died_is_kept_by_the_next(
    make_gateway: Make, seeded_db: Database, redis: Redis, redis_prefix: str
) -> None:
    # A process told two subscribers "an SMS will confirm it" and was killed before either
    # placement ended: what it left in Redis is all there is. The next process keeps both:
    # one order goes through, one meets an empty shelf; each gets its SMS, once.
    rice = await product_by_sku(seeded_db, FIRST_PRODUCT)
    zone = await first_zone(seeded_db)
    await set_product(seeded_db, rice.id, stock=3)
    dead = Promises(redis, redis_prefix, clock=lambda: 0.0)
    for buyer in ("+8501912000001", "+8501912000002"):
        await dead.make(order_request(f"{buyer}:k", [(rice.id, 2)], zone.id, msisdn=buyer))
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    for _ in range(2):  # a second look (or another process's) changes nothing
        await gateway.keep_promises()
    async with seeded_db.session() as s:
        sms = sorted((m.to, m.kind) for m in (await s.exec(select(OutboundMessage))).all())
    assert sorted(kind for _, kind in sms) == ["order_failed", "order_placed"]
    assert {to for to, _ in sms} == {"+8501912000001", "+8501912000002"}
    assert await dead.due(grace=0) == []


async def promised_after_start(gateway: Gateway, request: PlaceOrder) -> None:
    """A promise of ``request`` made after the process started (its own keeper, which looked
    then, leaves it), and due now to the keeper a test runs."""
    assert gateway.promises is not None
    await gateway.promises.make(request)
    gateway.promises.clock = lambda: time.time() + 60


async def test_a_promise_keeper_stopped_mid_placement_leaves_the_order_to_finish(
    make_gateway: Make, seeded_db: Database
) -> None:
    # The keeper waits on each placement it starts. Stopped meanwhile (the process shutting
    # down), it must not take the placement with it: the order goes through, and the
    # process's close waits for it as for every order in flight.
    rice = await product_by_sku(seeded_db, FIRST_PRODUCT)
    zone = await first_zone(seeded_db)
    buyer = "+8501912000001"
    request = order_request(f"{buyer}:k", [(rice.id, 1)], zone.id, msisdn=buyer)
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    await promised_after_start(gateway, request)
    async with slow_store(client, seeded_db):
        keeper = asyncio.create_task(gateway.keep_promises())
        async with asyncio.timeout(10):  # until the keeper's placement is out
            while request.idempotency_key not in gateway._placing:
                await asyncio.sleep(0)  # a loop turn, not a wait for time
        placement = gateway._placing[request.idempotency_key].task
        keeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await keeper
        assert not placement.done()
    await gateway.close()

    assert not placement.cancelled()
    async with seeded_db.session() as s:
        placed = (await s.exec(select(Order))).all()
        sms = [m.kind for m in (await s.exec(select(OutboundMessage))).all()]
    assert [order.msisdn for order in placed] == [buyer]
    assert sms == ["order_placed"]


async def test_a_kept_promise_whose_order_fails_is_told_and_reported_once(
    make_gateway: Make, seeded_db: Database
) -> None:
    # The placement logs its own failure and queues the SMS; the task that ran it must not
    # be reported again by asyncio as an exception nobody read.
    rice = await product_by_sku(seeded_db, FIRST_PRODUCT)
    buyer = "+8501912000001"
    request = order_request(f"{buyer}:k", [(rice.id, 1)], 999_999, msisdn=buyer)  # no district
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    await promised_after_start(gateway, request)
    reported: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
    try:
        assert await gateway.keep_promises() == 1  # told: the promise is done with
        gc.collect()  # the placement's task and its traceback's frames, freed
    finally:
        loop.set_exception_handler(None)

    assert reported == []
    async with seeded_db.session() as s:
        sms = [(m.to, m.kind) for m in (await s.exec(select(OutboundMessage))).all()]
    assert sms == [(buyer, "order_failed")]


async def placed_once(client: TestClient[Any, Any], db: Database) -> Order:
    """The one order placed, told by its confirmation alone, its cart done with."""
    async with db.session() as s:
        placed = (await s.exec(select(Order))).all()
        sms = (await s.exec(select(OutboundMessage))).all()
    assert len(placed) == 1
    assert [m.kind for m in sms] == ["order_placed"]
    _, home = await post(client, "", session="ATUid_2")
    assert home.startswith("CON Okryu Shop\n1. Shop\n2. Cart (0)"), home
    return placed[0]


async def kept_promise(client: TestClient[Any, Any]) -> None:
    """The promise made on the hop, once due, kept by the promise keeper."""
    gateway = client.app[keys.GATEWAY]
    gateway.promises.clock = lambda: time.time() + 60  # the promise is due
    assert await gateway.keep_promises() == 1


async def test_an_order_whose_answer_is_lost_after_its_commit_is_told_placed(
    make_gateway: Make, seeded_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connection dies between the commit and its answer: the order and its confirmation
    # are in the store. The subscriber must not also be told by SMS that it failed.
    place = orders.place_order

    async def answer_lost(*args: Any, **kwargs: Any) -> Any:
        await place(*args, **kwargs)
        raise asyncpg.ConnectionDoesNotExistError("connection was closed mid-operation")

    monkeypatch.setattr(orders, "place_order", answer_lost)
    client = await make_gateway()
    await walk(client, ORDER_PATH)
    status, body = await post(client, "*".join([*ORDER_PATH, "1"]))
    assert status == 200 and body.startswith("END Order "), body
    assert (await placed_once(client, seeded_db)).code in body


async def test_an_order_whose_connection_is_lost_before_it_commits_is_promised_and_settled(
    make_gateway: Make, seeded_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connection dies while the statement waits on the server (a popular product's row
    # lock, say): the order is not there when the hop looks, and commits after. Told it
    # failed, the subscriber would then also get its confirmation.
    place, find = orders.place_order, orders.find_order
    looked = asyncio.Event()
    late: list[asyncio.Task[Any]] = []

    async def looked_for(*args: Any, **kwargs: Any) -> Any:
        found = await find(*args, **kwargs)
        looked.set()
        return found

    async def commits_after_the_look(*args: Any, **kwargs: Any) -> Any:
        await looked.wait()
        return await place(*args, **kwargs)

    async def answer_lost_then_late(*args: Any, **kwargs: Any) -> Any:
        if late:
            return await place(*args, **kwargs)  # the promise keeper's placement
        late.append(asyncio.create_task(commits_after_the_look(*args, **kwargs)))
        raise asyncpg.ConnectionDoesNotExistError("connection was closed mid-operation")

    monkeypatch.setattr(orders, "place_order", answer_lost_then_late)
    monkeypatch.setattr(orders, "find_order", looked_for)
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    await walk(client, ORDER_PATH)
    status, body = await post(client, "*".join([*ORDER_PATH, "1"]))
    assert (status, body) == (200, f"END {PENDING}\nAn SMS will confirm it shortly.")
    await late[0]  # the order commits after the hop looked
    assert len(await gateway.promises.due(grace=0)) == 1
    await kept_promise(client)  # found placed: kept, not placed again
    assert await gateway.promises.due(grace=0) == []
    await placed_once(client, seeded_db)


async def test_an_order_whose_connection_is_lost_unsent_is_placed_by_the_promise_keeper(
    make_gateway: Make, seeded_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = orders.place_order
    calls: list[str] = []

    async def connection_gone_once(*args: Any, **kwargs: Any) -> Any:
        calls.append("placing")
        if len(calls) == 1:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed mid-operation")
        return await place(*args, **kwargs)

    monkeypatch.setattr(orders, "place_order", connection_gone_once)
    client = await make_gateway()
    await walk(client, ORDER_PATH)
    _, body = await post(client, "*".join([*ORDER_PATH, "1"]))
    assert body.startswith(f"END {PENDING}"), body
    async with seeded_db.session() as s:
        assert (await s.exec(select(Order))).all() == []  # not placed, not told it failed
        assert (await s.exec(select(OutboundMessage))).all() == []
    await kept_promise(client)
    await placed_once(client, seeded_db)


async def test_an_order_failing_for_a_bug_before_its_commit_is_told_failed_and_keeps_the_cart(
    make_gateway: Make, seeded_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug before anything was sent")

    monkeypatch.setattr(orders, "place_order", broken)
    client = await make_gateway()
    await walk(client, ORDER_PATH)
    status, body = await post(client, "*".join([*ORDER_PATH, "1"]))
    assert status == 200 and body.startswith("END "), body
    assert "placed" not in body
    async with seeded_db.session() as s:
        assert (await s.exec(select(Order))).all() == []
        sms = (await s.exec(select(OutboundMessage))).all()
    assert [m.kind for m in sms] == ["order_failed"]
    _, offer = await post(client, "", session="ATUid_2")
    assert offer.startswith("CON Continue where you left off?"), offer  # the hop failed
    _, home = await post(client, "2", session="ATUid_2")
    assert home.startswith("CON Okryu Shop\n1. Shop\n2. Cart (1)"), home
