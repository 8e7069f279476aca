"""The active catalog, read once into the immutable snapshot the menus browse."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

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


async def fingerprints(db: Database) -> tuple[str, str]:
    """Digests of the active catalog without its stock, and of its stock: what a change made
    outside the gateway (``okryu seed``, an edit in SQL) is noticed by."""
    catalog = await load_catalog(db, "")
    products = sorted(catalog.products.values(), key=lambda p: p.id)
    shape = (catalog.categories, [dataclasses.replace(p, stock=0) for p in products], catalog.zones)
    stock = [(p.id, p.stock) for p in products]
    return _digest(shape), _digest(stock)


def _digest(value: object) -> str:
    return hashlib.blake2b(repr(value).encode(), digest_size=12).hexdigest()


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


def widest_catalog(version: str = "widest") -> ports.Catalog:
    """A catalog whose every name and description fills its column, with the largest prices
    and fees a shop would charge: the worst case ``okryu flow check`` lays screens out for."""

    def width(model: type[Any], column: str) -> int:
        length: int = model.__table__.c[column].type.length
        return length

    def english(model: type[Any], column: str, word: str) -> str:
        return (f"{word} " * 60)[: width(model, column)].rstrip() + "."

    def korean(model: type[Any], column: str) -> str:
        return ("옥류상점의 좋은 물건 " * 20)[: width(model, column)]

    categories = tuple(
        ports.Category(i, english(Category, "name_en", f"Sort{i}"), korean(Category, "name_ko"))
        for i in (1, 2)
    )
    products = {
        pid: ports.Product(
            id=pid,
            sku=f"WIDE-{pid}",
            category_id=1 if pid <= 12 else 2,
            name_en=english(Product, "name_en", f"Item{pid}"),
            name_ko=korean(Product, "name_ko"),
            description_en=english(Product, "description_en", "Detail"),
            description_ko=korean(Product, "description_ko"),
            price=99_999_999,
            stock=0 if pid == 3 else 10,
        )
        for pid in range(1, 16)
    }
    by_category = {1: tuple(range(1, 13)), 2: tuple(range(13, 16))}
    zones = tuple(
        ports.Zone(
            z,
            english(DeliveryZone, "name_en", "District"),
            korean(DeliveryZone, "name_ko"),
            999_999,
        )  # fmt: skip
        for z in range(1, 12)
    )
    return ports.Catalog(version, categories, products, by_category, zones)


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
