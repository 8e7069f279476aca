from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col

from store.db import Database
from store.models import OutboundMessage, utcnow
from store.outbox import claim_due, enqueue, mark_failed, mark_retry, mark_sent, sent_to
from tests.store.factories import ALICE, BOB, rows

LEASE = timedelta(seconds=30)


async def _enqueue(db: Database, *bodies: str, to: str = ALICE) -> datetime:
    """Queue messages; a clock reading at which they are all due."""
    async with db.write() as session:
        for body in bodies:
            await enqueue(session, to=to, body=body, kind="test", idempotency_key=f"{to}:{body}")
    return utcnow() + timedelta(seconds=1)


async def _row(db: Database, id: int) -> OutboundMessage:
    async with db.session() as session:
        row = await session.get(OutboundMessage, id)
    assert row is not None
    return row


async def test_claim_due_leases_queued_messages(db: Database) -> None:
    now = await _enqueue(db, "hello")

    [item] = await claim_due(db, now, limit=10, lease=LEASE)

    assert (item.to, item.body, item.kind, item.attempts) == (ALICE, "hello", "test", 1)
    assert item.idempotency_key == f"{ALICE}:hello"
    row = await _row(db, item.id)
    assert (row.status, row.lease_until, row.attempts) == ("sending", now + LEASE, 1)


async def test_claim_due_skips_messages_not_yet_due(db: Database) -> None:
    await _enqueue(db, "hello")

    assert await claim_due(db, utcnow() - timedelta(minutes=5), limit=10, lease=LEASE) == []


async def test_claim_due_respects_limit_and_due_order(db: Database) -> None:
    now = await _enqueue(db, "a", "b", "c")
    [a, b, c] = await rows(db, OutboundMessage)
    async with db.write() as session:  # "c" has waited longest
        await session.exec(
            update(OutboundMessage)
            .where(col(OutboundMessage.id) == c.id)
            .values(next_attempt_at=now - timedelta(hours=1))
        )

    claimed = await claim_due(db, now, limit=2, lease=LEASE)

    assert [i.body for i in claimed] == ["c", "a"]
    assert [i.body for i in await claim_due(db, now, limit=2, lease=LEASE)] == ["b"]


async def test_claim_due_reclaims_only_after_the_lease_runs_out(db: Database) -> None:
    now = await _enqueue(db, "hello")
    [first] = await claim_due(db, now, limit=10, lease=LEASE)

    assert await claim_due(db, now + LEASE - timedelta(seconds=1), 10, LEASE) == []
    [again] = await claim_due(db, now + LEASE + timedelta(seconds=1), 10, LEASE)

    assert again.id == first.id
    assert again.attempts == 2


async def test_mark_sent_records_the_provider_and_stops_sending(db: Database) -> None:
    now = await _enqueue(db, "hello")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)

    await mark_sent(db, item.id, "log", "msg-42", now)

    row = await _row(db, item.id)
    assert (row.status, row.provider, row.provider_message_id) == ("sent", "log", "msg-42")
    assert (row.sent_at, row.lease_until) == (now, None)
    assert await claim_due(db, now + timedelta(days=1), 10, LEASE) == []


async def test_mark_retry_requeues_for_later(db: Database) -> None:
    now = await _enqueue(db, "hello")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)
    later = now + timedelta(minutes=2)

    await mark_retry(db, item.id, "timeout " * 100, later)

    row = await _row(db, item.id)
    assert (row.status, row.next_attempt_at, row.lease_until) == ("queued", later, None)
    assert row.last_error is not None and row.last_error.startswith("timeout")
    assert len(row.last_error) == 300
    assert await claim_due(db, later - timedelta(seconds=1), 10, LEASE) == []
    [again] = await claim_due(db, later, 10, LEASE)
    assert (again.id, again.attempts) == (item.id, 2)


async def test_mark_failed_is_permanent(db: Database) -> None:
    now = await _enqueue(db, "hello")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)

    await mark_failed(db, item.id, "invalid number")

    row = await _row(db, item.id)
    assert (row.status, row.last_error, row.lease_until) == ("failed", "invalid number", None)
    assert await claim_due(db, now + timedelta(days=1), 10, LEASE) == []


async def test_sent_to_lists_only_sent_messages_for_the_number(db: Database) -> None:
    now = await _enqueue(db, "one", "two", "three", "unsent")
    await _enqueue(db, "bobs", to=BOB)
    claimed = {i.body: i.id for i in await claim_due(db, now, limit=10, lease=LEASE)}
    for body in ("one", "two", "three", "bobs"):
        await mark_sent(db, claimed[body], "log", None, now)
    async with db.write() as session:  # a delivery report counts as sent too
        await session.exec(
            update(OutboundMessage)
            .where(col(OutboundMessage.id) == claimed["two"])
            .values(status="delivered")
        )

    inbox = await sent_to(db, ALICE)

    assert [(i, body) for i, body, _ in inbox] == [
        (claimed["one"], "one"),
        (claimed["two"], "two"),
        (claimed["three"], "three"),
    ]
    assert all(isinstance(created, datetime) for _, _, created in inbox)
    assert [body for _, body, _ in await sent_to(db, ALICE, after_id=claimed["one"])] == [
        "two",
        "three",
    ]


async def test_claim_due_concurrent_claimers_never_share_a_row(db: Database) -> None:
    now = await _enqueue(db, *(f"m{i}" for i in range(20)))

    batches = await asyncio.gather(*(claim_due(db, now, 5, LEASE) for _ in range(4)))

    ids = [item.id for batch in batches for item in batch]
    assert len(ids) == len(set(ids)) == 20
    assert all(item.attempts == 1 for batch in batches for item in batch)
