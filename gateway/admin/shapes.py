"""The admin API's own shapes: what each route takes, and the answers that are not store rows.

A route's input names where each field comes from (``PATH``, ``QUERY``, ``HEADER``, or the
body). Parameters arrive as text, so their types read text: an integer is written in digits,
a time in RFC 3339. The rows' shapes (a product, an order, a message) are the store's.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BeforeValidator, Field

from gateway.admin.api import CSV, HEADER, JSON, PATH, QUERY, Input
from gateway.funnel import Step
from store.cards import Day as LedgerDay
from store.catalog_csv import RowError
from store.catalog_edits import (
    CategoryIn,
    CategoryPatch,
    ProductIn,
    ProductPatch,
    Sku,
    Slug,
    StockChange,
)
from store.fields import (
    CARD_NUMBER,
    COUNTER_REF,
    ORDER_CODE,
    PIN,
    STAFF_NAME,
    Absent,
    Shown,
    Text,
    UtcTime,
    Written,
)
from store.lifecycle import StaffStatus, Status
from store.models import (
    ACTOR_WIDTH,
    CARD_NUMBER_WIDTH,
    COUNTER_REF_WIDTH,
    EVENT_NOTE_WIDTH,
    MAX_INT,
    ORDER_CODE_WIDTH,
)
from store.outbox_queries import MessageStatus

STAFF_HEADER = "X-Okryu-Staff"
STAFF_PREFIX = "staff:"  # before the name in the order's history
MAX_PAGE = 200
PHONE_TEXT_WIDTH = 32  # a phone number as staff type it, before it is read as E.164


def _digits(value: object) -> object:
    # Written as JSON Schema's integers are: digits only ("+5", " 5" and "5_0" are refused).
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,12}", value):
        return int(value)
    return value


def _day(value: object) -> object:
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError("not a date")
        return date.fromisoformat(value)
    return value


# RFC 3339: seconds and an offset are required; "2024-01-01T10:00Z" is no date-time.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.IGNORECASE,
)


def _moment(value: object) -> object:
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError("not a date-time")
        return datetime.fromisoformat(value.upper())
    return value


# Bounds go before the BeforeValidator that reads the text (see store.fields.Whole).
Digits = BeforeValidator(_digits)
Day = Annotated[date, BeforeValidator(_day)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE), Digits, Field(description="rows in a page")]
Cursor = Annotated[
    int, Field(ge=1, le=MAX_INT), Digits, Field(description="next_cursor of the page before")
]
OrderCode = Annotated[str, Field(max_length=ORDER_CODE_WIDTH, pattern=ORDER_CODE)]
StaffName = Annotated[str, Field(max_length=ACTOR_WIDTH - len(STAFF_PREFIX), pattern=STAFF_NAME)]
PhoneText = Annotated[str, Field(max_length=PHONE_TEXT_WIDTH)]


# --- bodies and answers ---------------------------------------------------------------------


class StatusChange(Written):
    """What staff do to an order; ``note`` goes into its history."""

    status: StaffStatus
    note: Annotated[Text, Field(max_length=EVENT_NOTE_WIDTH)] = ""


class ImportProblems(Shown):
    """A CSV file refused: every problem with its line; nothing was written."""

    error: str
    errors: list[RowError]


class Funnel(Shown):
    """Sessions that reached each step of the order journey in a period, and the drop-off."""

    since: UtcTime = Field(serialization_alias="from")
    until: UtcTime = Field(serialization_alias="to")
    steps: list[Step]


class Stats(Shown):
    """The live hop rate of this process; orders and SMS by status."""

    hops_per_second: float
    orders: dict[str, int]
    sms: dict[str, int]
    timezone: str = "UTC"  # the shop's (OKRYU_TIMEZONE): the dashboard shows times in it


# --- each route's input ---------------------------------------------------------------------


class NewCategory(Input):
    body: Annotated[CategoryIn, JSON]


class CategoryAt(Input):
    slug: Annotated[Slug, PATH, Field(description="the category's slug")]


class CategoryEdit(CategoryAt):
    body: Annotated[CategoryPatch, JSON]


class ProductFilter(Input):
    category: Annotated[Slug | Absent, QUERY, Field(description="a category's slug")] = None


class NewProduct(Input):
    body: Annotated[ProductIn, JSON]


class ProductAt(Input):
    sku: Annotated[Sku, PATH, Field(description="the product's sku")]


class ProductEdit(ProductAt):
    body: Annotated[ProductPatch, JSON]


class StockMove(ProductAt):
    body: Annotated[StockChange, JSON]


CsvText = Annotated[
    str,
    Field(
        min_length=1,
        examples=[
            "sku,category,name_en,name_ko,price,stock\r\nFD-TEA,food,Green tea,록차,3000,12\r\n"
        ],
    ),
]


class CatalogFile(Input):
    body: Annotated[CsvText, CSV]


class OrderFilter(Input):
    status: Annotated[Status | Absent, QUERY] = None
    since: Annotated[
        Day | Moment | Absent,
        QUERY,
        Field(alias="from", description="created at or after (a date: from its start)"),
    ] = None
    until: Annotated[
        Day | Moment | Absent,
        QUERY,
        Field(alias="to", description="created before (a date: up to its end)"),
    ] = None
    phone: Annotated[PhoneText | Absent, QUERY, Field(description="the customer's number")] = None
    limit: Annotated[Limit, QUERY] = 50
    cursor: Annotated[Cursor | Absent, QUERY] = None


class OrderAt(Input):
    code: Annotated[OrderCode, PATH, Field(description="the order code")]


class OrderMove(OrderAt):
    staff: Annotated[
        StaffName | Absent,
        HEADER,
        Field(alias=STAFF_HEADER, description="who makes the change (recorded in the history)"),
    ] = None
    body: Annotated[StatusChange, JSON]


class OutboxFilter(Input):
    status: Annotated[MessageStatus | Absent, QUERY] = None
    limit: Annotated[Limit, QUERY] = 50
    cursor: Annotated[Cursor | Absent, QUERY] = None


class MessageAt(Input):
    id: Annotated[int, Field(ge=1, le=MAX_INT), Digits, PATH, Field(description="message id")]


class Period(Input):
    since: Annotated[
        Day | Moment | Absent,
        QUERY,
        Field(alias="from", description="the start (default: a day before the end)"),
    ] = None
    until: Annotated[
        Day | Moment | Absent,
        QUERY,
        Field(alias="to", description="the period's end (default: now)"),
    ] = None


# --- shop cards (issue 13) ----------------------------------------------------------------------

CardNumber = Annotated[str, Field(max_length=CARD_NUMBER_WIDTH, pattern=CARD_NUMBER)]
CounterRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=COUNTER_REF_WIDTH,
        pattern=COUNTER_REF,
        description="the counter's reference: the same reference again is the same top-up",
    ),
]
Won = Annotated[int, Field(ge=1, le=MAX_INT)]


class CardIn(Written):
    """A card to issue: its holder's number and the PIN they chose at the counter."""

    phone: PhoneText
    pin: Annotated[str, Field(pattern=PIN, description="4 to 6 digits; never shown again")]


class TopUpIn(Written):
    amount: Annotated[Won, Field(description="won taken at the counter")]
    reference: CounterRef


class AdjustmentIn(Written):
    amount: Annotated[
        int,
        Field(ge=-MAX_INT, le=MAX_INT, description="won into (or, negative, out of) the card"),
    ]
    reference: CounterRef


class LedgerDayOut(Shown):
    day: date
    topups: int
    payments: int
    refunds: int
    adjustments: int
    balances: int

    @classmethod
    def of(cls, day: LedgerDay) -> LedgerDayOut:
        return cls.model_validate(day)


class LedgerReport(Shown):
    """Top-ups, payments, refunds and adjustments per day, what the cards held at each day's
    end, and the proof that the ledger balances."""

    days: list[LedgerDayOut]
    entries: int
    total: int  # the sum of every entry: 0
    unbalanced_movements: list[int]
    mismatched_cards: list[str]
    balances: bool


class CardFilter(Input):
    phone: Annotated[PhoneText, QUERY, Field(description="the holder's number")]


class NewCard(Input):
    body: Annotated[CardIn, JSON]


class CardAt(Input):
    number: Annotated[CardNumber, PATH, Field(description="the number printed on the card")]


class TopUp(CardAt):
    staff: Annotated[
        StaffName | Absent,
        HEADER,
        Field(alias=STAFF_HEADER, description="who took the cash (recorded in the ledger)"),
    ] = None
    body: Annotated[TopUpIn, JSON]


class Adjustment(TopUp):
    body: Annotated[AdjustmentIn, JSON]  # type: ignore[assignment]


class LedgerPeriod(Input):
    since: Annotated[
        Day | Moment | Absent,
        QUERY,
        Field(alias="from", description="the first day (default: every day)"),
    ] = None
