"""Pages of rows, newest first, with keyset pagination on the id.

A page ends with ``next_cursor``, the id to continue below, so rows arriving meanwhile never
shift or repeat a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import col

from store.db import Database
from store.models import Order, OutboundMessage


@dataclass(frozen=True, slots=True)
class Page:
    """Rows newest first; ``next_cursor`` continues below them (None: this was the last)."""

    rows: list[Any]
    next_cursor: int | None


async def keyset_page(
    db: Database,
    query: Any,
    table: type[Order] | type[OutboundMessage],
    limit: int,
    cursor: int | None,
) -> Page:
    if cursor is not None:
        query = query.where(col(table.id) < cursor)
    query = query.order_by(col(table.id).desc()).limit(limit + 1)
    async with db.session() as session:
        rows = list((await session.exec(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _id(rows[-1].id) if more else None)


def _id(value: int | None) -> int:
    # Rows read back from the database always have their primary key.
    assert value is not None
    return value
