"""Customers and orders: what the menus ask the store to read and do (``menus.ports``)."""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from menus.ports import (
    LANGS,
    CardDeclined,
    Catalog,
    CustomerProfile,
    Lang,
    OrderDetail,
    OrderLineView,
    OrderPlaced,
    OrderSummary,
    OutOfStock,
    PlaceOrder,
)
from store import cards
from store.codes import new_code, normalise_code
from store.db import DRIVER_OUTAGES, Database
from store.errors import StoreError
from store.handout import Connections
from store.models import (
    ADDRESS_WIDTH,
    ORDER_KEY_WIDTH,
    Customer,
    DeliveryZone,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    utcnow,
)
from store.outbox import cancel_queued, enqueue

RenderConfirmation = Callable[[OrderPlaced, str], str]

# An IntegrityError that is not a replay (a code drawn twice at the same instant, say) is
# worth one more try in a fresh transaction; a persistent one is a bug and is raised.
_ATTEMPTS = 3
_CODE_DRAWS = 10


class _Snapshot(NamedTuple):
    """A product as it was when its stock was taken: what the order line records."""

    name_en: str
    name_ko: str
    price: int


class _Unavailable(StoreError):
    """Raised inside the write transaction so that it rolls back every decrement."""

    def __init__(self, result: OutOfStock | CardDeclined) -> None:
        super().__init__(type(result).__name__)
        self.result = result


# The only SQL of a new subscriber's first hop: three columns, built once (building the
# where clause cost more than running it), run by Database.first.
_PROFILE = select(Customer.language, Customer.zone_id, Customer.address).where(
    col(Customer.msisdn) == bindparam("msisdn")
)


async def get_customer(db: Database, msisdn: str) -> CustomerProfile | None:
    """The subscriber's saved language, zone and address, or None for a first-time caller."""
    row = await db.first(_PROFILE, msisdn=msisdn)
    if row is None:
        return None
    language, zone_id, address = row
    return CustomerProfile(msisdn=msisdn, lang=_lang(language), zone_id=zone_id, address=address)


async def save_language(db: Database, msisdn: str, lang: str) -> None:
    """Remember the subscriber's language, creating the customer if needed."""
    if lang not in LANGS:
        raise StoreError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")
    async with db.write() as session:
        await _upsert_customer(session, db.is_sqlite, msisdn, language=lang)


async def set_reminders(db: Database, msisdn: str, allowed: bool) -> None:
    """Opt the subscriber in to (or out of) abandoned-cart reminders."""
    async with db.write() as session:
        await _upsert_customer(session, db.is_sqlite, msisdn, reminders_opt_out=not allowed)


async def wants_reminders(db: Database, msisdn: str) -> bool:
    async with db.session() as session:
        query = select(Customer.reminders_opt_out).where(Customer.msisdn == msisdn)
        opted_out = (await session.exec(query)).first()
    return not opted_out


PAYMENTS = ("cod", "card")


async def place_order(
    db: Database,
    req: PlaceOrder,
    render_confirmation: RenderConfirmation,
    shown: Catalog | None = None,
) -> OrderPlaced | OutOfStock | CardDeclined:
    """Place the order and queue its confirmation SMS in one transaction; idempotent on the key.

    ``render_confirmation(placed, lang)`` returns the SMS body. A replay of a key returns the
    order it placed, with no second stock change, no second payment and no second SMS. An
    order paid by card takes the total from the card in that same transaction: no order
    without its payment, no payment without its order (:class:`CardDeclined` when the card
    holds less).

    ``shown``, the catalog the shopper was shown, saves a cash-on-delivery order on
    PostgreSQL its read of the products and the district: the order is written with their
    names, prices and fee as shown, which its transaction checks under its locks (a price or
    fee moved since: read afresh and tried again, as a repricing always was).
    """
    quantities = _quantities(req)
    if len(req.address) > ADDRESS_WIDTH:
        raise StoreError(f"address is longer than {ADDRESS_WIDTH} characters")
    if req.payment not in PAYMENTS or (req.payment == "card") != (req.card > 0):
        raise StoreError("payment must be cod, or card with the card's id")
    # A cash-on-delivery order skips the ORM: on PostgreSQL it is one SQL function call
    # (store.functions), on SQLite one synchronous transaction on the driver. The same steps
    # as _place_once (which card orders take), a dozen round trips or ORM flushes fewer.
    place = _place_once
    if req.payment == "cod":
        place = _place_on_sqlite if db.is_sqlite else _place_in_one_call
    for attempt in range(_ATTEMPTS):
        try:
            if place is _place_in_one_call:
                return await _place_in_one_call(db, req, quantities, render_confirmation, shown)
            return await place(db, req, quantities, render_confirmation)
        except _PriceMoved:
            if attempt == _ATTEMPTS - 1:
                raise
            shown = None  # what was shown has moved: read the shelf
            continue
        except _Unavailable as unavailable:
            # On PostgreSQL a concurrent call with the same key may have taken the last units
            # and committed while this one waited on the row lock: the order exists after all.
            return await _replay(db, req) or unavailable.result
        except IntegrityError:
            # Two calls with the same key both passed the existence check (PostgreSQL): the
            # loser hits the unique key and answers with the winner's order.
            placed = await _replay(db, req)
            if placed is not None:
                return placed
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def outcome_unknown(error: BaseException) -> bool:
    """Whether ``place_order`` raising ``error`` may yet have placed the order: the connection
    was lost while its statement was out (the server may have committed it, or may still). A
    refusal the server answered, or a check before anything was sent, leaves nothing behind."""
    if isinstance(error, DBAPIError):
        orig = error.orig
        return bool(error.connection_invalidated) or (
            orig is not None and orig is not error and outcome_unknown(orig)
        )
    return isinstance(error, (OSError, TimeoutError, *DRIVER_OUTAGES))


async def list_orders(db: Database, msisdn: str, limit: int = 30) -> tuple[OrderSummary, ...]:
    """The subscriber's orders, newest first."""
    query = (
        select(Order)
        .where(Order.msisdn == msisdn)
        .order_by(col(Order.created_at).desc(), col(Order.id).desc())
        .limit(limit)
    )
    async with db.session() as session:
        rows = (await session.exec(query)).all()
    return tuple(
        OrderSummary(code=o.code, status=o.status, total=o.total, created_at=o.created_at)
        for o in rows
    )


async def get_order(db: Database, msisdn: str, code: str) -> OrderDetail | None:
    """One of the subscriber's orders; None too when the code is someone else's (never leak)."""
    query = (
        select(Order, DeliveryZone)
        .join(DeliveryZone, col(Order.zone_id) == col(DeliveryZone.id))
        .where(Order.code == normalise_code(code), Order.msisdn == msisdn)
    )
    async with db.session() as session:
        found = (await session.exec(query)).first()
        if found is None:
            return None
        order, zone = found
        lines = (
            await session.exec(
                select(OrderLine).where(OrderLine.order_id == order.id).order_by(col(OrderLine.id))
            )
        ).all()
    return OrderDetail(
        code=order.code,
        status=order.status,
        lines=tuple(
            OrderLineView(
                name_en=line.name_en,
                name_ko=line.name_ko,
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in lines
        ),
        subtotal=order.subtotal,
        fee=order.fee,
        total=order.total,
        zone_en=zone.name_en,
        zone_ko=zone.name_ko,
        address=order.address,
        created_at=order.created_at,
    )


async def _place_once(
    db: Database,
    req: PlaceOrder,
    quantities: dict[int, int],
    render_confirmation: RenderConfirmation,
) -> OrderPlaced:
    async with db.write() as session:
        existing = await _placed_by_key(session, req.msisdn, req.idempotency_key)
        if existing is not None:
            return existing
        zone = await session.get(DeliveryZone, req.zone_id)
        if zone is None or not zone.active:
            raise StoreError(f"delivery zone {req.zone_id} is not available")
        # Everything that needs no product's row lock comes first. On PostgreSQL a popular
        # product's buyers queue on its row from the stock decrement to the commit, so that
        # span holds only the decrement (and the card payment, whose lock comes after the
        # products' as in a cancellation); the rest is written before it.
        seen = await _read_products(session, quantities)
        customer_id = await _upsert_customer(
            session,
            db.is_sqlite,
            req.msisdn,
            language=req.lang,
            zone_id=req.zone_id,
            address=req.address,
        )
        subtotal = sum(seen[pid].price * qty for pid, qty in quantities.items())
        order = Order(
            code=await _unused_code(session),
            customer_id=customer_id,
            msisdn=req.msisdn,
            subtotal=subtotal,
            fee=zone.fee,
            total=subtotal + zone.fee,
            payment_method=req.payment,
            zone_id=req.zone_id,
            address=req.address,
            language=req.lang,
            idempotency_key=stored_key(req.idempotency_key),
        )
        session.add(order)
        await session.flush()  # assigns order.id; a duplicate key fails here, not at commit
        order_id = order.id
        assert order_id is not None
        for pid, qty in quantities.items():
            snapshot = seen[pid]
            session.add(
                OrderLine(
                    order_id=order_id,
                    product_id=pid,
                    name_en=snapshot.name_en,
                    name_ko=snapshot.name_ko,
                    unit_price=snapshot.price,
                    quantity=qty,
                )
            )
        session.add(OrderEvent(order_id=order_id, status="placed", actor=f"customer:{req.msisdn}"))
        # A reminder about the cart this order came from would now only confuse.
        await cancel_queued(session, to=req.msisdn, kind="cart_reminder")  # flushes the lines
        await _take_stock(session, quantities, seen)
        placed = _placed(order)
        if req.payment == "card":
            paid = await cards.pay(
                session, card_id=req.card, msisdn=req.msisdn, order_id=order_id,
                amount=order.total, now=utcnow(),
            )  # fmt: skip
            if paid is None:
                balance = await cards.card_balance(session, req.card, req.msisdn)
                raise _Unavailable(CardDeclined(balance=balance))
            balance, number = paid
            placed = OrderPlaced(
                code=placed.code, subtotal=placed.subtotal, fee=placed.fee, total=placed.total,
                balance=balance, card=cards.shown_number(number),
            )  # fmt: skip
        await enqueue(
            session,
            to=req.msisdn,
            body=render_confirmation(placed, req.lang),
            kind="order_placed",
            idempotency_key=f"order_placed:{order.code}",
            order_id=order_id,
        )  # written by the commit
        return placed


async def _place_on_sqlite(
    db: Database,
    req: PlaceOrder,
    quantities: dict[int, int],
    render_confirmation: RenderConfirmation,
) -> OrderPlaced:
    """``_place_once`` for a cash-on-delivery order on SQLite: the statements of
    ``okryu_place_order`` on the driver, in one transaction that never waits on the loop."""
    work = functools.partial(_place_sync, req, quantities, render_confirmation, utcnow())
    try:
        return await db.write_now(work)
    except sqlite3.IntegrityError as error:
        # A key or code taken by another process's writer: as on the ORM path.
        raise IntegrityError("INSERT INTO orders", None, error) from None


def _place_sync(
    req: PlaceOrder,
    quantities: dict[int, int],
    render_confirmation: RenderConfirmation,
    now: datetime,
    conn: sqlite3.Connection,
) -> OrderPlaced:
    key = stored_key(req.idempotency_key)
    found = conn.execute(
        "SELECT code, msisdn, subtotal, fee, total FROM orders WHERE idempotency_key = ?", (key,)
    ).fetchone()
    if found is not None:
        if found[1] != req.msisdn:
            raise StoreError("idempotency key already used by another subscriber")
        return OrderPlaced(code=found[0], subtotal=found[2], fee=found[3], total=found[4])
    zone = conn.execute(
        "SELECT fee FROM deliveryzone WHERE id = ? AND active", (req.zone_id,)
    ).fetchone()
    if zone is None:
        raise StoreError(f"delivery zone {req.zone_id} is not available")
    ids = list(quantities)
    marks = ", ".join("?" * len(ids))
    rows = conn.execute(
        f"SELECT id, name_en, name_ko, price, stock, active FROM product WHERE id IN ({marks})",
        ids,
    ).fetchall()
    shelf = {row[0]: row for row in rows}
    missing = _lacking({pid: (r[4], bool(r[5])) for pid, r in shelf.items()}, quantities, ids)
    if missing:
        raise _Unavailable(OutOfStock(product_ids=missing))
    for _ in range(_CODE_DRAWS):
        code = new_code()
        if conn.execute("SELECT 1 FROM orders WHERE code = ?", (code,)).fetchone() is None:
            break
    else:
        raise StoreError("could not draw an unused order code")
    fee = zone[0]
    subtotal = sum(shelf[pid][3] * qty for pid, qty in quantities.items())
    placed = OrderPlaced(code=code, subtotal=subtotal, fee=fee, total=subtotal + fee)
    at = now.isoformat(sep=" ", timespec="microseconds")  # as SQLAlchemy writes a DATETIME
    (customer,) = conn.execute(
        "INSERT INTO customer (msisdn, language, zone_id, address, reminders_opt_out, created_at)"
        " VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (msisdn) DO UPDATE SET"
        " language = excluded.language, zone_id = excluded.zone_id, address = excluded.address"
        " RETURNING id",
        (req.msisdn, req.lang, req.zone_id, req.address, at),
    ).fetchone()
    (order_id,) = conn.execute(
        "INSERT INTO orders (code, customer_id, msisdn, status, subtotal, fee, total,"
        " payment_method, zone_id, address, language, idempotency_key, created_at, updated_at)"
        " VALUES (?, ?, ?, 'placed', ?, ?, ?, 'cod', ?, ?, ?, ?, ?, ?) RETURNING id",
        (code, customer, req.msisdn, subtotal, fee, placed.total, req.zone_id, req.address,
         req.lang, key, at, at),
    ).fetchone()  # fmt: skip
    conn.executemany(
        "INSERT INTO orderline (order_id, product_id, name_en, name_ko, unit_price, quantity)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(order_id, pid, shelf[pid][1], shelf[pid][2], shelf[pid][3], qty)
         for pid, qty in quantities.items()],
    )  # fmt: skip
    conn.execute(
        "INSERT INTO orderevent (order_id, status, actor, note, created_at)"
        " VALUES (?, 'placed', ?, '', ?)",
        (order_id, f"customer:{req.msisdn}", at),
    )
    # A reminder about the cart this order came from would now only confuse.
    conn.execute(
        "UPDATE outboundmessage SET status = 'cancelled'"
        " WHERE \"to\" = ? AND kind = 'cart_reminder' AND status = 'queued'",
        (req.msisdn,),
    )
    conn.execute(
        "INSERT INTO outboundmessage (\"to\", body, kind, order_id, idempotency_key, status,"
        " attempts, next_attempt_at, created_at) VALUES (?, ?, 'order_placed', ?, ?, 'queued',"
        " 0, ?, ?)",
        (req.msisdn, render_confirmation(placed, req.lang), order_id, f"order_placed:{code}",
         at, at),
    )  # fmt: skip
    for pid in sorted(quantities):
        # The oversell guard, as everywhere (under BEGIN IMMEDIATE nothing moved since the
        # read; the condition says what must hold, not what is likely).
        taken = conn.execute(
            "UPDATE product SET stock = stock - ? WHERE id = ? AND stock >= ? AND active",
            (quantities[pid], pid, quantities[pid]),
        )
        if taken.rowcount != 1:
            raise _Unavailable(OutOfStock(product_ids=(pid,)))
    return placed


# What a PostgreSQL order reads before its one call: the zone's fee (no row: no such active
# zone) and each product as it is now.
_SHELF_AND_FEE = """
SELECT z.fee, p.id, p.name_en, p.name_ko, p.price, p.stock, p.active
FROM deliveryzone AS z LEFT JOIN product AS p ON p.id = ANY($2::integer[])
WHERE z.id = $1 AND z.active
"""
_PLACE = (
    "SELECT * FROM okryu_place_order($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
)


async def _place_in_one_call(
    db: Database,
    req: PlaceOrder,
    quantities: dict[int, int],
    render_confirmation: RenderConfirmation,
    shown: Catalog | None = None,
) -> OrderPlaced:
    """``_place_once`` for a cash-on-delivery order on PostgreSQL: one call of
    ``okryu_place_order`` on the driver, after a read of the shelf unless ``shown`` has every
    line and the district. No ORM, no transaction held open here."""
    pool = await db.pool()
    found = _as_shown(shown, req.zone_id, quantities)
    if found is None:
        read = await _read_shelf(db, pool, req, quantities)
        if isinstance(read, OrderPlaced):
            return read  # a replay
        found = read
    fee = found.fee
    ids = list(quantities)
    prices = [found.products[pid].price for pid in ids]
    subtotal = sum(price * quantities[pid] for pid, price in zip(ids, prices, strict=True))
    key = stored_key(req.idempotency_key)
    for _ in range(_CODE_DRAWS):
        placed = OrderPlaced(code=new_code(), subtotal=subtotal, fee=fee, total=subtotal + fee)
        body = render_confirmation(placed, req.lang)
        try:
            async with db.order_turns.of(ids):  # its turn on each product (store/turns.py)
                row = await pool.fetchrow(
                    _PLACE, key, req.msisdn, req.lang, req.zone_id, req.address, placed.code,
                    ids, [quantities[pid] for pid in ids], prices,
                    [found.products[pid].name_en for pid in ids],
                    [found.products[pid].name_ko for pid in ids],
                    fee, body, utcnow(),
                )  # fmt: skip
        except asyncpg.UniqueViolationError as error:
            # The same key placed by a concurrent call (the caller reads it back), or the
            # same code drawn at the same instant (the caller tries again): as on the ORM path.
            raise IntegrityError(_PLACE, None, error) from None
        assert row is not None
        outcome = row["outcome"]
        if outcome == "placed":
            return placed
        if outcome == "replay":
            if row["order_msisdn"] != req.msisdn:
                raise StoreError("idempotency key already used by another subscriber")
            return OrderPlaced(
                code=row["order_code"], subtotal=row["order_subtotal"],
                fee=row["order_fee"], total=row["order_total"],
            )  # fmt: skip
        if outcome == "no_zone":
            raise StoreError(f"delivery zone {req.zone_id} is not available")
        if outcome == "short":
            if row["lacking"]:
                raise _Unavailable(OutOfStock(product_ids=tuple(row["lacking"])))
            raise _PriceMoved("a product was repriced while the order was placed")
        assert outcome == "code_taken", outcome
    raise StoreError("could not draw an unused order code")


class _Shelf(NamedTuple):
    """What an order is written with: each line's product as named and priced, the fee."""

    products: dict[int, _Snapshot]
    fee: int


def _as_shown(shown: Catalog | None, zone_id: int, quantities: dict[int, int]) -> _Shelf | None:
    """The shelf as the shopper was shown it, if ``shown`` has the district and every line."""
    if shown is None or any(pid not in shown.products for pid in quantities):
        return None
    fee = next((zone.fee for zone in shown.zones if zone.id == zone_id), None)
    if fee is None:
        return None
    products = {
        pid: _Snapshot(shown.products[pid].name_en, shown.products[pid].name_ko,
                       shown.products[pid].price)
        for pid in quantities
    }  # fmt: skip
    return _Shelf(products, fee)


async def _read_shelf(
    db: Database, pool: Connections, req: PlaceOrder, quantities: dict[int, int]
) -> _Shelf | OrderPlaced:
    """The shelf as it is now (or the order a replayed key placed, if the district has
    closed since); raises :class:`_Unavailable` for lines that cannot be had."""
    rows = await pool.fetch(_SHELF_AND_FEE, req.zone_id, list(quantities))
    if not rows:
        # A replay comes first, as in the function: the district may have closed since.
        replayed = await _replay(db, req)
        if replayed is not None:
            return replayed
        raise StoreError(f"delivery zone {req.zone_id} is not available")
    found = {row["id"]: row for row in rows if row["id"] is not None}
    shelf = {pid: (row["stock"], row["active"]) for pid, row in found.items()}
    missing = _lacking(shelf, quantities, quantities)
    if missing:
        raise _Unavailable(OutOfStock(product_ids=missing))
    products = {
        pid: _Snapshot(row["name_en"], row["name_ko"], row["price"]) for pid, row in found.items()
    }
    return _Shelf(products, rows[0]["fee"])


# Six columns: sqlalchemy's select (sqlmodel's is typed up to four), run on the connection.
_PRODUCTS = sa_select(
    col(Product.id),
    col(Product.name_en),
    col(Product.name_ko),
    col(Product.price),
    col(Product.stock),
    col(Product.active),
).where(col(Product.id).in_(bindparam("ids", expanding=True)))


async def _read_products(session: AsyncSession, quantities: dict[int, int]) -> dict[int, _Snapshot]:
    """What each product is called and costs now, read without a lock; raises
    :class:`_Unavailable` for the lines that could not be had even now."""
    rows = await _shelf(session, list(quantities))
    missing = _lacking(_stocks(rows), quantities, quantities)
    if missing:
        raise _Unavailable(OutOfStock(product_ids=missing))
    return {pid: _Snapshot(*rows[pid][1:4]) for pid in quantities}


async def _shelf(session: AsyncSession, ids: list[int]) -> dict[int, Any]:
    """The rows of ``_PRODUCTS`` for these products, by id."""
    connection = await session.connection()
    rows = (await connection.execute(_PRODUCTS, {"ids": ids})).all()
    return {row.id: row for row in rows}


def _stocks(rows: dict[int, Any]) -> dict[int, tuple[int, bool]]:
    return {pid: (row.stock, row.active) for pid, row in rows.items()}


def _lacking(
    shelf: dict[int, tuple[int, bool]], quantities: dict[int, int], ids: Iterable[int]
) -> tuple[int, ...]:
    """The products among ``ids`` that are gone, off sale or short of the quantity
    (``shelf``: each product's stock and whether it is on sale)."""
    return tuple(
        pid
        for pid in ids
        if pid not in shelf or not shelf[pid][1] or shelf[pid][0] < quantities[pid]
    )


class _PriceMoved(StoreError):
    """A product's price changed between the read and the decrement: place it again."""


async def _take_stock(
    session: AsyncSession, quantities: dict[int, int], seen: dict[int, _Snapshot]
) -> None:
    """Decrement every line's stock at the price the order was written with, or roll back."""
    # One lock order for every transaction (by product id), so two orders sharing products
    # wait for each other on PostgreSQL instead of deadlocking.
    short: list[int] = []
    for pid in sorted(quantities):
        qty = quantities[pid]
        # The conditional UPDATE is the oversell guard: a row lock on PostgreSQL, the writer
        # lock on SQLite. The price condition, checked under that same lock, makes sure the
        # order is charged what the product costs now, not what it cost at the read.
        statement = (
            update(Product)
            .where(
                col(Product.id) == pid,
                col(Product.stock) >= qty,
                col(Product.active),
                col(Product.price) == seen[pid].price,
            )
            .values(stock=col(Product.stock) - qty)
            .returning(col(Product.id))
            # No Product objects live in this session; skip the ORM's bookkeeping.
            .execution_options(synchronize_session=False)
        )
        if (await session.exec(statement)).first() is None:
            short.append(pid)
    if short:
        # Sold out (or taken off sale) since the read, or repriced: the first is the answer,
        # the second is worth another try at the new price.
        gone = _lacking(_stocks(await _shelf(session, short)), quantities, short)
        if gone:
            raise _Unavailable(OutOfStock(product_ids=gone))
        raise _PriceMoved("a product was repriced while the order was placed")


async def _upsert_customer(
    session: AsyncSession, is_sqlite: bool, msisdn: str, **values: Any
) -> int:
    """Create or update the customer in one statement; their id."""
    # INSERT .. ON CONFLICT, not read-then-insert: a first-time caller with two requests in
    # flight would otherwise fail one of them on the unique msisdn.
    insert = sqlite_insert if is_sqlite else pg_insert
    statement = (
        insert(Customer)
        .values(msisdn=msisdn, **values)
        .on_conflict_do_update(index_elements=[col(Customer.msisdn)], set_=values)
        .returning(col(Customer.id))
    )
    customer_id: int = (await session.exec(statement)).scalar_one()
    return customer_id


async def _unused_code(session: AsyncSession) -> str:
    for _ in range(_CODE_DRAWS):
        code = new_code()
        taken = (await session.exec(select(Order.id).where(Order.code == code))).first()
        if taken is None:
            return code
    raise StoreError("could not draw an unused order code")


async def _placed_by_key(session: AsyncSession, msisdn: str, key: str) -> OrderPlaced | None:
    query = select(Order).where(Order.idempotency_key == stored_key(key))
    order = (await session.exec(query)).first()
    if order is None:
        return None
    if order.msisdn != msisdn:
        # A key is one subscriber's; answering another with it would leak their order.
        raise StoreError("idempotency key already used by another subscriber")
    return _placed(order)


async def _replay(db: Database, req: PlaceOrder) -> OrderPlaced | None:
    """The order already placed under the request's key, read in a fresh transaction."""
    return await find_order(db, req.msisdn, req.idempotency_key)


async def find_order(db: Database, msisdn: str, key: str) -> OrderPlaced | None:
    """The order this subscriber placed under idempotency ``key``, if it exists (yet)."""
    async with db.session() as session:
        return await _placed_by_key(session, msisdn, key)


def stored_key(key: str) -> str:
    """An idempotency key as the orders table keeps it: whole when it fits the column, else a
    digest (still one per key), so an aggregator's long session id never fails an order."""
    if len(key) <= ORDER_KEY_WIDTH:
        return key
    return "#" + hashlib.blake2b(key.encode(), digest_size=24).hexdigest()


def _quantities(req: PlaceOrder) -> dict[int, int]:
    """Quantity per product in first-seen order; the same product twice becomes one line."""
    if not req.lines:
        raise StoreError("an order needs at least one line")
    quantities: dict[int, int] = {}
    for line in req.lines:
        # A zero or negative quantity would turn the stock decrement into an increment.
        if line.quantity < 1:
            raise StoreError(f"quantity for product {line.product_id} must be at least 1")
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    return quantities


def _placed(order: Order) -> OrderPlaced:
    return OrderPlaced(code=order.code, subtotal=order.subtotal, fee=order.fee, total=order.total)


def _lang(value: str) -> Lang:
    return "ko" if value == "ko" else "en"
