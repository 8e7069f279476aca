"""Shop cards and their ledger against the real database, SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import col, select

from menus.ports import CardDeclined, OrderPlaced, PinChecked
from store import cards, lifecycle
from store.db import Database
from store.errors import Conflict, StoreError
from store.models import Card, LedgerEntry, LedgerMovement, Order, OutboundMessage
from store.orders import place_order
from tests.store.factories import (
    ALICE,
    BOB,
    count,
    first_zone,
    order_request,
    product_by_sku,
    rows,
    set_product,
)

PIN = "4821"
T0 = datetime(2026, 11, 30, 9, 0)


def render_topup(card: str, amount: int, balance: int, lang: str) -> str:
    return f"topup {card} {amount} {balance} {lang}"


def render_locked(card: str, minutes: int, lang: str) -> str:
    return f"locked {card} {minutes} {lang}"


def render_status(status: str, code: str, lang: str) -> str:
    return f"{status} {code}"


def render_refund(code: str, amount: int, balance: int, card: str, lang: str) -> str:
    return f"refund {code} {amount} left {balance} card {card}"


def render_placed(placed: OrderPlaced, lang: str) -> str:
    return f"placed {placed.code} {placed.total} left {placed.balance} card {placed.card}"


async def card_row(db: Database, number: str) -> Card:
    async with db.session() as session:
        return (await session.exec(select(Card).where(col(Card.number) == number))).one()


async def funded(db: Database, amount: int, msisdn: str = ALICE, ref: str = "T-1") -> Card:
    issued = await cards.issue_card(db, msisdn, PIN)
    if amount:
        await cards.top_up(db, issued.number, amount, ref, actor="staff", render_sms=render_topup)
    return await card_row(db, issued.number)


async def card_order(
    db: Database, key: str, card: Card, *, msisdn: str = ALICE, quantity: int = 1
) -> OrderPlaced | CardDeclined:
    socks = await product_by_sku(db, "CL-SOCKS")
    zone = await first_zone(db)
    assert socks.id and zone.id and card.id
    request = dataclasses.replace(
        order_request(key, [(socks.id, quantity)], zone.id, msisdn=msisdn),
        payment="card",
        card=card.id,
    )
    result = await place_order(db, request, render_placed)
    assert not isinstance(result, tuple)
    return result  # type: ignore[return-value]


async def order_total(db: Database, quantity: int = 1) -> int:
    socks = await product_by_sku(db, "CL-SOCKS")
    zone = await first_zone(db)
    return socks.price * quantity + zone.fee


# --- PINs -----------------------------------------------------------------------------------------


async def test_cards_keep_a_salted_scrypt_digest_never_the_pin(db: Database) -> None:
    one = await funded(db, 0)
    two = await funded(db, 0, msisdn=BOB)
    assert PIN not in one.pin_hash and PIN not in one.pin_salt
    assert one.pin_salt != two.pin_salt and one.pin_hash != two.pin_hash  # same PIN, own salt
    assert one.pin_hash == cards.digest(PIN, one.pin_salt)
    assert len(one.number) == 12 and one.number.isdigit() and one.balance == 0


@pytest.mark.parametrize("pin", ["123", "1234567", "12a4", "١٢٣٤", "12²4", "", "1234\x00"])
async def test_cards_refuse_a_pin_that_is_not_4_to_6_ascii_digits(db: Database, pin: str) -> None:
    with pytest.raises(StoreError):
        await cards.issue_card(db, ALICE, pin)
    assert await count(db, Card) == 0


async def check(db: Database, card: Card, pin: str, now: datetime = T0) -> PinChecked:
    assert card.id is not None
    return await cards.check_pin(
        db, card.msisdn, card.id, pin, now=now, lock_for=timedelta(minutes=15), lang="en",
        render_locked=render_locked,
    )  # fmt: skip


async def test_cards_list_shows_a_locked_card_locked_until_its_lock_runs_out(db: Database) -> None:
    card = await funded(db, 700)
    for wrong in ("0000", "1111", "2222"):
        await check(db, card, wrong)
    [listed] = await cards.list_cards(db, ALICE, T0 + timedelta(minutes=14))
    assert (listed.id, listed.number, listed.balance, listed.locked) == (
        card.id, card.number, 700, True,
    )  # fmt: skip
    [listed] = await cards.list_cards(db, ALICE, T0 + timedelta(minutes=15, seconds=1))
    assert not listed.locked
    assert await cards.list_cards(db, BOB, T0) == ()


async def test_cards_third_wrong_pin_locks_the_card_and_queues_one_sms(db: Database) -> None:
    card = await funded(db, 0)
    assert await check(db, card, "0000") == PinChecked(ok=False, left=2)
    assert await check(db, card, "1111") == PinChecked(ok=False, left=1)
    assert await check(db, card, "2222") == PinChecked(ok=False, locked=True, minutes=15)
    # Locked: even the right PIN is refused, and counts for nothing.
    later = T0 + timedelta(minutes=14, seconds=1)
    assert await check(db, card, PIN, later) == PinChecked(ok=False, locked=True, minutes=1)
    sms = [m for m in await rows(db, OutboundMessage) if m.kind == "card_locked"]
    assert [(m.to, m.body) for m in sms] == [(ALICE, f"locked {card.number[-4:]} 15 en")]
    # The lock runs out: the right PIN works, and the count starts again.
    assert await check(db, card, PIN, T0 + timedelta(minutes=15)) == PinChecked(ok=True)
    assert (await card_row(db, card.number)).failed_pins == 0


async def test_cards_right_pin_resets_the_count_of_wrong_ones(db: Database) -> None:
    card = await funded(db, 0)
    await check(db, card, "0000")
    await check(db, card, "0001")
    assert await check(db, card, PIN) == PinChecked(ok=True)
    assert await check(db, card, "0002") == PinChecked(ok=False, left=2)  # not locked


async def test_cards_pin_of_someone_elses_card_is_never_checked(db: Database) -> None:
    card = await funded(db, 0)
    assert card.id is not None
    answer = await cards.check_pin(
        db, BOB, card.id, PIN, now=T0, lock_for=timedelta(minutes=15), lang="en",
        render_locked=render_locked,
    )  # fmt: skip
    assert answer == PinChecked(ok=False)
    assert (await card_row(db, card.number)).failed_pins == 0


async def test_cards_change_pin_takes_the_new_one_only_for_the_holder(db: Database) -> None:
    card = await funded(db, 0)
    assert card.id is not None
    assert not await cards.change_pin(db, BOB, card.id, "9999")
    assert await cards.change_pin(db, ALICE, card.id, "735190")
    assert await check(db, card, PIN) == PinChecked(ok=False, left=2)
    assert await check(db, card, "735190") == PinChecked(ok=True)


# --- top-ups ------------------------------------------------------------------------------------


async def test_cards_repeated_counter_reference_is_one_top_up(db: Database) -> None:
    card = await funded(db, 0)
    first = await cards.top_up(db, card.number, 5000, "C7-0042", actor="staff:kim",
                               render_sms=render_topup)  # fmt: skip
    again = await cards.top_up(db, card.number, 5000, "C7-0042", actor="staff:kim",
                               render_sms=render_topup)  # fmt: skip
    assert (first.balance, first.repeated) == (5000, False)
    assert (again.balance, again.repeated) == (5000, True)
    assert (await card_row(db, card.number)).balance == 5000
    assert await count(db, LedgerMovement) == 1 and await count(db, LedgerEntry) == 2
    assert [m.body for m in await rows(db, OutboundMessage)] == [
        f"topup {card.number[-4:]} 5000 5000 en"
    ]
    with pytest.raises(Conflict):  # the same reference for another amount is a mistake
        await cards.top_up(db, card.number, 7000, "C7-0042", actor="staff",
                           render_sms=render_topup)  # fmt: skip


async def test_cards_racing_top_ups_with_one_reference_credit_once(db: Database) -> None:
    card = await funded(db, 0)
    results = await asyncio.gather(
        *(
            cards.top_up(db, card.number, 3000, "RACE-1", actor="staff", render_sms=render_topup)
            for _ in range(10)
        )
    )
    assert sum(not r.repeated for r in results) == 1
    assert (await card_row(db, card.number)).balance == 3000
    assert (await cards.prove(db)).holds


async def test_cards_top_up_refuses_nonsense_and_changes_nothing(db: Database) -> None:
    card = await funded(db, 0)
    for amount, ref in [(0, "A"), (-5, "A"), (2**31, "A"), (10, ""), (10, "x" * 41)]:
        with pytest.raises(StoreError):
            await cards.top_up(db, card.number, amount, ref, actor="s", render_sms=render_topup)
    with pytest.raises(cards.UnknownCard):
        await cards.top_up(db, "999999999999", 10, "A", actor="s", render_sms=render_topup)
    await cards.top_up(db, card.number, 2**31 - 1, "MAX", actor="s", render_sms=render_topup)
    with pytest.raises(Conflict):  # no balance past what the column holds
        await cards.top_up(db, card.number, 1, "ONE", actor="s", render_sms=render_topup)
    assert (await card_row(db, card.number)).balance == 2**31 - 1
    assert await count(db, LedgerMovement) == 1


# --- paying -------------------------------------------------------------------------------------


async def test_cards_payment_and_order_are_one_transaction(db: Database) -> None:
    from store.seed import seed

    await seed(db)
    total = await order_total(db)
    card = await funded(db, total + 50)
    placed = await card_order(db, "k1", card)
    assert isinstance(placed, OrderPlaced) and placed.balance == 50
    assert placed.card == card.number[-4:]
    # Too little left: no order, no payment, no stock taken, no SMS.
    socks = await product_by_sku(db, "CL-SOCKS")
    declined = await card_order(db, "k2", card)
    assert declined == CardDeclined(balance=50)
    assert await count(db, Order) == 1
    assert (await product_by_sku(db, "CL-SOCKS")).stock == socks.stock
    sms = [m.body for m in await rows(db, OutboundMessage) if m.kind == "order_placed"]
    assert sms == [f"placed {placed.code} {total} left 50 card {card.number[-4:]}"]
    movements = await rows(db, LedgerMovement)
    assert [(m.kind, m.amount) for m in movements] == [("topup", total + 50), ("payment", total)]
    assert (await cards.prove(db)).holds


async def test_cards_replayed_payment_debits_once(db: Database) -> None:
    from store.seed import seed

    await seed(db)
    total = await order_total(db)
    card = await funded(db, total * 3)
    results = await asyncio.gather(*(card_order(db, "same-key", card) for _ in range(8)))
    assert {r.code for r in results if isinstance(r, OrderPlaced)} == {results[0].code}  # type: ignore[union-attr]
    assert (await card_row(db, card.number)).balance == total * 2
    assert await count(db, Order) == 1


async def test_cards_500_concurrent_payments_with_enough_for_10_make_10_orders(
    seeded_db: Database,
) -> None:
    db = seeded_db
    socks = await product_by_sku(db, "CL-SOCKS")
    assert socks.id is not None
    await set_product(db, socks.id, stock=1000)
    total = await order_total(db)
    card = await funded(db, total * 10)
    results = await asyncio.gather(*(card_order(db, f"k{i}", card) for i in range(500)))
    placed = [r for r in results if isinstance(r, OrderPlaced)]
    assert len(placed) == 10
    assert all(isinstance(r, CardDeclined) for r in results if r not in placed)
    assert sorted(p.balance for p in placed if p.balance is not None) == [
        total * n for n in range(10)
    ]  # each payment saw the balance the one before it left: never below zero
    assert (await card_row(db, card.number)).balance == 0
    assert await count(db, Order) == 10
    assert (await product_by_sku(db, "CL-SOCKS")).stock == 1000 - 10
    proof = await cards.prove(db)
    assert proof.holds and proof.entries == 2 + 10 * 2


async def test_cards_balance_below_zero_is_refused_by_the_database_itself(db: Database) -> None:
    await funded(db, 100)
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await session.exec(text("UPDATE card SET balance = -1"))  # type: ignore[call-overload]


async def test_cards_ledger_rows_are_never_updated_or_deleted(db: Database) -> None:
    await funded(db, 100)
    for statement in ("UPDATE ledgerentry SET amount = 0", "DELETE FROM ledgerentry",
                      "UPDATE ledgermovement SET amount = 0", "DELETE FROM ledgermovement"):  # fmt: skip
        with pytest.raises((IntegrityError, DBAPIError)):
            async with db.write() as session:
                await session.exec(text(statement))  # type: ignore[call-overload]
    assert await count(db, LedgerEntry) == 2


# --- refunds ------------------------------------------------------------------------------------


async def cancel(db: Database, code: str, actor: str, msisdn: str | None = None) -> bool:
    try:
        await lifecycle.change_status(
            db, code, "cancelled", actor=actor, msisdn=msisdn, render_sms=render_status,
            render_refund=render_refund,
        )  # fmt: skip
    except (lifecycle.IllegalTransition, lifecycle.UnknownOrder):
        return False
    return True


async def test_cards_racing_cancels_refund_once(seeded_db: Database) -> None:
    db = seeded_db
    total = await order_total(db)
    card = await funded(db, total)
    placed = await card_order(db, "k1", card)
    assert isinstance(placed, OrderPlaced)
    assert (await card_row(db, card.number)).balance == 0
    outcomes = await asyncio.gather(
        *(cancel(db, placed.code, "staff:kim") for _ in range(5)),
        *(cancel(db, placed.code, f"customer:{ALICE}", ALICE) for _ in range(5)),
        *(cancel(db, placed.code, "admin") for _ in range(5)),
    )
    assert outcomes.count(True) == 1
    assert (await card_row(db, card.number)).balance == total
    kinds = [m.kind for m in await rows(db, LedgerMovement)]
    assert kinds == ["topup", "payment", "refund"]
    refunds = [m.body for m in await rows(db, OutboundMessage) if m.kind == "order_cancelled"]
    assert refunds == [f"refund {placed.code} {total} left {total} card {card.number[-4:]}"]
    assert (await cards.prove(db)).holds


async def test_cards_cancelling_a_cash_order_moves_no_money(seeded_db: Database) -> None:
    db = seeded_db
    socks = await product_by_sku(db, "CL-SOCKS")
    zone = await first_zone(db)
    assert socks.id and zone.id
    placed = await place_order(db, order_request("c1", [(socks.id, 1)], zone.id), render_placed)
    assert isinstance(placed, OrderPlaced) and placed.balance is None
    assert await cancel(db, placed.code, "staff")
    assert await count(db, LedgerMovement) == 0
    bodies = [m.body for m in await rows(db, OutboundMessage) if m.kind == "order_cancelled"]
    assert bodies == [f"cancelled {placed.code}"]


# --- the ledger as a whole ----------------------------------------------------------------------


async def test_cards_ledger_sums_to_zero_after_a_randomized_run(seeded_db: Database) -> None:
    db = seeded_db
    rng = random.Random(1313)
    socks = await product_by_sku(db, "CL-SOCKS")
    assert socks.id is not None
    await set_product(db, socks.id, stock=10_000)
    holders = [ALICE, BOB, "+8501912340003"]
    wallet = {m: await funded(db, 0, msisdn=m) for m in holders}
    expected = dict.fromkeys(holders, 0)  # what each card should hold, kept by the test
    live: list[tuple[str, str, int]] = []  # (code, holder, amount) of paid orders not cancelled
    for step in range(120):
        action = rng.choice(["topup", "pay", "pay", "cancel", "adjust"])
        who = rng.choice(holders)
        card = wallet[who]
        if action == "topup":
            amount = rng.randint(1, 40) * 1000
            await cards.top_up(db, card.number, amount, f"R{step}", actor="staff",
                               render_sms=render_topup)  # fmt: skip
            expected[who] += amount
        elif action == "pay":
            quantity = rng.randint(1, 3)
            result = await card_order(db, f"o{step}", card, msisdn=who, quantity=quantity)
            cost = await order_total(db, quantity)
            if isinstance(result, OrderPlaced):
                expected[who] -= cost
                live.append((result.code, who, cost))
            else:
                assert expected[who] < cost  # declined only when it really could not pay
        elif action == "cancel" and live:
            code, holder, cost = live.pop(rng.randrange(len(live)))
            # Several at once, from every side: one refund.
            await asyncio.gather(cancel(db, code, "staff"), cancel(db, code, "c", holder))
            expected[holder] += cost
        elif action == "adjust":
            amount = rng.choice([-1, 1]) * rng.randint(1, 5) * 100
            try:
                await cards.adjust(db, card.number, amount, f"A{step}", actor="staff")
                expected[who] += amount
            except Conflict:
                assert expected[who] + amount < 0
        assert all(e >= 0 for e in expected.values())
    for who, card in wallet.items():
        assert (await card_row(db, card.number)).balance == expected[who]
    proof = await cards.prove(db)
    assert proof.holds and proof.total == 0 and proof.entries > 100
    # The daily report adds up to the same balances.
    days = await cards.days(db)
    assert days[-1].balances == sum(expected.values())
    assert "the ledger balances" in cards.format_ledger(days, proof)


async def test_cards_proof_finds_a_cached_balance_that_drifted(db: Database) -> None:
    card = await funded(db, 500)
    async with db.write() as session:
        await session.exec(text("UPDATE card SET balance = 400"))  # type: ignore[call-overload]
    proof = await cards.prove(db)
    assert not proof.holds and proof.mismatched == (card.number,)
    assert "DOES NOT BALANCE" in cards.format_ledger(await cards.days(db), proof)


async def test_cards_statement_walks_the_balance_movement_by_movement(
    seeded_db: Database,
) -> None:
    db = seeded_db
    total = await order_total(db)
    card = await funded(db, total + 1000, ref="CASH-1")
    placed = await card_order(db, "k1", card)
    assert isinstance(placed, OrderPlaced)
    await cancel(db, placed.code, "staff")
    shown = await cards.statement(db, card.number)
    assert [(line.kind, line.amount, line.balance, line.order) for line in shown.lines] == [
        ("topup", total + 1000, total + 1000, None),
        ("payment", -total, 1000, placed.code),
        ("refund", total, total + 1000, placed.code),
    ]
    assert shown.lines[0].reference == "CASH-1" and shown.card.balance == total + 1000


async def test_cards_courier_sms_of_a_paid_order_asks_for_no_cash(seeded_db: Database) -> None:
    db = seeded_db
    card = await funded(db, await order_total(db))
    placed = await card_order(db, "k1", card)
    assert isinstance(placed, OrderPlaced)
    for status in ("confirmed", "dispatched"):
        await lifecycle.change_status(db, placed.code, status, actor="staff",
                                      render_sms=render_status)  # fmt: skip
    bodies = [m.body for m in await rows(db, OutboundMessage) if m.order_id is not None]
    assert bodies[-2:] == [f"confirmed {placed.code}", f"dispatched_paid {placed.code}"]


async def test_cards_nobody_pays_with_someone_elses_card(seeded_db: Database) -> None:
    card = await funded(seeded_db, 50_000)  # Alice's
    # Declined, and told nothing of the card (its balance is Alice's business).
    assert await card_order(seeded_db, "bob-1", card, msisdn=BOB) == CardDeclined(balance=0)
    assert (await card_row(seeded_db, card.number)).balance == 50_000
    assert await count(seeded_db, Order) == 0
