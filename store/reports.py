"""Counts for metrics and reports."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, func, select

from store.db import Database
from store.models import FunnelCount, Order, OutboundMessage


async def orders_by_status(db: Database) -> dict[str, int]:
    async with db.session() as session:
        query = select(Order.status, func.count()).group_by(col(Order.status))
        return {status: count for status, count in (await session.exec(query)).all()}


async def sms_by_status(db: Database) -> dict[str, int]:
    async with db.session() as session:
        query = select(OutboundMessage.status, func.count()).group_by(col(OutboundMessage.status))
        return {status: count for status, count in (await session.exec(query)).all()}


async def add_funnel(db: Database, counts: Mapping[tuple[datetime, str], int]) -> None:
    """Add sessions-reached counts per (hour, screen), in one transaction."""
    if not counts:
        return
    insert = sqlite_insert if db.is_sqlite else pg_insert
    async with db.write() as session:
        for (hour, screen), sessions in counts.items():
            statement = insert(FunnelCount).values(hour=hour, screen=screen, sessions=sessions)
            statement = statement.on_conflict_do_update(
                index_elements=[col(FunnelCount.hour), col(FunnelCount.screen)],
                set_={"sessions": col(FunnelCount.sessions) + sessions},
            )
            await session.exec(statement)


async def funnel(db: Database, start: datetime, end: datetime) -> dict[str, int]:
    """Sessions that reached each screen between ``start`` and ``end`` (hours, UTC)."""
    query = (
        select(FunnelCount.screen, func.sum(FunnelCount.sessions))
        .where(col(FunnelCount.hour) >= start, col(FunnelCount.hour) < end)
        .group_by(col(FunnelCount.screen))
    )
    async with db.session() as session:
        return {screen: int(total) for screen, total in (await session.exec(query)).all()}
