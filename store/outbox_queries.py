"""The outbox as staff see it: messages newest first, and a failed one queued again."""

from __future__ import annotations

from typing import Literal, get_args

from sqlalchemy import update
from sqlmodel import col, select

from store.db import Database
from store.errors import Conflict, NotFound
from store.fields import Shown, UtcTime
from store.models import OutboundMessage, utcnow
from store.pages import Page, keyset_page

MessageStatus = Literal["queued", "sending", "sent", "delivered", "failed", "cancelled"]
OUTBOX_STATUSES: tuple[MessageStatus, ...] = get_args(MessageStatus)


class MessageOut(Shown):
    """An SMS in the outbox, as staff see it."""

    id: int
    to: str
    body: str
    kind: str
    order_id: int | None
    status: MessageStatus
    attempts: int
    next_attempt_at: UtcTime
    provider: str | None
    provider_message_id: str | None
    last_error: str | None
    created_at: UtcTime
    sent_at: UtcTime | None
    delivered_at: UtcTime | None


class MessagePage(Page[MessageOut]):
    pass


async def list_outbox(
    db: Database, *, status: str | None = None, limit: int = 50, cursor: int | None = None
) -> MessagePage:
    query = select(OutboundMessage)
    if status is not None:
        query = query.where(col(OutboundMessage.status) == status)
    rows, next_cursor = await keyset_page(db, query, OutboundMessage, limit, cursor)
    return MessagePage(
        items=[MessageOut.model_validate(row) for row in rows], next_cursor=next_cursor
    )


async def retry_message(db: Database, id: int) -> MessageOut:
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
        return MessageOut.model_validate(row)
