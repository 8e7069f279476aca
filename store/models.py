"""The tables (DESIGN §6). Money is integer won; times are UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import NaiveDatetime
from sqlalchemy import CheckConstraint, Index, UniqueConstraint, event, text
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from store.functions import functions_ddl

# Times are naive UTC. sqlmodel maps a bare ``datetime`` to a timezone-aware column that
# rejects naive values on every insert and returns aware ones; ``NaiveDatetime`` keeps
# ``TIMESTAMP WITHOUT TIME ZONE`` and naive values both ways.


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def utc_at(seconds: float) -> datetime:
    """``seconds`` since the epoch, as the store keeps times (UTC, naive): a clock's reading."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


# Column widths that callers must respect: the edge refuses (or bounds) longer values against
# these same numbers, so a request the tables cannot keep is answered 4xx, never half-stored.
MSISDN_WIDTH = 16  # E.164: "+" and at most 15 digits
ADDRESS_WIDTH = 60
SESSION_REF_WIDTH = 100  # an aggregator's session id
PROVIDER_ID_WIDTH = 100  # an SMS provider's message id; a longer one is kept as its digest
PROVIDER_ID_LIMIT = 1000  # the longest id a delivery report may name (and be matched by)
SMS_BODY_WIDTH = 1000
SMS_TO_WIDTH = 32  # the short code or number an inbound SMS was sent to
SCREEN_TEXT_WIDTH = 400
ERROR_TEXT_WIDTH = 200
LAST_ERROR_WIDTH = 300  # why an SMS is not sent (yet): providers cut their reasons to it
SERVICE_CODE_WIDTH = 40
CHANNEL_WIDTH = 32
ORDER_KEY_WIDTH = 120
EVENT_NOTE_WIDTH = 200  # why an order changed, as staff or the system wrote it
ORDER_CODE_WIDTH = 12
NAME_WIDTH = 40  # a category's, product's, zone's or order line's name, in either language
SLUG_WIDTH = 40  # a category's
SKU_WIDTH = 40
DESCRIPTION_EN_WIDTH = 120
DESCRIPTION_KO_WIDTH = 60
STOCK_REASON_WIDTH = 120  # why staff moved a product's stock ("delivery from the mill")
ACTOR_WIDTH = 40  # who changed an order: "customer:+850...", "staff:<name>", "system"
MAX_INT = 2**31 - 1  # the largest value of an INTEGER column (PostgreSQL's int4)
# Shop cards and their ledger (issue 13).
CARD_NUMBER_WIDTH = 12  # the digits printed on a card
PIN_SALT_WIDTH = 32  # 16 random bytes, hex
PIN_HASH_WIDTH = 64  # scrypt's 32 bytes, hex
COUNTER_REF_WIDTH = 40  # a top-up's counter reference, as staff type it
MOVEMENT_KEY_WIDTH = 80  # "topup:<counter reference>", "payment:<order id>", ...
ACCOUNT_WIDTH = 24  # "card:<id>", "revenue", "topup_cash"


class Category(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=SLUG_WIDTH)
    name_en: str = Field(max_length=NAME_WIDTH)
    name_ko: str = Field(max_length=NAME_WIDTH)
    position: int = 0
    active: bool = True


class Product(SQLModel, table=True):
    # The order transaction's conditional decrement is what prevents overselling; the
    # constraint is the backstop that makes a bug there fail loudly instead.
    __table_args__ = (CheckConstraint("stock >= 0", name="product_stock_not_negative"),)

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(unique=True, max_length=SKU_WIDTH)
    category_id: int = Field(foreign_key="category.id", index=True)
    name_en: str = Field(max_length=NAME_WIDTH)
    name_ko: str = Field(max_length=NAME_WIDTH)
    description_en: str = Field(default="", max_length=DESCRIPTION_EN_WIDTH)
    description_ko: str = Field(default="", max_length=DESCRIPTION_KO_WIDTH)
    price: int = Field(ge=0)
    stock: int = Field(default=0, ge=0)
    position: int = 0
    active: bool = True


class DeliveryZone(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name_en: str = Field(max_length=NAME_WIDTH)
    name_ko: str = Field(max_length=NAME_WIDTH)
    fee: int = Field(ge=0)
    position: int = 0
    active: bool = True


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    msisdn: str = Field(unique=True, max_length=MSISDN_WIDTH)  # E.164
    language: str = Field(default="en", max_length=2)
    zone_id: int | None = Field(default=None, foreign_key="deliveryzone.id")
    address: str | None = Field(default=None, max_length=ADDRESS_WIDTH)
    reminders_opt_out: bool = False
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class Order(SQLModel, table=True):
    __tablename__ = "orders"  # "order" is an SQL keyword

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=ORDER_CODE_WIDTH)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    msisdn: str = Field(index=True, max_length=MSISDN_WIDTH)
    status: str = Field(default="placed", index=True, max_length=16)
    subtotal: int
    fee: int
    total: int
    payment_method: str = Field(default="cod", max_length=16)
    zone_id: int = Field(foreign_key="deliveryzone.id")
    address: str = Field(max_length=ADDRESS_WIDTH)
    language: str = Field(default="en", max_length=2)
    idempotency_key: str = Field(unique=True, max_length=ORDER_KEY_WIDTH)
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)


class OrderLine(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    product_id: int = Field(foreign_key="product.id")
    name_en: str = Field(max_length=NAME_WIDTH)  # snapshots: a later rename never rewrites history
    name_ko: str = Field(max_length=NAME_WIDTH)
    unit_price: int
    quantity: int


class OrderEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    status: str = Field(max_length=16)
    actor: str = Field(max_length=ACTOR_WIDTH)  # "customer:+850...", "staff:<name>", "system"
    note: str = Field(default="", max_length=EVENT_NOTE_WIDTH)
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class StockMove(SQLModel, table=True):
    """A move of a product's stock by staff, with its reason: the product's stock history.

    Orders and cancellations change stock too; their story is the order's own history.
    """

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    delta: int  # what the move changed (a figure set is recorded as the change it made)
    stock: int  # the stock after it
    reason: str = Field(default="", max_length=STOCK_REASON_WIDTH)
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class OutboundMessage(SQLModel, table=True):
    """The SMS outbox: written in the same transaction as what it announces."""

    __table_args__ = (
        # Every order cancels its subscriber's queued cart reminder (``cancel_queued``, the
        # order's SQL function): found among the queued messages alone. Through the indexes
        # on "to" and on status, each order read every queued message of the outbox: 1.8-2.3 ms
        # of the server's time per order with 39,000 queued (an SMSC down a while), 0.4-0.5
        # with this index (migration 0008).
        Index(
            "ix_outboundmessage_queued_to",
            "to",
            "kind",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    to: str = Field(index=True, max_length=MSISDN_WIDTH)  # E.164
    body: str = Field(max_length=SMS_BODY_WIDTH)
    kind: str = Field(default="order_placed", max_length=32)
    # Indexed: an order's detail on the dashboard lists the SMS it sent.
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    idempotency_key: str = Field(unique=True, max_length=160)
    status: str = Field(default="queued", index=True, max_length=16)
    # queued -> sending (claimed, lease) -> sent -> delivered | failed
    attempts: int = 0
    next_attempt_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    lease_until: NaiveDatetime | None = None
    provider: str | None = Field(default=None, max_length=32)
    provider_message_id: str | None = Field(default=None, max_length=PROVIDER_ID_WIDTH, index=True)
    last_error: str | None = Field(default=None, max_length=LAST_ERROR_WIDTH)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    sent_at: NaiveDatetime | None = None
    delivered_at: NaiveDatetime | None = None


class OutboundPart(SQLModel, table=True):
    """One SMS part of an outbox message, under the id its provider gave it.

    Receipts name parts, not messages: over SMPP a message split in two is two submit_sm,
    two ids and two receipts. A provider that splits by itself (Africa's Talking) answers one
    id: one part. Parts are recorded as each is accepted, whatever the message's status, so a
    receipt always finds its message.
    """

    __table_args__ = (UniqueConstraint("message_id", "number", name="outboundpart_number"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="outboundmessage.id", index=True)
    number: int  # 1, 2, ... in the order the parts were sent
    provider_message_id: str = Field(max_length=PROVIDER_ID_WIDTH, index=True)
    state: str | None = Field(default=None, max_length=16)  # a final receipt's, else None
    receipt_at: NaiveDatetime | None = None


class EarlyReceipt(SQLModel, table=True):
    """A final delivery receipt that came before any part had its provider id.

    Africa's Talking can report a message before its answer to the send is recorded (the
    part is written in ``mark_sent``), and an HTTP callback cannot be asked to come again as
    an SMPP receipt can. The receipt waits here, applied and deleted when a part with that id
    is recorded, and dropped after ``store.outbox.EARLY_RECEIPT_TTL`` if none ever is.
    """

    id: int | None = Field(default=None, primary_key=True)
    provider_message_id: str = Field(max_length=PROVIDER_ID_WIDTH, unique=True)
    state: str = Field(max_length=16)  # a final state: the first to come stands
    received_at: NaiveDatetime = Field(index=True)


class InboundMessage(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    msisdn: str = Field(index=True, max_length=MSISDN_WIDTH)
    to: str = Field(max_length=SMS_TO_WIDTH)
    text: str = Field(max_length=SMS_BODY_WIDTH)
    provider_message_id: str | None = Field(default=None, unique=True, max_length=PROVIDER_ID_WIDTH)
    received_at: NaiveDatetime = Field(default_factory=utcnow)
    handled_at: NaiveDatetime | None = None  # answered: a provider's retry changes nothing


class UssdSessionEnd(SQLModel, table=True):
    """How a USSD session ended, as the aggregator told it: for funnels and abandoned carts."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=CHANNEL_WIDTH)
    session_ref: str = Field(index=True, max_length=SESSION_REF_WIDTH)
    msisdn: str = Field(index=True, max_length=MSISDN_WIDTH)
    service_code: str = Field(max_length=SERVICE_CODE_WIDTH)
    status: str = Field(max_length=16)  # completed | abandoned | failed | released
    hops: int | None = None
    duration_ms: int | None = None
    last_screen: str = Field(default="", max_length=SCREEN_TEXT_WIDTH)
    error: str = Field(default="", max_length=ERROR_TEXT_WIDTH)
    ended_at: NaiveDatetime = Field(default_factory=utcnow, index=True)


class FunnelCount(SQLModel, table=True):
    """How many sessions reached a screen in an hour (added to by every gateway process)."""

    __table_args__ = (UniqueConstraint("hour", "screen", name="funnel_hour_screen"),)

    id: int | None = Field(default=None, primary_key=True)
    hour: NaiveDatetime = Field(index=True)
    screen: str = Field(max_length=32)
    sessions: int = 0


class Card(SQLModel, table=True):
    """A prepaid shop card. ``balance`` caches the sum of the card's ledger entries: every
    change to it is made in the transaction that appends those entries."""

    # The payment's conditional UPDATE is what keeps a balance from going below zero; the
    # constraint is the backstop that makes a bug there fail loudly instead.
    __table_args__ = (CheckConstraint("balance >= 0", name="card_balance_not_negative"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=CARD_NUMBER_WIDTH)
    msisdn: str = Field(index=True, max_length=MSISDN_WIDTH)  # its holder, E.164
    balance: int = 0  # won
    pin_salt: str = Field(max_length=PIN_SALT_WIDTH)
    pin_hash: str = Field(max_length=PIN_HASH_WIDTH)  # scrypt(PIN, salt): never the PIN
    failed_pins: int = 0  # wrong PINs in a row
    locked_until: NaiveDatetime | None = None
    active: bool = True
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class LedgerMovement(SQLModel, table=True):
    """One movement of money (a top-up, a payment, a refund, an adjustment): two or more
    entries that sum to zero. Appended, never changed; ``key`` makes each happen once."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=MOVEMENT_KEY_WIDTH)
    kind: str = Field(max_length=16)  # topup | payment | refund | adjustment
    card_id: int = Field(foreign_key="card.id", index=True)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    amount: int  # won moved, positive (the entries carry the signs)
    reference: str = Field(default="", max_length=COUNTER_REF_WIDTH)  # a top-up's counter ref
    actor: str = Field(max_length=ACTOR_WIDTH)
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)


class LedgerEntry(SQLModel, table=True):
    """One side of a movement: ``amount`` won into (positive) or out of ``account``."""

    id: int | None = Field(default=None, primary_key=True)
    movement_id: int = Field(foreign_key="ledgermovement.id", index=True)
    account: str = Field(index=True, max_length=ACCOUNT_WIDTH)
    amount: int
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)


# The ledger is appended to, never changed: the database itself refuses an UPDATE or DELETE
# of its rows (made with the tables by create_all here, and by migration 0005).
LEDGER_TABLES = ("ledgermovement", "ledgerentry")


def append_only_ddl(dialect: str) -> list[str]:
    """The statements that make the ledger's tables refuse UPDATE and DELETE."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table}"
            f" BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END"
            for table in LEDGER_TABLES
            for verb in ("UPDATE", "DELETE")
        ]
    return [
        "CREATE OR REPLACE FUNCTION okryu_append_only() RETURNS trigger AS $$ BEGIN"
        " RAISE EXCEPTION 'the ledger is append-only'; END $$ LANGUAGE plpgsql",
        *(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION okryu_append_only()"
            for table in LEDGER_TABLES
        ),
    ]


def _append_only(table: object, connection: Connection, **_: object) -> None:
    for statement in append_only_ddl(connection.dialect.name):
        connection.exec_driver_sql(statement)


event.listen(SQLModel.metadata.tables["ledgerentry"], "after_create", _append_only)


def _functions(target: object, connection: Connection, **_: object) -> None:
    for statement in functions_ddl(connection.dialect.name):
        connection.exec_driver_sql(statement)


event.listen(SQLModel.metadata, "after_create", _functions)
