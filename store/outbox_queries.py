"""The outbox as staff see it: messages newest first, and a failed one queued again."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select

from store.db import Database
from store.errors import Conflict, NotFound
from store.models import OutboundMessage, utcnow
from store.pages import Page, keyset_page

OUTBOX_STATUSES = ("queued", "sending", "sent", "delivered", "failed", "cancelled")


async def list_outbox(
    db: Database, *, status: str | None = None, limit: int = 50, cursor: int | None = None
) -> Page:
    query = select(OutboundMessage)
    if status is not None:
        query = query.where(col(OutboundMessage.status) == status)
    return await keyset_page(db, query, OutboundMessage, limit, cursor)


async def retry_message(db: Database, id: int) -> OutboundMessage:
    """Put a failed message back in the queue, due now with its attempts reset."""
    async with db.write() as session:
        retried = await session.exec(
            update(OutboundMessage)
            .where(col(OutboundMessage.id) == id, col(OutboundMessage.status) == "failed")
            .values(status="queued", attempts=0, next_attempt_at=utcnow(), lease_until=None)
            .returning(col(OutboundMessage.id))
            .execution_options(synchronize_session=False)
        )
        requeued = retried.first() is not None
        row = await session.get(OutboundMessage, id)
        if row is None:
            raise NotFound(f"no message {id}")
        if not requeued:
            raise Conflict(f"message {id} is {row.status}; only failed messages can be retried")
        return row
