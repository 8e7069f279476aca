from __future__ import annotations

from store.catalog import catalog_is_empty, load_catalog
from store.db import Database
from store.models import Category, DeliveryZone, Product


async def _category(db: Database, slug: str, position: int, active: bool = True) -> int:
    async with db.write() as session:
        row = Category(slug=slug, name_en=slug, name_ko="가", position=position, active=active)
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def _product(
    db: Database, category_id: int, sku: str, position: int, active: bool = True
) -> int:
    async with db.write() as session:
        row = Product(
            sku=sku,
            category_id=category_id,
            name_en=sku,
            name_ko="가",
            price=1000,
            stock=5,
            position=position,
            active=active,
        )
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def _zone(db: Database, name: str, position: int, active: bool = True) -> None:
    async with db.write() as session:
        session.add(
            DeliveryZone(name_en=name, name_ko="가", fee=1000, position=position, active=active)
        )


async def test_load_catalog_orders_categories_and_products_by_position_then_id(
    db: Database,
) -> None:
    later = await _category(db, "later", position=20)
    first = await _category(db, "first", position=10)
    tie = await _category(db, "tie", position=20)  # same position as "later": id decides
    for category in (later, first, tie):
        await _product(db, category, f"{category}-b", position=2)
        await _product(db, category, f"{category}-a", position=1)
        await _product(db, category, f"{category}-c", position=2)

    catalog = await load_catalog(db, "v7")

    assert catalog.version == "v7"
    assert [c.id for c in catalog.categories] == [first, later, tie]
    skus = [catalog.products[pid].sku for pid in catalog.by_category[first]]
    assert skus == [f"{first}-a", f"{first}-b", f"{first}-c"]


async def test_load_catalog_leaves_out_inactive_products_and_empty_categories(
    db: Database,
) -> None:
    shown = await _category(db, "shown", position=1)
    emptied = await _category(db, "emptied", position=2)
    hidden = await _category(db, "hidden", position=3, active=False)
    on_sale = await _product(db, shown, "on-sale", 1)
    withdrawn = await _product(db, shown, "withdrawn", 2, active=False)
    await _product(db, emptied, "gone", 1, active=False)
    await _product(db, hidden, "in-hidden", 1)

    catalog = await load_catalog(db, "v1")

    assert [c.id for c in catalog.categories] == [shown]
    assert catalog.by_category == {shown: (on_sale,)}
    assert withdrawn not in catalog.products
    assert catalog.products[on_sale].stock == 5


async def test_load_catalog_lists_active_zones_in_order(db: Database) -> None:
    await _zone(db, "far", position=3)
    await _zone(db, "closed", position=0, active=False)
    await _zone(db, "near", position=1)

    catalog = await load_catalog(db, "v1")

    assert [z.name_en for z in catalog.zones] == ["near", "far"]


async def test_catalog_is_empty_sees_any_zone(db: Database) -> None:
    assert await catalog_is_empty(db)
    await _zone(db, "only", position=0, active=False)
    assert not await catalog_is_empty(db)
