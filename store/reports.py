"""Counts for metrics and reports."""

from __future__ import annotations

from sqlmodel import col, func, select

from store.db import Database
from store.models import Order, OutboundMessage


async def orders_by_status(db: Database) -> dict[str, int]:
    async with db.session() as session:
        query = select(Order.status, func.count()).group_by(col(Order.status))
        return {status: count for status, count in (await session.exec(query)).all()}


async def sms_by_status(db: Database) -> dict[str, int]:
    async with db.session() as session:
        query = select(OutboundMessage.status, func.count()).group_by(col(OutboundMessage.status))
        return {status: count for status, count in (await session.exec(query)).all()}
