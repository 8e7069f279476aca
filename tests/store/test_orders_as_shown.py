"""An order written as the shopper was shown it (``place_order(..., shown=catalog)``).

On PostgreSQL a cash-on-delivery order then skips reading the shelf: the names, prices and
fee come from the snapshot, and the order's one call checks prices and fee under its locks.
On SQLite the snapshot is not used; the outcomes below hold on both.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col

from menus.ports import Catalog, OrderPlaced, OutOfStock
from store.catalog import load_catalog
from store.db import Database
from store.models import DeliveryZone, Order, OrderLine, Product
from store.orders import place_order
from tests.store.factories import (
    count,
    first_zone,
    order_request,
    product_by_sku,
    render,
    rows,
    set_product,
    stock_of,
)


async def _rice_zone_shown(db: Database) -> tuple[Product, DeliveryZone, Catalog]:
    """The product ordered, the district, and the catalog as the shopper was shown them."""
    rice = await product_by_sku(db, "FD-RICE5")
    zone = await first_zone(db)
    assert rice.id and zone.id
    return rice, zone, await load_catalog(db, "1")


async def test_an_order_as_shown_is_written_at_the_prices_and_fee_shown(
    seeded_db: Database,
) -> None:
    rice, zone, shown = await _rice_zone_shown(seeded_db)
    assert rice.id and zone.id

    placed = await place_order(
        seeded_db, order_request("s1", [(rice.id, 2)], zone.id), render, shown
    )

    assert isinstance(placed, OrderPlaced)
    assert (placed.subtotal, placed.fee) == (2 * rice.price, zone.fee)
    [line] = await rows(seeded_db, OrderLine)
    assert (line.product_id, line.name_en, line.unit_price, line.quantity) == (
        rice.id,
        rice.name_en,
        rice.price,
        2,
    )
    assert await stock_of(seeded_db, rice.id) == rice.stock - 2


async def test_a_price_moved_since_it_was_shown_is_charged_as_it_is_now(
    seeded_db: Database,
) -> None:
    rice, zone, shown = await _rice_zone_shown(seeded_db)
    assert rice.id and zone.id
    await set_product(seeded_db, rice.id, price=rice.price + 500)

    placed = await place_order(
        seeded_db, order_request("s2", [(rice.id, 1)], zone.id), render, shown
    )

    assert isinstance(placed, OrderPlaced)
    assert (placed.subtotal, placed.total) == (rice.price + 500, rice.price + 500 + zone.fee)
    [line] = await rows(seeded_db, OrderLine)
    assert line.unit_price == rice.price + 500
    assert await count(seeded_db, Order) == 1


async def test_a_fee_moved_since_it_was_shown_is_charged_as_it_is_now(
    seeded_db: Database,
) -> None:
    rice, zone, shown = await _rice_zone_shown(seeded_db)
    assert rice.id and zone.id
    async with seeded_db.engine.begin() as conn:
        await conn.execute(
            update(DeliveryZone).where(col(DeliveryZone.id) == zone.id).values(fee=zone.fee + 700)
        )

    placed = await place_order(
        seeded_db, order_request("s3", [(rice.id, 1)], zone.id), render, shown
    )

    assert isinstance(placed, OrderPlaced)
    assert (placed.fee, placed.total) == (zone.fee + 700, rice.price + zone.fee + 700)
    [order] = await rows(seeded_db, Order)
    assert (order.fee, order.total) == (zone.fee + 700, rice.price + zone.fee + 700)


async def test_a_product_sold_out_since_it_was_shown_is_out_of_stock_and_nothing_moves(
    seeded_db: Database,
) -> None:
    rice, zone, shown = await _rice_zone_shown(seeded_db)
    soap = await product_by_sku(seeded_db, "CS-FACESOAP")
    assert rice.id and soap.id and zone.id
    await set_product(seeded_db, soap.id, stock=0)

    result = await place_order(
        seeded_db, order_request("s4", [(rice.id, 1), (soap.id, 1)], zone.id), render, shown
    )

    assert result == OutOfStock(product_ids=(soap.id,))
    assert await count(seeded_db, Order) == 0
    assert await stock_of(seeded_db, rice.id) == rice.stock


async def test_a_product_the_snapshot_lacks_is_read_from_the_shelf(seeded_db: Database) -> None:
    rice = await product_by_sku(seeded_db, "FD-RICE5")
    zone = await first_zone(seeded_db)
    assert rice.id and zone.id
    await set_product(seeded_db, rice.id, active=False)
    shown = await load_catalog(seeded_db, "1")  # shown without it: off sale
    await set_product(seeded_db, rice.id, active=True, name_en="Rice, back")

    placed = await place_order(
        seeded_db, order_request("s5", [(rice.id, 1)], zone.id), render, shown
    )

    assert isinstance(placed, OrderPlaced)
    [line] = await rows(seeded_db, OrderLine)
    assert line.name_en == "Rice, back"  # read now, since it was not shown
