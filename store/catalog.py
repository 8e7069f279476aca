"""The active catalog, read once into the immutable snapshot the menus browse."""

from __future__ import annotations

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from menus import ports
from store.db import Database
from store.models import Category, DeliveryZone, Product


async def load_catalog(db: Database, version: str) -> ports.Catalog:
    """A snapshot of the active categories, products and zones, tagged with ``version``."""
    async with db.session() as session:
        categories = (
            await session.exec(
                select(Category)
                .where(col(Category.active))
                .order_by(col(Category.position), col(Category.id))
            )
        ).all()
        products = (
            await session.exec(
                select(Product)
                .where(col(Product.active))
                .order_by(col(Product.position), col(Product.id))
            )
        ).all()
        zones = (
            await session.exec(
                select(DeliveryZone)
                .where(col(DeliveryZone.active))
                .order_by(col(DeliveryZone.position), col(DeliveryZone.id))
            )
        ).all()

    by_product = {_id(p.id): _product(p) for p in products}
    by_category: dict[int, list[int]] = {}
    for product in by_product.values():  # already in (position, id) order
        by_category.setdefault(product.category_id, []).append(product.id)
    # A category with nothing to sell would be a dead end on a screen with no room to spare.
    listed = tuple(_category(c) for c in categories if _id(c.id) in by_category)
    return ports.Catalog(
        version=version,
        categories=listed,
        products=by_product,
        by_category={c.id: tuple(by_category[c.id]) for c in listed},
        zones=tuple(_zone(z) for z in zones),
    )


async def catalog_is_empty(db: Database) -> bool:
    """True when there is no category, product or delivery zone at all, active or not."""
    async with db.session() as session:
        return await is_empty(session)


async def is_empty(session: AsyncSession) -> bool:
    """``catalog_is_empty`` in the caller's session, so a check and a load share a transaction."""
    for table in (Category, Product, DeliveryZone):
        count = (await session.exec(select(func.count()).select_from(table))).one()
        if count:
            return False
    return True


def _category(row: Category) -> ports.Category:
    return ports.Category(
        id=_id(row.id), name_en=row.name_en, name_ko=row.name_ko, position=row.position
    )


def _product(row: Product) -> ports.Product:
    return ports.Product(
        id=_id(row.id),
        sku=row.sku,
        category_id=row.category_id,
        name_en=row.name_en,
        name_ko=row.name_ko,
        description_en=row.description_en,
        description_ko=row.description_ko,
        price=row.price,
        stock=row.stock,
    )


def _zone(row: DeliveryZone) -> ports.Zone:
    return ports.Zone(id=_id(row.id), name_en=row.name_en, name_ko=row.name_ko, fee=row.fee)


def _id(value: int | None) -> int:
    # Rows read back from the database always have their primary key.
    assert value is not None
    return value
