"""Orders as staff look for them: filtered and paged, and one with its lines and history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from store.db import Database
from store.errors import NotFound
from store.models import DeliveryZone, Order, OrderEvent, OrderLine, Product
from store.pages import Page, keyset_page


@dataclass(frozen=True, slots=True)
class OrderDetail:
    order: Order
    zone: DeliveryZone | None
    lines: list[tuple[OrderLine, str | None]]  # with the product's sku
    events: list[OrderEvent]


async def search_orders(
    db: Database,
    *,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    msisdn: str | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> Page:
    """Orders matching every filter given: created in ``[since, until)``, for ``msisdn``."""
    query = select(Order)
    if status is not None:
        query = query.where(col(Order.status) == status)
    if since is not None:
        query = query.where(col(Order.created_at) >= since)
    if until is not None:
        query = query.where(col(Order.created_at) < until)
    if msisdn is not None:
        query = query.where(col(Order.msisdn) == msisdn)
    return await keyset_page(db, query, Order, limit, cursor)


async def order_detail(db: Database, code: str) -> OrderDetail:
    async with db.session() as session:
        order = (await session.exec(select(Order).where(Order.code == code))).first()
        if order is None:
            raise NotFound(f"no order {code}")
        zone = await session.get(DeliveryZone, order.zone_id)
        lines = (
            await session.exec(
                select(OrderLine, Product.sku)
                .join(Product, col(OrderLine.product_id) == col(Product.id), isouter=True)
                .where(OrderLine.order_id == order.id)
                .order_by(col(OrderLine.id))
            )
        ).all()
        events = (
            await session.exec(
                select(OrderEvent)
                .where(OrderEvent.order_id == order.id)
                .order_by(col(OrderEvent.created_at), col(OrderEvent.id))
            )
        ).all()
    return OrderDetail(order, zone, [(line, sku) for line, sku in lines], list(events))
