"""Shop cards and the double-entry ledger that holds their money (issue 13).

Every movement of money is one :class:`~store.models.LedgerMovement` and two or more
:class:`~store.models.LedgerEntry` rows that sum to zero across three kinds of account: a
customer's card (``card:<id>``), the shop's revenue, and the cash taken at the counter for
top-ups. A card's balance is the sum of its account's entries; ``Card.balance`` caches it and
is changed only in the transaction that appends those entries, by a conditional UPDATE (a row
lock on PostgreSQL, the one writer on SQLite), so it never goes below zero whatever runs at
once. Each movement has a unique key (``topup:<counter reference>``, ``payment:<order id>``,
``refund:<order id>``): whatever is replayed or raced, it happens once.

A PIN is kept as ``scrypt(PIN, salt)`` (a per-card random salt; memory-hard, from the standard
library), compared in constant time, and passes through here only as an argument.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from menus.ports import CardView, PinChecked
from store.db import Database
from store.errors import Conflict, NotFound, StoreError
from store.fields import Shown, UtcTime
from store.models import (
    ACTOR_WIDTH,
    COUNTER_REF_WIDTH,
    MAX_INT,
    Card,
    Customer,
    LedgerEntry,
    LedgerMovement,
    Order,
    utcnow,
)
from store.outbox import enqueue

PIN = re.compile(r"[0-9]{4,6}", re.ASCII)
PIN_TRIES = 3  # wrong PINs in a row that lock a card
REVENUE = "revenue"  # what customers paid the shop
TOPUP_CASH = "topup_cash"  # cash taken at the counter for top-ups (negative: owed to cards)
KINDS = ("topup", "payment", "refund", "adjustment")
# scrypt at n=2**14, r=8: 16 MiB and some 40 ms a PIN on this class of machine; a stolen
# table then costs an attacker that for every guess of every card (salts differ).
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32, "maxmem": 64 * 1024 * 1024}
_NUMBER_DRAWS = 10

RenderLocked = Callable[[str, int, str], str]  # (card number, minutes, lang) -> SMS body
RenderTopUp = Callable[[str, int, int, str], str]  # (card number, amount, balance, lang) -> body


class UnknownCard(NotFound):
    """No such card."""


def card_account(card_id: int) -> str:
    return f"card:{card_id}"


def is_pin(text: str) -> bool:
    """4 to 6 ASCII digits (``"²"`` is a digit to Python, not to a keypad)."""
    return PIN.fullmatch(text) is not None


def digest(pin: str, salt: str) -> str:
    """``scrypt(pin, salt)`` as hex: what a card keeps instead of its PIN."""
    return hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt), **_SCRYPT).hex()


async def _digest(pin: str, salt: str) -> str:
    # Tens of milliseconds of CPU: off the event loop, so other hops go on meanwhile.
    return await asyncio.to_thread(digest, pin, salt)


def shown_number(number: str) -> str:
    """The part of a card's number a screen or SMS shows: its last four digits."""
    return number[-4:]


# --- what staff see -----------------------------------------------------------------------------


class CardOut(Shown):
    """A card as staff see it (never its PIN, nor what it is kept as)."""

    number: str
    msisdn: str
    balance: int
    active: bool
    locked_until: UtcTime | None
    created_at: UtcTime


class TopUpOut(Shown):
    """A top-up: the same answer for a repeated counter reference (``repeated`` then)."""

    number: str
    amount: int
    reference: str
    balance: int  # the card's balance now
    repeated: bool
    at: UtcTime


class StatementLine(Shown):
    kind: str
    amount: int  # into the card (positive) or out of it
    balance: int  # the card's balance after this movement
    reference: str
    order: str | None  # the order's code, for a payment or a refund
    actor: str
    at: UtcTime


class Statement(Shown):
    card: CardOut
    lines: list[StatementLine]  # oldest first


@dataclass(frozen=True, slots=True)
class Refund:
    amount: int
    balance: int
    number: str


# --- cards --------------------------------------------------------------------------------------


async def issue_card(db: Database, msisdn: str, pin: str) -> CardOut:
    """A new card for ``msisdn`` with ``pin``, its balance zero."""
    if not is_pin(pin):
        raise StoreError("pin must be 4 to 6 digits")
    salt = secrets.token_hex(16)
    hashed = await _digest(pin, salt)
    for _ in range(_NUMBER_DRAWS):
        number = str(secrets.randbelow(9 * 10**11) + 10**11)  # 12 digits, no leading zero
        try:
            async with db.write() as session:
                card = Card(number=number, msisdn=msisdn, pin_salt=salt, pin_hash=hashed)
                session.add(card)
                await session.flush()
                return CardOut.model_validate(card)
        except IntegrityError:
            continue  # a number drawn twice: draw again
    raise StoreError("could not draw an unused card number")


async def get_card(db: Database, number: str) -> CardOut:
    async with db.session() as session:
        return CardOut.model_validate(await _by_number(session, number))


async def cards_of(db: Database, msisdn: str) -> list[CardOut]:
    """Every card of ``msisdn``, as staff see them, oldest first."""
    query = select(Card).where(col(Card.msisdn) == msisdn).order_by(col(Card.id))
    async with db.session() as session:
        return [CardOut.model_validate(card) for card in (await session.exec(query)).all()]


async def holder_language(db: Database, number: str) -> str:
    """The language the card's holder reads their SMS in."""
    query = (
        select(Customer.language)
        .join(Card, col(Card.msisdn) == col(Customer.msisdn))
        .where(col(Card.number) == number)
    )
    async with db.session() as session:
        found = (await session.exec(query)).first()
    return found or "en"


# The subscriber's active cards: read at every checkout, so built once and run by db.rows.
_CARDS = (
    select(Card.id, Card.number, Card.balance, Card.locked_until)
    .where(col(Card.msisdn) == bindparam("msisdn"), col(Card.active))
    .order_by(col(Card.id))
)


async def list_cards(
    db: Database, msisdn: str, now: datetime | None = None
) -> tuple[CardView, ...]:
    """The subscriber's active cards, oldest first."""
    now = now or utcnow()
    return tuple(
        CardView(
            id=card_id,
            number=number,
            balance=balance,
            locked=locked_until is not None and _stored_time(locked_until) > now,
        )
        for card_id, number, balance, locked_until in await db.rows(_CARDS, msisdn=msisdn)
    )


def _stored_time(value: datetime | str) -> datetime:
    """A time as the driver returns it: a datetime (asyncpg), or SQLite's ISO text."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


async def check_pin(
    db: Database,
    msisdn: str,
    card_id: int,
    pin: str,
    *,
    now: datetime,
    lock_for: timedelta,
    lang: str,
    render_locked: RenderLocked,
) -> PinChecked:
    """Whether ``pin`` is the card's. The third wrong PIN in a row locks the card for
    ``lock_for`` and queues an SMS saying so, in the same transaction."""
    async with db.session() as session:
        card = await _holders(session, msisdn, card_id)
    if card is None:
        return PinChecked(ok=False)
    if _locked(card, now):
        return _lock_answer(card, now)
    salt = card.pin_salt
    given = await _digest(pin, salt) if is_pin(pin) else ""
    async with db.write() as session:
        card = await _holders(session, msisdn, card_id, lock=not db.is_sqlite)
        if card is None:
            return PinChecked(ok=False)
        if _locked(card, now):
            return _lock_answer(card, now)  # locked meanwhile
        if given and card.pin_salt != salt:
            given = digest(pin, card.pin_salt)  # the PIN was changed meanwhile: rare
        if given and hmac.compare_digest(given, card.pin_hash):
            if card.failed_pins:
                card.failed_pins = 0
                session.add(card)
            return PinChecked(ok=True)
        card.failed_pins += 1
        if card.failed_pins < PIN_TRIES:
            session.add(card)
            return PinChecked(ok=False, left=PIN_TRIES - card.failed_pins)
        card.failed_pins = 0
        card.locked_until = now + lock_for
        session.add(card)
        minutes = _minutes(lock_for)
        await enqueue(
            session,
            to=card.msisdn,
            body=render_locked(shown_number(card.number), minutes, lang),
            kind="card_locked",
            idempotency_key=f"card_locked:{card.id}:{card.locked_until.isoformat()}",
        )
        return PinChecked(ok=False, locked=True, minutes=minutes)


async def change_pin(db: Database, msisdn: str, card_id: int, pin: str) -> bool:
    """Set the card's PIN (the caller checked the old one); False if it is not theirs."""
    if not is_pin(pin):
        raise StoreError("pin must be 4 to 6 digits")
    salt = secrets.token_hex(16)
    hashed = await _digest(pin, salt)
    async with db.write() as session:
        result = await session.exec(
            update(Card)
            .where(col(Card.id) == card_id, col(Card.msisdn) == msisdn, col(Card.active))
            .values(pin_salt=salt, pin_hash=hashed, failed_pins=0)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)


def _locked(card: Card, now: datetime) -> bool:
    return card.locked_until is not None and card.locked_until > now


def _lock_answer(card: Card, now: datetime) -> PinChecked:
    assert card.locked_until is not None
    return PinChecked(ok=False, locked=True, minutes=_minutes(card.locked_until - now))


def _minutes(span: timedelta) -> int:
    return max(1, math.ceil(span.total_seconds() / 60))


async def _holders(
    session: AsyncSession, msisdn: str, card_id: int, *, lock: bool = False
) -> Card | None:
    query = select(Card).where(
        col(Card.id) == card_id, col(Card.msisdn) == msisdn, col(Card.active)
    )
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def _by_number(session: AsyncSession, number: str) -> Card:
    card = (await session.exec(select(Card).where(col(Card.number) == number))).first()
    if card is None:
        raise UnknownCard(f"no card {number}")
    return card


def _id(card: Card) -> int:
    assert card.id is not None
    return card.id


# --- movements ----------------------------------------------------------------------------------


async def _move(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    card_id: int,
    amount: int,
    entries: tuple[tuple[str, int], ...],
    actor: str,
    now: datetime,
    order_id: int | None = None,
    reference: str = "",
) -> LedgerMovement:
    """Append one movement and its entries (which must sum to zero)."""
    if sum(value for _, value in entries) != 0 or len(entries) < 2:
        raise StoreError("a movement's entries must be two or more and sum to zero")
    movement = LedgerMovement(
        key=key,
        kind=kind,
        card_id=card_id,
        order_id=order_id,
        amount=amount,
        reference=reference,
        actor=actor[:ACTOR_WIDTH],
        created_at=now,
    )
    session.add(movement)
    await session.flush()  # a key used before fails here: the whole transaction rolls back
    assert movement.id is not None
    for account, value in entries:
        session.add(
            LedgerEntry(movement_id=movement.id, account=account, amount=value, created_at=now)
        )
    return movement


async def _credit(session: AsyncSession, card_id: int, amount: int) -> tuple[int, str] | None:
    """Add ``amount`` to the card's cached balance; its new balance and number, or None when
    the card would hold more than a column can."""
    row = (
        await session.exec(
            update(Card)
            .where(col(Card.id) == card_id, col(Card.balance) <= MAX_INT - amount)
            .values(balance=col(Card.balance) + amount)
            .returning(col(Card.balance), col(Card.number))
            .execution_options(synchronize_session=False)
        )
    ).first()
    return (int(row[0]), str(row[1])) if row is not None else None


async def top_up(
    db: Database,
    number: str,
    amount: int,
    reference: str,
    *,
    actor: str,
    render_sms: RenderTopUp,
    lang: str = "en",
    now: datetime | None = None,
) -> TopUpOut:
    """Add ``amount`` won taken at the counter under ``reference`` to the card, telling its
    holder by SMS. The same reference again is the same top-up: answered, not repeated (and
    refused if it names another card or amount)."""
    if not 1 <= amount <= MAX_INT:
        raise StoreError(f"amount must be from 1 to {MAX_INT}")
    if not reference or len(reference) > COUNTER_REF_WIDTH:
        raise StoreError(f"reference must be 1 to {COUNTER_REF_WIDTH} characters")
    key = f"topup:{reference}"
    for attempt in range(2):
        try:
            async with db.write() as session:
                card = await _by_number(session, number)
                earlier = await _movement(session, key)
                if earlier is not None:
                    return _repeated(earlier, card, amount)
                credited = await _credit(session, _id(card), amount)
                if credited is None:
                    raise Conflict(f"card {number} cannot hold that much")
                balance, _ = credited
                at = now or utcnow()
                await _move(
                    session,
                    key=key,
                    kind="topup",
                    card_id=_id(card),
                    amount=amount,
                    entries=((card_account(_id(card)), amount), (TOPUP_CASH, -amount)),
                    actor=actor,
                    now=at,
                    reference=reference,
                )
                await enqueue(
                    session,
                    to=card.msisdn,
                    body=render_sms(shown_number(number), amount, balance, lang),
                    kind="card_topup",
                    idempotency_key=key,
                )
                return TopUpOut(
                    number=number, amount=amount, reference=reference, balance=balance,
                    repeated=False, at=at,
                )  # fmt: skip
        except IntegrityError:
            if attempt:
                raise  # not the reference raced (that is answered above on the retry)
    raise AssertionError("unreachable")


def _repeated(earlier: LedgerMovement, card: Card, amount: int) -> TopUpOut:
    if earlier.kind != "topup" or earlier.card_id != card.id or earlier.amount != amount:
        raise Conflict(f"reference {earlier.reference} was used for another top-up")
    return TopUpOut(
        number=card.number, amount=amount, reference=earlier.reference, balance=card.balance,
        repeated=True, at=earlier.created_at,
    )  # fmt: skip


async def _movement(session: AsyncSession, key: str) -> LedgerMovement | None:
    query = select(LedgerMovement).where(col(LedgerMovement.key) == key)
    return (await session.exec(query)).first()


async def adjust(
    db: Database,
    number: str,
    amount: int,
    reference: str,
    *,
    actor: str,
    now: datetime | None = None,
) -> TopUpOut:
    """Correct a card's balance by ``amount`` (either sign) against the counter's cash, once
    per ``reference``; never below zero."""
    if amount == 0 or abs(amount) > MAX_INT:
        raise StoreError(f"amount must be non-zero, from -{MAX_INT} to {MAX_INT}")
    if not reference or len(reference) > COUNTER_REF_WIDTH:
        raise StoreError(f"reference must be 1 to {COUNTER_REF_WIDTH} characters")
    key = f"adjustment:{reference}"
    async with db.write() as session:
        card = await _by_number(session, number)
        earlier = await _movement(session, key)
        if earlier is not None:
            if earlier.card_id != card.id or earlier.amount != amount:
                raise Conflict(f"reference {reference} was used for another adjustment")
            return TopUpOut(number=number, amount=amount, reference=reference,
                            balance=card.balance, repeated=True, at=earlier.created_at)  # fmt: skip
        if amount > 0:
            credited = await _credit(session, _id(card), amount)
        else:
            credited = await _debit(session, _id(card), card.msisdn, -amount)
        if credited is None:
            raise Conflict(f"card {number} cannot go below zero or hold that much")
        at = now or utcnow()
        await _move(
            session, key=key, kind="adjustment", card_id=_id(card), amount=amount,
            entries=((card_account(_id(card)), amount), (TOPUP_CASH, -amount)),
            actor=actor, now=at, reference=reference,
        )  # fmt: skip
        return TopUpOut(number=number, amount=amount, reference=reference,
                        balance=credited[0], repeated=False, at=at)  # fmt: skip


async def _debit(
    session: AsyncSession, card_id: int, msisdn: str, amount: int
) -> tuple[int, str] | None:
    """Take ``amount`` from the card if it holds that much: the guard against a negative
    balance, whatever runs at once (a row lock on PostgreSQL, the one writer on SQLite)."""
    row = (
        await session.exec(
            update(Card)
            .where(
                col(Card.id) == card_id,
                col(Card.msisdn) == msisdn,
                col(Card.active),
                col(Card.balance) >= amount,
            )
            .values(balance=col(Card.balance) - amount)
            .returning(col(Card.balance), col(Card.number))
            .execution_options(synchronize_session=False)
        )
    ).first()
    return (int(row[0]), str(row[1])) if row is not None else None


async def pay(
    session: AsyncSession, *, card_id: int, msisdn: str, order_id: int, amount: int, now: datetime
) -> tuple[int, str] | None:
    """Inside the order's transaction: pay ``amount`` for the order from the card. The card's
    balance after and its number, or None when it holds less (the caller rolls back)."""
    paid = await _debit(session, card_id, msisdn, amount)
    if paid is None:
        return None
    await _move(
        session,
        key=f"payment:{order_id}",
        kind="payment",
        card_id=card_id,
        order_id=order_id,
        amount=amount,
        entries=((card_account(card_id), -amount), (REVENUE, amount)),
        actor=f"customer:{msisdn}",
        now=now,
    )
    return paid


async def card_balance(session: AsyncSession, card_id: int, msisdn: str) -> int:
    """The balance of the subscriber's card; 0 for a card that is not theirs (never told)."""
    query = select(Card.balance).where(col(Card.id) == card_id, col(Card.msisdn) == msisdn)
    found = (await session.exec(query)).first()
    return int(found) if found is not None else 0


async def refund(session: AsyncSession, order: Order, *, actor: str) -> Refund | None:
    """Inside the cancellation's transaction: give back what the order took from a card, once
    (the refund's key is the order's); None when it took nothing or was refunded before."""
    assert order.id is not None
    paid = (
        await session.exec(
            select(LedgerMovement).where(
                col(LedgerMovement.order_id) == order.id, col(LedgerMovement.kind) == "payment"
            )
        )
    ).first()
    key = f"refund:{order.id}"
    if paid is None or await _movement(session, key) is not None:
        return None
    credited = await _credit(session, paid.card_id, paid.amount)
    if credited is None:
        raise Conflict(f"the card of order {order.code} cannot hold the refund")
    await _move(
        session,
        key=key,
        kind="refund",
        card_id=paid.card_id,
        order_id=order.id,
        amount=paid.amount,
        entries=((card_account(paid.card_id), paid.amount), (REVENUE, -paid.amount)),
        actor=actor,
        now=utcnow(),
    )
    return Refund(paid.amount, credited[0], credited[1])


# --- statements and the ledger's own checks -----------------------------------------------------


async def statement(db: Database, number: str, limit: int = 100) -> Statement:
    """The card's movements, the last ``limit``, oldest first, with the balance after each."""
    async with db.session() as session:
        card = await _by_number(session, number)
        account = card_account(_id(card))
        rows = (
            await session.exec(
                select(LedgerMovement, LedgerEntry.amount, Order.code)
                .join(LedgerEntry, col(LedgerEntry.movement_id) == col(LedgerMovement.id))
                .outerjoin(Order, col(Order.id) == col(LedgerMovement.order_id))
                .where(col(LedgerEntry.account) == account)
                .order_by(col(LedgerMovement.id).desc())
                .limit(limit)
            )
        ).all()
    balance = card.balance
    lines: list[StatementLine] = []
    for movement, amount, code in rows:  # newest first: walk the balance back
        lines.append(
            StatementLine(
                kind=movement.kind, amount=amount, balance=balance,
                reference=movement.reference, order=code, actor=movement.actor,
                at=movement.created_at,
            )
        )  # fmt: skip
        balance -= amount
    lines.reverse()
    return Statement(card=CardOut.model_validate(card), lines=lines)


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    topups: int = 0
    payments: int = 0
    refunds: int = 0
    adjustments: int = 0
    balances: int = 0  # what every card held together at the end of the day


@dataclass(frozen=True, slots=True)
class Proof:
    """The ledger's own checks: every one zero (or empty) when the books are right."""

    entries: int
    total: int  # the sum of every entry ever: zero
    unbalanced: tuple[int, ...]  # movements whose entries do not sum to zero
    mismatched: tuple[str, ...]  # cards whose cached balance is not the sum of their entries

    @property
    def holds(self) -> bool:
        return self.total == 0 and not self.unbalanced and not self.mismatched


async def prove(db: Database) -> Proof:
    """Sum every entry, every movement's entries, and every card's, against its balance."""
    async with db.session() as session:
        count, total = (
            await session.exec(select(func.count(), func.coalesce(func.sum(LedgerEntry.amount), 0)))
        ).one()
        unbalanced = (
            await session.exec(
                select(LedgerEntry.movement_id)
                .group_by(col(LedgerEntry.movement_id))
                .having((func.sum(LedgerEntry.amount) != 0) | (func.count() < 2))
            )
        ).all()
        sums = dict(
            (
                await session.exec(
                    select(LedgerEntry.account, func.sum(LedgerEntry.amount))
                    .where(col(LedgerEntry.account).like("card:%"))
                    .group_by(col(LedgerEntry.account))
                )
            ).all()
        )
        cards = (await session.exec(select(Card.id, Card.number, Card.balance))).all()
    mismatched = tuple(
        number for card_id, number, balance in cards
        if int(sums.get(f"card:{card_id}", 0)) != balance
    )  # fmt: skip
    return Proof(int(count), int(total), tuple(sorted(unbalanced)), mismatched)


async def days(db: Database, since: datetime | None = None) -> list[Day]:
    """Top-ups, payments, refunds and adjustments per day (UTC) since ``since``, with what
    the cards held together at the end of each day."""
    async with db.session() as session:
        opening = 0
        if since is not None:
            opening = int(
                (
                    await session.exec(
                        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                            col(LedgerEntry.account).like("card:%"),
                            col(LedgerEntry.created_at) < since,
                        )
                    )
                ).one()
            )
        query = select(LedgerMovement.kind, LedgerMovement.amount, LedgerMovement.created_at)
        if since is not None:
            query = query.where(col(LedgerMovement.created_at) >= since)
        rows = (await session.exec(query.order_by(col(LedgerMovement.created_at)))).all()
    out: dict[date, dict[str, int]] = {}
    for kind, amount, at in rows:
        out.setdefault(at.date(), dict.fromkeys(KINDS, 0))[kind] += amount
    result: list[Day] = []
    held = opening
    for day in sorted(out):
        sums = out[day]
        held += sums["topup"] - sums["payment"] + sums["refund"] + sums["adjustment"]
        result.append(Day(day, sums["topup"], sums["payment"], sums["refund"],
                          sums["adjustment"], held))  # fmt: skip
    return result


def format_ledger(days_: list[Day], proof: Proof) -> str:
    """``okryu report ledger``: a line a day, then the proof that the books balance."""
    head = f"{'day':<10}  {'top-ups':>12}  {'payments':>12}  {'refunds':>12}"
    lines = [f"{head}  {'adjust':>10}  {'balances':>12}"]
    for d in days_:
        lines.append(
            f"{d.day.isoformat():<10}  {d.topups:>12,}  {d.payments:>12,}  {d.refunds:>12,}"
            f"  {d.adjustments:>10,}  {d.balances:>12,}"
        )
    if not days_:
        lines.append("(no movements)")
    lines.append(f"entries: {proof.entries:,}; sum of every entry: {proof.total:,}")
    lines.append(f"movements whose entries do not sum to zero: {len(proof.unbalanced)}")
    lines.append(f"cards whose balance is not the sum of their entries: {len(proof.mismatched)}")
    lines.append("the ledger balances" if proof.holds else "THE LEDGER DOES NOT BALANCE")
    return "\n".join(lines)
