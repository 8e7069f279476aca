"""Orders as staff look for them: filtered and paged, and one with its lines and history."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlmodel import col, select

from store.db import Database
from store.errors import NotFound
from store.fields import Shown, UtcTime
from store.lifecycle import Status
from store.models import DeliveryZone, Order, OrderEvent, OrderLine, OutboundMessage, Product
from store.pages import Page, keyset_page


class OrderOut(Shown):
    """An order as a list of orders shows it."""

    code: str
    status: Status
    msisdn: str
    subtotal: int
    fee: int
    total: int
    payment_method: str
    language: str
    created_at: UtcTime
    updated_at: UtcTime


class OrderPage(Page[OrderOut]):
    pass


class ZoneOut(Shown):
    id: int
    name_en: str
    name_ko: str


class LineOut(Shown):
    """One line of an order: the name and price as they were when it was placed."""

    product_id: int
    sku: str | None  # the product's, while it exists
    name_en: str
    name_ko: str
    unit_price: int
    quantity: int


class EventOut(Shown):
    """One step of an order's history: who moved it to which status, when."""

    status: str
    actor: str
    note: str
    at: UtcTime = Field(validation_alias="created_at")


class SmsOut(Shown):
    """An SMS sent (or to be sent) about an order."""

    kind: str
    body: str
    status: str
    at: UtcTime = Field(validation_alias="created_at")


class OrderDetailOut(OrderOut):
    """An order with its address, zone, lines and history."""

    address: str
    zone: ZoneOut | None
    lines: list[LineOut]
    history: list[EventOut]
    sms: list[SmsOut] = []  # what the customer was told, oldest first


async def search_orders(
    db: Database,
    *,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    msisdn: str | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> OrderPage:
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
    rows, next_cursor = await keyset_page(db, query, Order, limit, cursor)
    return OrderPage(items=[OrderOut.model_validate(row) for row in rows], next_cursor=next_cursor)


async def order_detail(db: Database, code: str) -> OrderDetailOut:
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
        sms = (
            await session.exec(
                select(OutboundMessage)
                .where(OutboundMessage.order_id == order.id)
                .order_by(col(OutboundMessage.created_at), col(OutboundMessage.id))
            )
        ).all()
    return OrderDetailOut.model_validate(
        {
            **order.model_dump(),
            "zone": zone,
            "lines": [{**line.model_dump(), "sku": sku} for line, sku in lines],
            "history": events,
            "sms": sms,
        }
    )
