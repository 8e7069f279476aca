from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col

from store.db import Database
from store.models import PROVIDER_ID_WIDTH, EarlyReceipt, OutboundMessage, OutboundPart, utcnow
from store.outbox import (
    EARLY_RECEIPT_TTL,
    claim_due,
    enqueue,
    give_up,
    mark_delivery,
    mark_failed,
    mark_retry,
    mark_sent,
    record_receipt,
    sent_to,
    stored_id,
)
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


async def _parts(db: Database, message_id: int) -> list[tuple[int, str, str | None]]:
    found = [p for p in await rows(db, OutboundPart) if p.message_id == message_id]
    return sorted((p.number, p.provider_message_id, p.state) for p in found)


async def test_mark_retry_of_a_send_not_tried_gives_the_attempt_back(db: Database) -> None:
    now = await _enqueue(db, "hello")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)

    await mark_retry(db, item.id, "throttled", now, attempted=False)

    assert (await _row(db, item.id)).attempts == 0
    [again] = await claim_due(db, now, 10, LEASE)
    assert again.attempts == 1


async def test_a_message_in_parts_is_delivered_when_every_part_is(db: Database) -> None:
    now = await _enqueue(db, "two parts")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)
    await mark_sent(db, item.id, "smpp", "A", now, ["A", "B"])
    assert await _parts(db, item.id) == [(1, "A", None), (2, "B", None)]

    assert await record_receipt(db, "B", "delivered", now) == "recorded"
    assert (await _row(db, item.id)).status == "sent"  # part 1 may still fail
    assert await record_receipt(db, "A", "enroute", now) == "known"
    assert await record_receipt(db, "A", "delivered", now + LEASE) == "recorded"

    row = await _row(db, item.id)
    assert (row.status, row.delivered_at) == ("delivered", now + LEASE)
    assert await record_receipt(db, "A", "delivered", now) == "known"  # redelivered: no news
    assert await record_receipt(db, "Z", "delivered", now) == "unknown"


async def test_a_message_in_parts_fails_when_any_part_fails_and_stays_failed(
    db: Database,
) -> None:
    now = await _enqueue(db, "two parts")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)
    await mark_sent(db, item.id, "smpp", "A", now, ["A", "B"])

    assert await mark_delivery(db, "B", "undeliverable", now)
    assert await mark_delivery(db, "A", "delivered", now)  # recorded on its part ...

    row = await _row(db, item.id)  # ... but one missing part loses the message
    assert (row.status, row.last_error, row.delivered_at) == (
        "failed",
        "receipt: undeliverable (part 2 of 2)",
        None,
    )


async def test_a_receipt_for_a_part_of_a_queued_message_counts_once_it_is_sent(
    db: Database,
) -> None:
    now = await _enqueue(db, "two parts")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)
    await mark_retry(db, item.id, "connection lost (part 2 of 2)", now, ["A"])  # the link fell

    assert await record_receipt(db, "A", "delivered", now) == "recorded"
    assert (await _row(db, item.id)).status == "queued"
    [again] = await claim_due(db, now, 10, LEASE)
    await mark_sent(db, again.id, "smpp", "A", now, ["A", "B"])  # resumed at part 2
    assert (await _row(db, item.id)).status == "sent"
    assert await record_receipt(db, "B", "delivered", now) == "recorded"

    assert (await _row(db, item.id)).status == "delivered"
    assert await _parts(db, item.id) == [(1, "A", "delivered"), (2, "B", "delivered")]


async def test_receipts_that_came_before_sent_settle_the_message_at_sent(db: Database) -> None:
    now = await _enqueue(db, "two parts")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)
    await mark_retry(db, item.id, "timeout (part 2 of 2)", now, ["A"])
    await record_receipt(db, "A", "rejected", now)
    [again] = await claim_due(db, now, 10, LEASE)

    await mark_sent(db, again.id, "smpp", "A", now, ["A", "B"])

    row = await _row(db, item.id)
    assert (row.status, row.last_error) == ("failed", "receipt: rejected (part 1 of 2)")


async def test_a_part_of_an_attempt_that_was_not_resumed_is_replaced(db: Database) -> None:
    now = await _enqueue(db, "two parts")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)
    await mark_retry(db, item.id, "connection lost (part 2 of 2)", now, ["A"])
    [again] = await claim_due(db, now, 10, LEASE)  # another process: sends it whole again

    await mark_sent(db, again.id, "smpp", "C", now, ["C", "D"])

    assert await _parts(db, item.id) == [(1, "C", None), (2, "D", None)]
    assert await record_receipt(db, "A", "delivered", now) == "unknown"


async def test_a_permanent_failure_keeps_the_parts_accepted_before_it(db: Database) -> None:
    now = await _enqueue(db, "two parts")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)

    await mark_failed(db, item.id, "SMSC refused (part 2 of 2)", ["A"])

    assert await record_receipt(db, "A", "delivered", now) == "recorded"
    assert (await _row(db, item.id)).status == "failed"


async def test_give_up_fails_old_waiting_messages_and_leaves_live_claims_alone(
    db: Database,
) -> None:
    now = await _enqueue(db, "queued", "claimed", "crashed", "sent")
    claimed = {i.body: i.id for i in await claim_due(db, now, limit=10, lease=LEASE)}
    await mark_retry(db, claimed["queued"], "HTTP 503", now + timedelta(hours=1))
    await mark_sent(db, claimed["sent"], "log", "log-1", now)
    async with db.write() as session:  # the worker that claimed "crashed" died long ago
        await session.exec(
            update(OutboundMessage)
            .where(col(OutboundMessage.id) == claimed["crashed"])
            .values(lease_until=now - timedelta(minutes=1))
        )

    failed = await give_up(db, now, created_before=now)

    assert sorted(failed) == sorted([claimed["queued"], claimed["crashed"]])
    statuses = {body: (await _row(db, id_)).status for body, id_ in claimed.items()}
    assert statuses == {
        "queued": "failed",
        "claimed": "sending",
        "crashed": "failed",
        "sent": "sent",
    }
    assert (await _row(db, claimed["queued"])).last_error == "not sent in time: HTTP 503"
    assert await give_up(db, now, created_before=now - timedelta(hours=1)) == []


async def test_receipts_for_two_parts_at_once_settle_the_message(db: Database) -> None:
    # Each receipt reads the other part's state: without the message row locked first, two
    # transactions on PostgreSQL would each see the other part still waiting, and neither
    # would settle the message.
    now = await _enqueue(db, *(f"two parts {n}" for n in range(10)))
    items = await claim_due(db, now, limit=10, lease=LEASE)
    for item in items:
        await mark_sent(db, item.id, "smpp", f"{item.id}A", now, [f"{item.id}A", f"{item.id}B"])

    outcomes = await asyncio.gather(
        *(record_receipt(db, f"{i.id}{p}", "delivered", now) for i in items for p in "AB")
    )

    assert set(outcomes) == {"recorded"}
    assert {(await _row(db, item.id)).status for item in items} == {"delivered"}


# --- provider ids the column cannot keep whole ---------------------------------------------

LONG_ID = "ATXid_" + "7" * 144  # 150 characters


def test_stored_id_is_the_id_itself_when_the_column_keeps_it_whole() -> None:
    assert stored_id("ATXid_1") == "ATXid_1"
    assert stored_id("x" * PROVIDER_ID_WIDTH) == "x" * PROVIDER_ID_WIDTH


def test_stored_id_of_a_long_or_unstorable_id_is_a_bounded_digest_the_same_each_time() -> None:
    twin = LONG_ID[:-1] + "8"  # the same first 149 characters
    forms = [stored_id(LONG_ID), stored_id(twin), stored_id("AT\x00X"), stored_id("\ud800")]
    assert all(len(form) <= PROVIDER_ID_WIDTH and form.isprintable() for form in forms)
    assert len(set(forms)) == 4
    assert stored_id(LONG_ID) == forms[0] and stored_id(forms[0]) == forms[0]
    assert forms[0].startswith("ATXid_777") and forms[2].startswith("ATX~sha256:")


async def test_a_long_or_unstorable_id_is_recorded_and_its_receipts_find_it(db: Database) -> None:
    now = await _enqueue(db, "long", "nul")
    claimed = {i.body: i.id for i in await claim_due(db, now, limit=10, lease=LEASE)}

    await mark_sent(db, claimed["long"], "africastalking", LONG_ID, now)
    await mark_sent(db, claimed["nul"], "smpp", "A\x00", now, ["A\x00", "B" * 200])

    assert (await _row(db, claimed["long"])).provider_message_id == stored_id(LONG_ID)
    assert await record_receipt(db, LONG_ID, "delivered", now) == "recorded"
    assert await record_receipt(db, "A\x00", "delivered", now) == "recorded"
    assert await record_receipt(db, "B" * 200, "delivered", now) == "recorded"
    assert {(await _row(db, id_)).status for id_ in claimed.values()} == {"delivered"}


# --- receipts that come before their part --------------------------------------------------


async def test_an_early_final_receipt_is_kept_and_settles_the_message_when_sent(
    db: Database,
) -> None:
    now = await _enqueue(db, "hello")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)

    assert await record_receipt(db, "AT-1", "enroute", now, keep=True) == "unknown"  # no news
    assert await record_receipt(db, "AT-1", "delivered", now, keep=True) == "kept"
    assert (await _row(db, item.id)).status == "sending"
    await mark_sent(db, item.id, "africastalking", "AT-1", now + timedelta(seconds=1))

    row = await _row(db, item.id)
    assert (row.status, row.delivered_at) == ("delivered", now + timedelta(seconds=1))
    assert await _parts(db, item.id) == [(1, "AT-1", "delivered")]
    assert await rows(db, EarlyReceipt) == []  # applied: gone
    assert await record_receipt(db, "AT-1", "failed", now, keep=True) == "known"


async def test_the_first_early_final_receipt_stands(db: Database) -> None:
    now = await _enqueue(db, "hello")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)

    assert await record_receipt(db, "AT-1", "rejected", now, keep=True) == "kept"
    assert await record_receipt(db, "AT-1", "delivered", now, keep=True) == "kept"
    await mark_sent(db, item.id, "africastalking", "AT-1", now)

    row = await _row(db, item.id)
    assert (row.status, row.last_error, row.delivered_at) == ("failed", "receipt: rejected", None)


async def test_an_early_receipt_is_kept_only_when_asked(db: Database) -> None:
    now = await _enqueue(db, "hello")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)

    # SMPP asks the SMSC to deliver it again instead (gateway.smpp.receipts).
    assert await record_receipt(db, "0000000A", "delivered", now) == "unknown"
    await mark_sent(db, item.id, "smpp", "0000000A", now)

    assert (await _row(db, item.id)).status == "sent"


async def test_an_early_receipt_whose_part_never_comes_is_dropped_after_its_ttl(
    db: Database,
) -> None:
    now = await _enqueue(db, "hello")
    [item] = await claim_due(db, now, limit=10, lease=LEASE)
    assert await record_receipt(db, "AT-lost", "delivered", now, keep=True) == "kept"
    within = now + EARLY_RECEIPT_TTL
    assert await record_receipt(db, "AT-2", "delivered", within, keep=True) == "kept"
    assert {r.provider_message_id for r in await rows(db, EarlyReceipt)} == {"AT-lost", "AT-2"}

    later = within + timedelta(seconds=1)
    assert await record_receipt(db, "AT-3", "delivered", later, keep=True) == "kept"

    assert {r.provider_message_id for r in await rows(db, EarlyReceipt)} == {"AT-2", "AT-3"}
    await mark_sent(db, item.id, "africastalking", "AT-lost", later)
    assert (await _row(db, item.id)).status == "sent"  # its receipt was dropped


async def test_early_receipts_racing_their_sends_all_settle(db: Database) -> None:
    # Each receipt finds no part while its send is being recorded: one of the two must see
    # the other's row, or the receipt is kept after the send looked for it and never applies.
    now = await _enqueue(db, *(f"race {n}" for n in range(40)))
    items = await claim_due(db, now, limit=40, lease=LEASE)

    async def receipt(id_: int) -> str:
        return await record_receipt(db, f"AT-{id_}", "delivered", now, keep=True)

    outcomes = await asyncio.gather(
        *(
            task
            for item in items
            for task in (mark_sent(db, item.id, "at", f"AT-{item.id}", now), receipt(item.id))
        )
    )

    assert set(outcomes[1::2]) <= {"recorded", "kept"}
    assert {(await _row(db, item.id)).status for item in items} == {"delivered"}
    assert await rows(db, EarlyReceipt) == []
