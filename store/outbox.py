"""The transactional SMS outbox (DESIGN §7): rows written with what they announce, sent later.

A row moves ``queued -> sending -> sent -> delivered``, or back to ``queued`` for a retry, or
to ``failed`` for good. ``sending`` carries a lease: a dispatcher that dies mid-send leaves
its rows to be claimed again once the lease runs out, so a crash loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database
from store.models import OutboundMessage

# PostgreSQL enforces the column lengths; a provider's error text can be long.
_ERROR_LENGTH = 300
_VISIBLE_STATUSES = ("sent", "delivered")


@dataclass(frozen=True)
class OutboxItem:
    """One claimed message, as the dispatcher needs it to send."""

    id: int
    to: str
    body: str
    kind: str
    attempts: int
    idempotency_key: str


async def enqueue(
    session: AsyncSession,
    *,
    to: str,
    body: str,
    kind: str,
    idempotency_key: str,
    order_id: int | None = None,
    not_before: datetime | None = None,
) -> None:
    """Add a message to the outbox inside the caller's write transaction."""
    message = OutboundMessage(
        to=to, body=body, kind=kind, idempotency_key=idempotency_key, order_id=order_id
    )
    if not_before is not None:
        message.next_attempt_at = not_before
    session.add(message)


async def enqueue_once(
    db: Database,
    *,
    to: str,
    body: str,
    kind: str,
    idempotency_key: str,
    not_before: datetime | None = None,
) -> bool:
    """Queue a message unless one with this key ever was; True when this call queued it."""
    try:
        async with db.write() as session:
            query = select(OutboundMessage.id).where(
                col(OutboundMessage.idempotency_key) == idempotency_key
            )
            if (await session.exec(query)).first() is not None:
                return False
            await enqueue(
                session,
                to=to,
                body=body,
                kind=kind,
                idempotency_key=idempotency_key,
                not_before=not_before,
            )
    except IntegrityError:
        return False  # a concurrent call queued it first (the key is unique)
    return True


async def cancel_queued(session: AsyncSession, *, to: str, kind: str) -> None:
    """Cancel the messages of ``kind`` to ``to`` not yet sent (inside a write transaction)."""
    await session.exec(
        update(OutboundMessage)
        .where(
            col(OutboundMessage.to) == to,
            col(OutboundMessage.kind) == kind,
            col(OutboundMessage.status) == "queued",
        )
        .values(status="cancelled")
    )


async def claim_due(db: Database, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
    """Claim up to ``limit`` due messages (queued, or leased to a worker that went silent)."""
    due = or_(
        and_(col(OutboundMessage.status) == "queued", col(OutboundMessage.next_attempt_at) <= now),
        and_(col(OutboundMessage.status) == "sending", col(OutboundMessage.lease_until) < now),
    )
    query = (
        select(OutboundMessage)
        .where(due)
        .order_by(col(OutboundMessage.next_attempt_at), col(OutboundMessage.id))
        .limit(limit)
    )
    if not db.is_sqlite:
        # Concurrent dispatchers each take different rows instead of queueing on the same
        # ones. SQLite needs nothing: db.write() admits one writer at a time.
        query = query.with_for_update(skip_locked=True)
    async with db.write() as session:
        rows = (await session.exec(query)).all()
        for row in rows:
            row.status = "sending"
            row.lease_until = now + lease
            row.attempts += 1
        return [
            OutboxItem(
                id=_int(row.id),
                to=row.to,
                body=row.body,
                kind=row.kind,
                attempts=row.attempts,
                idempotency_key=row.idempotency_key,
            )
            for row in rows
        ]


async def mark_sent(
    db: Database, id: int, provider: str, provider_message_id: str | None, now: datetime
) -> None:
    """Record that the provider accepted the message; it is never sent again."""
    await _update(
        db,
        id,
        status="sent",
        provider=provider,
        provider_message_id=provider_message_id,
        sent_at=now,
        lease_until=None,
    )


async def mark_retry(db: Database, id: int, error: str, next_attempt_at: datetime) -> None:
    """Put the message back in the queue, due again at ``next_attempt_at``."""
    await _update(
        db,
        id,
        status="queued",
        last_error=error[:_ERROR_LENGTH],
        next_attempt_at=next_attempt_at,
        lease_until=None,
    )


async def mark_failed(db: Database, id: int, error: str) -> None:
    """Give up on the message for good."""
    await _update(db, id, status="failed", last_error=error[:_ERROR_LENGTH], lease_until=None)


async def sent_to(db: Database, to: str, after_id: int = 0) -> list[tuple[int, str, datetime]]:
    """(id, body, created_at) of messages handed to a provider for ``to``: a development inbox."""
    query = (
        select(OutboundMessage.id, OutboundMessage.body, OutboundMessage.created_at)
        .where(
            OutboundMessage.to == to,
            col(OutboundMessage.status).in_(_VISIBLE_STATUSES),
            col(OutboundMessage.id) > after_id,
        )
        .order_by(col(OutboundMessage.id))
    )
    async with db.session() as session:
        rows = (await session.exec(query)).all()
    return [(_int(id_), body, created_at) for id_, body, created_at in rows]


async def _update(db: Database, id: int, **values: object) -> None:
    async with db.write() as session:
        await session.exec(
            update(OutboundMessage).where(col(OutboundMessage.id) == id).values(**values)
        )


def _int(value: int | None) -> int:
    # Rows read back from the database always have their primary key.
    assert value is not None
    return value


# Receipt states that end a message's life; any other state ("enroute", "accepted",
# "unknown") is news about a message still on its way and changes nothing.
_DELIVERED = "delivered"
_UNDELIVERED = frozenset({"failed", "rejected", "expired", "undeliverable", "deleted"})


async def mark_delivery(db: Database, provider_message_id: str, state: str, now: datetime) -> bool:
    """Record a delivery receipt for the sent message with this provider id.

    Only a ``sent`` row changes: receipts arrive out of order, and an ENROUTE after a
    DELIVRD (or a second final receipt) must not undo the first final one. True when a row
    changed.
    """
    values: dict[str, object]
    if state == _DELIVERED:
        values = {"status": "delivered", "delivered_at": now}
    elif state in _UNDELIVERED:
        values = {"status": "failed", "last_error": f"receipt: {state}"[:_ERROR_LENGTH]}
    else:
        return False
    async with db.write() as session:
        result = await session.exec(
            update(OutboundMessage)
            .where(
                col(OutboundMessage.provider_message_id) == provider_message_id,
                col(OutboundMessage.status) == "sent",
            )
            .values(**values)
        )
        return bool(result.rowcount)


async def sending_now(db: Database) -> bool:
    """Whether any message is claimed and being sent at this moment."""
    async with db.session() as session:
        query = select(OutboundMessage.id).where(col(OutboundMessage.status) == "sending")
        return (await session.exec(query.limit(1))).first() is not None
