"""Pages of rows, newest first, with keyset pagination on the id.

A page ends with ``next_cursor``, the id to continue below, so rows arriving meanwhile never
shift or repeat a page.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import Field
from sqlmodel import col

from store.db import Database
from store.fields import Shown
from store.models import Order, OutboundMessage

Item = TypeVar("Item", bound=Shown)


class Page(Shown, Generic[Item]):
    """Rows newest first; ``next_cursor`` continues below them (None: this was the last)."""

    items: list[Item]
    next_cursor: int | None = Field(description="pass as cursor for the next page")


async def keyset_page(
    db: Database,
    query: Any,
    table: type[Order] | type[OutboundMessage],
    limit: int,
    cursor: int | None,
) -> tuple[list[Any], int | None]:
    """The query's rows newest first, at most ``limit`` below ``cursor``; and the next cursor."""
    if cursor is not None:
        query = query.where(col(table.id) < cursor)
    query = query.order_by(col(table.id).desc()).limit(limit + 1)
    async with db.session() as session:
        rows = list((await session.exec(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more else None
