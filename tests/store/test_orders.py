from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import col

from menus.ports import CustomerProfile, OrderPlaced, OutOfStock
from store.db import Database
from store.errors import StoreError
from store.models import (
    Customer,
    DeliveryZone,
    Order,
    OrderEvent,
    OrderLine,
    OutboundMessage,
)
from store.orders import (
    get_customer,
    get_order,
    list_orders,
    outcome_unknown,
    place_order,
    save_language,
)
from tests.store.factories import (
    ALICE,
    BOB,
    count,
    first_zone,
    order_request,
    product_by_sku,
    render,
    rows,
    set_product,
    stock_of,
)


async def test_place_order_takes_stock_and_records_everything(seeded_db: Database) -> None:
    noodles = await product_by_sku(seeded_db, "FD-CORNNOODLE")
    soap = await product_by_sku(seeded_db, "CS-FACESOAP")
    zone = await first_zone(seeded_db)
    assert noodles.id and soap.id and zone.id

    placed = await place_order(
        seeded_db,
        order_request("k1", [(noodles.id, 2), (soap.id, 1)], zone.id, lang="ko"),
        render,
    )

    assert isinstance(placed, OrderPlaced)
    assert placed.subtotal == 2 * noodles.price + soap.price
    assert placed.fee == zone.fee
    assert placed.total == placed.subtotal + zone.fee
    assert await stock_of(seeded_db, noodles.id) == noodles.stock - 2
    assert await stock_of(seeded_db, soap.id) == soap.stock - 1
    [order] = await rows(seeded_db, Order)
    assert (order.code, order.status, order.msisdn, order.language) == (
        placed.code,
        "placed",
        ALICE,
        "ko",
    )
    lines = await rows(seeded_db, OrderLine)
    assert [(x.product_id, x.name_ko, x.unit_price, x.quantity) for x in lines] == [
        (noodles.id, "강냉이국수", noodles.price, 2),
        (soap.id, "세수비누", soap.price, 1),
    ]
    [event] = await rows(seeded_db, OrderEvent)
    assert (event.order_id, event.status, event.actor) == (order.id, "placed", f"customer:{ALICE}")
    [message] = await rows(seeded_db, OutboundMessage)
    assert (message.to, message.body, message.kind, message.status) == (
        ALICE,
        f"ko {placed.code} total {placed.total}",
        "order_placed",
        "queued",
    )
    assert (message.order_id, message.idempotency_key) == (order.id, f"order_placed:{placed.code}")


async def test_place_order_remembers_the_customer(seeded_db: Database) -> None:
    rice = await product_by_sku(seeded_db, "FD-RICE5")
    zone = await first_zone(seeded_db)
    assert rice.id and zone.id
    assert await get_customer(seeded_db, ALICE) is None

    await place_order(
        seeded_db, order_request("k1", [(rice.id, 1)], zone.id, lang="ko", address="A"), render
    )
    await place_order(
        seeded_db, order_request("k2", [(rice.id, 1)], zone.id, lang="ko", address="B"), render
    )

    assert await get_customer(seeded_db, ALICE) == CustomerProfile(ALICE, "ko", zone.id, "B")
    assert await count(seeded_db, Customer) == 1


async def test_place_order_charges_the_current_price(seeded_db: Database) -> None:
    rice = await product_by_sku(seeded_db, "FD-RICE5")
    zone = await first_zone(seeded_db)
    assert rice.id and zone.id
    await set_product(seeded_db, rice.id, price=31000)  # after the menu showed the old one

    placed = await place_order(seeded_db, order_request("k1", [(rice.id, 1)], zone.id), render)

    assert isinstance(placed, OrderPlaced)
    assert placed.subtotal == 31000
    [line] = await rows(seeded_db, OrderLine)
    assert line.unit_price == 31000


async def test_place_order_merges_repeated_products(seeded_db: Database) -> None:
    raincoat = await product_by_sku(seeded_db, "CL-RAINCOAT")  # stock 1
    socks = await product_by_sku(seeded_db, "CL-SOCKS")
    zone = await first_zone(seeded_db)
    assert raincoat.id and socks.id and zone.id

    result = await place_order(
        seeded_db,
        order_request("k1", [(socks.id, 1), (raincoat.id, 1), (socks.id, 2)], zone.id),
        render,
    )

    assert isinstance(result, OrderPlaced)
    assert [(x.product_id, x.quantity) for x in await rows(seeded_db, OrderLine)] == [
        (socks.id, 3),
        (raincoat.id, 1),
    ]
    assert await stock_of(seeded_db, socks.id) == socks.stock - 3


async def test_place_order_replay_returns_the_same_order_once(seeded_db: Database) -> None:
    rice = await product_by_sku(seeded_db, "FD-RICE5")
    zone = await first_zone(seeded_db)
    assert rice.id and zone.id
    request = order_request("same-key", [(rice.id, 3)], zone.id)

    first = await place_order(seeded_db, request, render)
    again = await place_order(seeded_db, request, render)

    assert isinstance(first, OrderPlaced)
    assert again == first
    assert await stock_of(seeded_db, rice.id) == rice.stock - 3
    assert await count(seeded_db, Order) == 1
    assert await count(seeded_db, OutboundMessage) == 1


async def test_place_order_refuses_a_key_used_by_another_subscriber(
    seeded_db: Database,
) -> None:
    rice = await product_by_sku(seeded_db, "FD-RICE5")
    zone = await first_zone(seeded_db)
    assert rice.id and zone.id
    await place_order(seeded_db, order_request("k1", [(rice.id, 1)], zone.id), render)

    with pytest.raises(StoreError):
        await place_order(
            seeded_db, order_request("k1", [(rice.id, 1)], zone.id, msisdn=BOB), render
        )


async def test_place_order_out_of_stock_names_every_failing_line_and_changes_nothing(
    seeded_db: Database,
) -> None:
    sold_out = await product_by_sku(seeded_db, "MD-CHONGSIM")  # stock 0
    scarce = await product_by_sku(seeded_db, "FD-POLLACK")  # stock 2
    plenty = await product_by_sku(seeded_db, "CL-SOCKS")
    withdrawn = await product_by_sku(seeded_db, "HH-TOWEL")
    zone = await first_zone(seeded_db)
    assert sold_out.id and scarce.id and plenty.id and withdrawn.id and zone.id
    await set_product(seeded_db, withdrawn.id, active=False)
    lines = [(plenty.id, 1), (scarce.id, 3), (sold_out.id, 1), (withdrawn.id, 1), (99999, 1)]

    result = await place_order(seeded_db, order_request("k1", lines, zone.id), render)

    assert result == OutOfStock(product_ids=(scarce.id, sold_out.id, withdrawn.id, 99999))
    assert await stock_of(seeded_db, plenty.id) == plenty.stock
    assert await stock_of(seeded_db, scarce.id) == 2
    assert await count(seeded_db, Order) == 0
    assert await count(seeded_db, OutboundMessage) == 0
    assert await get_customer(seeded_db, ALICE) is None


async def test_place_order_rejects_an_inactive_or_unknown_zone(seeded_db: Database) -> None:
    rice = await product_by_sku(seeded_db, "FD-RICE5")
    zone = await first_zone(seeded_db)
    assert rice.id and zone.id
    await close_zone(seeded_db, zone.id)

    for zone_id in (zone.id, 99999):
        with pytest.raises(StoreError, match="zone"):
            await place_order(seeded_db, order_request("k1", [(rice.id, 1)], zone_id), render)
    assert await stock_of(seeded_db, rice.id) == rice.stock


async def test_place_order_replayed_after_its_zone_or_product_closed_answers_with_its_order(
    seeded_db: Database,
) -> None:
    # A retried confirm whose order went through before the staff closed the district and
    # withdrew the product: the same order, not an error.
    rice = await product_by_sku(seeded_db, "FD-RICE5")
    zone = await first_zone(seeded_db)
    assert rice.id and zone.id
    request = order_request("k1", [(rice.id, 1)], zone.id)
    placed = await place_order(seeded_db, request, render)
    await close_zone(seeded_db, zone.id)
    await set_product(seeded_db, rice.id, active=False)

    assert await place_order(seeded_db, request, render) == placed
    assert await count(seeded_db, Order) == 1
    assert await stock_of(seeded_db, rice.id) == rice.stock - 1


async def close_zone(db: Database, zone_id: int) -> None:
    """Take a delivery district off the menu, as staff would."""
    async with db.write() as session:
        await session.exec(
            update(DeliveryZone).where(col(DeliveryZone.id) == zone_id).values(active=False)
        )


@pytest.mark.parametrize("lines", [[], [(1, 0)], [(1, -2)]])
async def test_place_order_rejects_empty_orders_and_bad_quantities(
    seeded_db: Database, lines: list[tuple[int, int]]
) -> None:
    zone = await first_zone(seeded_db)
    assert zone.id
    before = await stock_of(seeded_db, 1)

    with pytest.raises(StoreError):
        await place_order(seeded_db, order_request("k1", lines, zone.id), render)
    assert await stock_of(seeded_db, 1) == before


async def test_save_language_creates_then_updates_the_customer(db: Database) -> None:
    await save_language(db, ALICE, "ko")
    assert await get_customer(db, ALICE) == CustomerProfile(ALICE, "ko")
    await save_language(db, ALICE, "en")
    assert await get_customer(db, ALICE) == CustomerProfile(ALICE, "en")
    with pytest.raises(StoreError):
        await save_language(db, ALICE, "fr")
    assert await count(db, Customer) == 1


async def test_list_orders_is_newest_first_and_only_the_subscribers(
    seeded_db: Database,
) -> None:
    socks = await product_by_sku(seeded_db, "CL-SOCKS")
    zone = await first_zone(seeded_db)
    assert socks.id and zone.id
    codes = []
    for i, msisdn in enumerate([ALICE, BOB, ALICE, ALICE]):
        placed = await place_order(
            seeded_db, order_request(f"k{i}", [(socks.id, 1)], zone.id, msisdn=msisdn), render
        )
        assert isinstance(placed, OrderPlaced)
        codes.append((msisdn, placed.code))
    # All placed in the same instant: the later id still comes first.
    instant = (await rows(seeded_db, Order))[0].created_at
    async with seeded_db.write() as session:
        await session.exec(update(Order).values(created_at=instant))

    alices = await list_orders(seeded_db, ALICE)

    assert [o.code for o in alices] == [code for m, code in reversed(codes) if m == ALICE]
    assert [o.code for o in await list_orders(seeded_db, ALICE, limit=2)] == [
        o.code for o in alices[:2]
    ]
    assert [o.code for o in await list_orders(seeded_db, BOB)] == [codes[1][1]]
    assert await list_orders(seeded_db, "+8501900000000") == ()


async def test_get_order_shows_the_subscribers_own_order(seeded_db: Database) -> None:
    socks = await product_by_sku(seeded_db, "CL-SOCKS")
    zone = await first_zone(seeded_db)
    assert socks.id and zone.id
    placed = await place_order(
        seeded_db, order_request("k1", [(socks.id, 2)], zone.id, address="Flat 9"), render
    )
    assert isinstance(placed, OrderPlaced)

    detail = await get_order(seeded_db, ALICE, f" {placed.code.lower()} ")

    assert detail is not None
    assert (detail.code, detail.status, detail.total) == (placed.code, "placed", placed.total)
    assert [(x.name_en, x.quantity, x.unit_price) for x in detail.lines] == [
        ("Cotton socks", 2, socks.price)
    ]
    assert (detail.zone_en, detail.zone_ko, detail.address) == ("Central", "중구역", "Flat 9")


async def test_get_order_never_shows_another_subscribers_order(seeded_db: Database) -> None:
    socks = await product_by_sku(seeded_db, "CL-SOCKS")
    zone = await first_zone(seeded_db)
    assert socks.id and zone.id
    placed = await place_order(seeded_db, order_request("k1", [(socks.id, 1)], zone.id), render)
    assert isinstance(placed, OrderPlaced)

    assert await get_order(seeded_db, BOB, placed.code) is None
    assert await get_order(seeded_db, ALICE, "ZZZZZZ") is None


def test_which_placement_errors_leave_the_order_open() -> None:
    # A lost connection may have committed the order (or may still): the hop promises it.
    # A refusal or a driver error with nothing behind it leaves nothing to settle.
    lost = asyncpg.ConnectionDoesNotExistError("connection was closed mid-operation")
    assert outcome_unknown(lost)
    assert outcome_unknown(ConnectionResetError())
    assert outcome_unknown(OperationalError("SELECT 1", None, lost))  # as the ORM wraps it
    assert not outcome_unknown(DBAPIError("SELECT 1", None, None))  # type: ignore[arg-type]
    assert not outcome_unknown(asyncpg.UniqueViolationError("duplicate key"))
    assert not outcome_unknown(StoreError("address is longer than 120 characters"))
