"""The transactional SMS outbox (DESIGN §7): rows written with what they announce, sent later.

A row moves ``queued -> sending -> sent -> delivered``, or back to ``queued`` for a retry, or
to ``failed`` for good. ``sending`` carries a lease: a dispatcher that dies mid-send leaves
its rows to be claimed again once the lease runs out, so a crash loses nothing.

Each part the provider accepted is recorded (``OutboundPart``) with the outcome of the send
that got it accepted, retry and failure included, so a receipt finds its message whatever
the message's status. The parts' receipts combine into the message's: it is ``delivered``
when every part is delivered, ``failed`` as soon as one part fails (a handset cannot show a
message with a part missing), and ``sent`` until then. Only a ``sent`` message settles; one
whose receipts came early settles when ``sent`` is recorded. A final receipt that comes before
any part has its id (Africa's Talking can report a message before its answer to the send is
recorded) is kept (``EarlyReceipt``) for ``EARLY_RECEIPT_TTL``, and taken by the part when it
is recorded. Every provider id is stored and looked up in the form ``stored_id`` gives it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import and_, delete, func, literal_column, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database
from store.models import (
    LAST_ERROR_WIDTH,
    PROVIDER_ID_WIDTH,
    EarlyReceipt,
    OutboundMessage,
    OutboundPart,
)

_VISIBLE_STATUSES = ("sent", "delivered")
_DIGEST = "~sha256:"
_HEAD = PROVIDER_ID_WIDTH - len(_DIGEST) - 64  # characters of the id kept before its digest


def stored_id(provider_message_id: str) -> str:
    """A provider's message id as the outbox stores it, and looks it up: every id passes here.

    An id the column keeps whole (at most ``PROVIDER_ID_WIDTH`` printable characters) is
    itself. Any other, too long or holding what a database may refuse (a NUL), becomes its
    first printable characters and its SHA-256: as wide as the column, the same for the same
    id, so the send is recorded (not sent again after the lease, a paid duplicate) and its
    receipts still find it. Changing this form orphans the receipts of messages in flight.
    """
    if len(provider_message_id) <= PROVIDER_ID_WIDTH and provider_message_id.isprintable():
        return provider_message_id
    digest = hashlib.sha256(provider_message_id.encode("utf-8", "surrogatepass")).hexdigest()
    head = "".join(c for c in provider_message_id[: PROVIDER_ID_WIDTH * 2] if c.isprintable())
    return f"{head[:_HEAD]}{_DIGEST}{digest}"


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
        if await queued(db, idempotency_key):
            return False  # a concurrent call queued it first (the key is unique)
        raise  # another constraint refused the row: not a duplicate, a failure
    return True


async def queued(db: Database, idempotency_key: str) -> bool:
    """Whether a message with this key was ever queued (whatever became of it)."""
    query = select(OutboundMessage.id).where(
        col(OutboundMessage.idempotency_key) == idempotency_key
    )
    async with db.session() as session:
        return (await session.exec(query)).first() is not None


async def cancel_queued(session: AsyncSession, *, to: str, kind: str) -> None:
    """Cancel the messages of ``kind`` to ``to`` not yet sent (inside a write transaction)."""
    await session.exec(
        update(OutboundMessage)
        .where(
            col(OutboundMessage.to) == to,
            col(OutboundMessage.kind) == kind,
            # Written out, not a parameter: the partial index on the queued (migration 0008)
            # serves only a statement that says 'queued' itself, generic plan or not.
            col(OutboundMessage.status) == literal_column("'queued'"),
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
    db: Database,
    id: int,
    provider: str,
    provider_message_id: str | None,
    now: datetime,
    parts: Sequence[str] = (),
) -> None:
    """Record that the provider accepted the message; it is never sent again.

    ``parts``: every part's id in order (default: ``provider_message_id`` alone). Receipts
    that arrived before this settle the message now.
    """
    async with db.write() as session:
        row = await _locked(session, id)
        row.status, row.provider = "sent", provider
        row.provider_message_id = stored_id(provider_message_id) if provider_message_id else None
        row.sent_at, row.lease_until = now, None
        await _record_parts(
            session, id, parts or ([provider_message_id] if provider_message_id else [])
        )
        await _settle(session, row, now)


async def mark_retry(
    db: Database,
    id: int,
    error: str,
    next_attempt_at: datetime,
    parts: Sequence[str] = (),
    *,
    attempted: bool = True,
) -> None:
    """Put the message back in the queue, due again at ``next_attempt_at``.

    ``parts``: the ids of the parts accepted before the failure. ``attempted=False`` when
    the provider did not try (throttled, paused, not connected): the claim is not counted.
    """
    values: dict[str, object] = {
        "status": "queued",
        "last_error": error[:LAST_ERROR_WIDTH],
        "next_attempt_at": next_attempt_at,
        "lease_until": None,
    }
    if not attempted:
        values["attempts"] = col(OutboundMessage.attempts) - 1
    async with db.write() as session:
        await session.exec(
            update(OutboundMessage).where(col(OutboundMessage.id) == id).values(**values)
        )
        await _record_parts(session, id, parts)


async def mark_failed(db: Database, id: int, error: str, parts: Sequence[str] = ()) -> None:
    """Give up on the message for good (``parts``: any accepted before the failure)."""
    async with db.write() as session:
        await session.exec(
            update(OutboundMessage)
            .where(col(OutboundMessage.id) == id)
            .values(status="failed", last_error=error[:LAST_ERROR_WIDTH], lease_until=None)
        )
        await _record_parts(session, id, parts)


async def give_up(db: Database, now: datetime, created_before: datetime) -> list[int]:
    """Fail every message still waiting to be sent that was queued before ``created_before``.

    A message claimed by a live dispatcher (its lease running) is left to it.
    """
    waiting = or_(
        col(OutboundMessage.status) == "queued",
        and_(col(OutboundMessage.status) == "sending", col(OutboundMessage.lease_until) < now),
    )
    query = select(OutboundMessage).where(waiting, col(OutboundMessage.created_at) < created_before)
    if not db.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    async with db.write() as session:
        rows = (await session.exec(query)).all()
        for row in rows:
            row.status, row.lease_until = "failed", None
            row.last_error = f"not sent in time: {row.last_error or 'never tried'}"[
                :LAST_ERROR_WIDTH
            ]
        return [_int(row.id) for row in rows]


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


def _int(value: int | None) -> int:
    # Rows read back from the database always have their primary key.
    assert value is not None
    return value


# Receipt states that end a part's life; any other state ("enroute", "accepted", "unknown")
# is news about a part still on its way and changes nothing.
_DELIVERED = "delivered"
_UNDELIVERED = frozenset({"failed", "rejected", "expired", "undeliverable", "deleted"})

# How long a receipt that came before its part is kept. A receipt can overtake the record of
# its send by at most the dispatcher's lease (the provider's answer time plus a margin, 15 s
# for Africa's Talking): after that the row is sent again under a new id, and the first id
# is never recorded. Ten minutes is forty such leases, room for a slow database and for
# hosts whose clocks disagree; past it the receipt is someone else's message (an account
# shared with another system) or a send that died unrecorded, and is dropped, so the table
# holds at most the unmatched receipts of the last ten minutes.
EARLY_RECEIPT_TTL = timedelta(minutes=10)

ReceiptOutcome = Literal["recorded", "known", "kept", "unknown"]


async def record_receipt(
    db: Database, provider_message_id: str, state: str, now: datetime, *, keep: bool = False
) -> ReceiptOutcome:
    """Record a delivery receipt against the part with this provider id, in any message state.

    ``recorded``: a part took this final state (and its message settled if that was the
    last news it waited for). ``known``: the part exists but the receipt changes nothing: a
    state on the way, or a second final receipt (receipts arrive out of order, and a late
    ENROUTE or UNDELIV must not undo a DELIVRD). ``unknown``: no part has this id (yet).
    ``kept`` (only with ``keep``): no part has this id yet and the receipt is final: it is
    kept for ``EARLY_RECEIPT_TTL`` and applied when a part with this id is recorded.
    """
    key = stored_id(provider_message_id)
    final = state == _DELIVERED or state in _UNDELIVERED
    async with db.write() as session:
        message_ids = await _holders(session, key)
        if not message_ids and keep and final:
            # Waits for a send recording this id right now, and makes it wait for us: either
            # that send sees this receipt kept, or this receipt sees its part.
            await _serialise(session, [key])
            message_ids = await _holders(session, key)
            if not message_ids:
                await _keep(session, key, state, now)
                return "kept"
        if not message_ids:
            return "unknown"
        recorded = False
        for message_id in message_ids if final else ():
            # The message first, then its parts, as mark_sent does: two receipts for two
            # parts of one message then settle it one after the other, and never deadlock.
            row = await _locked(session, message_id)
            result = await session.exec(
                update(OutboundPart)
                .where(
                    col(OutboundPart.message_id) == message_id,
                    col(OutboundPart.provider_message_id) == key,
                    col(OutboundPart.state).is_(None),
                )
                .values(state=state, receipt_at=now)
            )
            if result.rowcount:
                recorded = True
                await _settle(session, row, now)
        return "recorded" if recorded else "known"


async def mark_delivery(db: Database, provider_message_id: str, state: str, now: datetime) -> bool:
    """Record a delivery receipt (see ``record_receipt``); True when it was recorded."""
    return await record_receipt(db, provider_message_id, state, now) == "recorded"


async def _holders(session: AsyncSession, key: str) -> list[int]:
    """The messages with a part under the stored id ``key``."""
    query = select(OutboundPart.message_id).where(col(OutboundPart.provider_message_id) == key)
    return sorted(set((await session.exec(query)).all()))


async def _keep(session: AsyncSession, key: str, state: str, now: datetime) -> None:
    """Keep a final receipt for a part not recorded yet; the first one for an id stands.

    Each one kept drops those older than ``EARLY_RECEIPT_TTL``, so the table never holds
    more than the receipts of that long: rows another transaction holds (a send taking its
    receipt, another receipt dropping them too) are left to it rather than waited for.
    """
    expired = select(EarlyReceipt.id).where(col(EarlyReceipt.received_at) < now - EARLY_RECEIPT_TTL)
    if _is_postgresql(session):
        expired = expired.with_for_update(skip_locked=True)
    await session.exec(delete(EarlyReceipt).where(col(EarlyReceipt.id).in_(expired)))
    query = select(EarlyReceipt.id).where(col(EarlyReceipt.provider_message_id) == key)
    if (await session.exec(query)).first() is None:
        session.add(EarlyReceipt(provider_message_id=key, state=state, received_at=now))


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _serialise(session: AsyncSession, keys: Sequence[str]) -> None:
    """Hold, until this transaction ends, a lock on each stored id in ``keys``.

    A receipt that finds no part, and a send that records one, take it before they look for
    each other's row, so one of them always sees the other's. SQLite needs nothing:
    ``db.write()`` admits one writer at a time.
    """
    if not _is_postgresql(session):
        return
    locks = [
        func.pg_advisory_xact_lock(
            int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        )
        for key in sorted(set(keys))  # in one order everywhere: no deadlock between two sends
    ]
    await session.exec(select(*locks))


async def _locked(session: AsyncSession, id: int) -> OutboundMessage:
    row = await session.get(OutboundMessage, id, with_for_update=True)
    assert row is not None, id  # rows are never deleted
    return row


async def _record_parts(session: AsyncSession, message_id: int, ids: Sequence[str]) -> None:
    """Make ``ids`` the message's parts, numbered in order, keeping what receipts said.

    A part recorded by an earlier attempt that this one did not resume (its sender died)
    is dropped: the message the handset puts together is this attempt's. A new part takes
    the receipt that came before it, if one did. No ids: no news.
    """
    if not ids:
        return
    ids = [stored_id(id_) for id_ in ids]
    query = select(OutboundPart).where(col(OutboundPart.message_id) == message_id)
    known = {part.number: part for part in (await session.exec(query)).all()}
    stale = [
        part.number
        for number, part in known.items()
        if number > len(ids) or part.provider_message_id != ids[number - 1]
    ]
    if stale:
        await session.exec(
            delete(OutboundPart).where(
                col(OutboundPart.message_id) == message_id, col(OutboundPart.number).in_(stale)
            )
        )
    new = {
        number: id_
        for number, id_ in enumerate(ids, start=1)
        if number in stale or number not in known
    }
    early = await _early_receipts(session, list(new.values()))
    for number, provider_message_id in new.items():
        receipt = early.get(provider_message_id)
        session.add(
            OutboundPart(
                message_id=message_id,
                number=number,
                provider_message_id=provider_message_id,
                state=receipt.state if receipt else None,
                receipt_at=receipt.received_at if receipt else None,
            )
        )
    await session.flush()


async def _early_receipts(session: AsyncSession, keys: Sequence[str]) -> dict[str, EarlyReceipt]:
    """Take (read and delete) the receipts kept for parts with these stored ids."""
    if not keys:
        return {}
    await _serialise(session, keys)
    query = select(EarlyReceipt).where(col(EarlyReceipt.provider_message_id).in_(set(keys)))
    early = {receipt.provider_message_id: receipt for receipt in (await session.exec(query)).all()}
    if early:
        await session.exec(
            delete(EarlyReceipt).where(col(EarlyReceipt.provider_message_id).in_(list(early)))
        )
    return early


async def _settle(session: AsyncSession, row: OutboundMessage, now: datetime) -> None:
    """Give a ``sent`` message the state its parts' receipts add up to, once they do."""
    if row.status != "sent":
        return  # not sent yet (its parts may not all exist), or settled already
    query = select(OutboundPart).where(col(OutboundPart.message_id) == row.id)
    parts = sorted((await session.exec(query)).all(), key=lambda part: part.number)
    failed = [part for part in parts if part.state in _UNDELIVERED]
    if failed:
        where = f" (part {failed[0].number} of {len(parts)})" if len(parts) > 1 else ""
        row.status = "failed"
        row.last_error = f"receipt: {failed[0].state}{where}"[:LAST_ERROR_WIDTH]
    elif parts and all(part.state == _DELIVERED for part in parts):
        row.status, row.delivered_at = "delivered", now


async def sending_now(db: Database) -> bool:
    """Whether any message is claimed and being sent at this moment."""
    async with db.session() as session:
        query = select(OutboundMessage.id).where(col(OutboundMessage.status) == "sending")
        return (await session.exec(query.limit(1))).first() is not None
