"""Small builders the store tests share: order requests and direct reads of the tables."""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel, col, func, select

from menus.ports import Lang, OrderLineRequest, OrderPlaced, PlaceOrder
from store.db import Database
from store.models import DeliveryZone, Product

ALICE = "+8501912340001"
BOB = "+8501912340002"


def render(placed: OrderPlaced, lang: str) -> str:
    """A confirmation body that shows what it was given, so tests can assert on it."""
    return f"{lang} {placed.code} total {placed.total}"


def order_request(
    key: str,
    lines: list[tuple[int, int]],
    zone_id: int,
    *,
    msisdn: str = ALICE,
    lang: Lang = "en",
    address: str = "Apt 3-12, Ryomyong St",
) -> PlaceOrder:
    """A PlaceOrder for (product id, quantity) lines."""
    return PlaceOrder(
        idempotency_key=key,
        msisdn=msisdn,
        lang=lang,
        lines=tuple(OrderLineRequest(product_id=p, quantity=q) for p, q in lines),
        zone_id=zone_id,
        address=address,
    )


async def product_by_sku(db: Database, sku: str) -> Product:
    """The product row with this sku."""
    async with db.session() as session:
        return (await session.exec(select(Product).where(Product.sku == sku))).one()


async def first_zone(db: Database) -> DeliveryZone:
    """The first delivery zone in menu order."""
    async with db.session() as session:
        query = select(DeliveryZone).order_by(col(DeliveryZone.position), col(DeliveryZone.id))
        return (await session.exec(query)).first()  # type: ignore[return-value]


async def stock_of(db: Database, product_id: int) -> int:
    """The product's stock as committed now."""
    async with db.session() as session:
        query = select(Product.stock).where(Product.id == product_id)
        return (await session.exec(query)).one()


async def set_product(db: Database, product_id: int, **values: Any) -> None:
    """Change a product's columns, as an admin would."""
    async with db.write() as session:
        product = await session.get(Product, product_id)
        assert product is not None
        for name, value in values.items():
            setattr(product, name, value)


async def count(db: Database, table: type[SQLModel]) -> int:
    """Rows in a table."""
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(table))).one()


async def rows(db: Database, table: type[SQLModel]) -> list[Any]:
    """Every row of a table, by id."""
    async with db.session() as session:
        return list((await session.exec(select(table).order_by(table.id))).all())  # type: ignore[attr-defined]
