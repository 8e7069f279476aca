"""What the menus need from the outside world, as plain data and requests.

The engine never performs I/O. It reads the in-process :class:`Catalog` and, when a screen
needs something only the store can give (the customer's saved profile, their orders) or do
(place an order), it returns one of the requests below; the gateway fulfils it and runs the
step again with the answer. ``store`` produces these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Lang = Literal["en", "ko"]
LANGS: tuple[Lang, ...] = ("en", "ko")
# Customers may cancel an order only before it leaves the shop (USSD, SMS and the store).
CUSTOMER_CANCELLABLE = frozenset({"placed", "confirmed"})


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    name_en: str
    name_ko: str
    position: int = 0


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    sku: str
    category_id: int
    name_en: str
    name_ko: str
    description_en: str
    description_ko: str
    price: int  # won
    stock: int


@dataclass(frozen=True, slots=True)
class Zone:
    id: int
    name_en: str
    name_ko: str
    fee: int  # won


@dataclass(frozen=True)
class Catalog:
    """An immutable snapshot of the active catalog, tagged with the version it was read at."""

    version: str
    categories: tuple[Category, ...]
    products: Mapping[int, Product]
    by_category: Mapping[int, tuple[int, ...]]  # active product ids per category, in order
    zones: tuple[Zone, ...]
    # Which reading of the store this is, in this process (0: not counted). ``version`` moves
    # with each edit; stock moves with every order and is read again under the same version,
    # so a screen cached with what it says of stock (a product listed as sold out) is kept
    # for one reading only.
    reading: int = 0


# --- requests the engine makes, and the answers it expects ---------------------------------


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    msisdn: str
    lang: Lang
    zone_id: int | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class LoadCustomer:
    """Answer: ``CustomerProfile | None``."""

    msisdn: str


@dataclass(frozen=True, slots=True)
class SaveLanguage:
    """Answer: ``None``."""

    msisdn: str
    lang: Lang


@dataclass(frozen=True, slots=True)
class OrderLineRequest:
    product_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Answer: ``OrderPlaced | OutOfStock | OrderPending``. Idempotent on ``idempotency_key``."""

    idempotency_key: str
    msisdn: str
    lang: Lang
    lines: tuple[OrderLineRequest, ...]
    zone_id: int
    address: str
    payment: str = "cod"  # "cod", or "card": paid from ``card`` in the order's transaction
    card: int = 0  # the card's id (its PIN was checked by ``CheckPin`` just before)


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    code: str
    subtotal: int
    fee: int
    total: int
    balance: int | None = None  # paid by card: what is left on it (when just placed)
    card: str = ""  # paid by card: the digits of its number a screen shows


@dataclass(frozen=True, slots=True)
class CardDeclined:
    """The card cannot pay: its balance (now) is short of the total, or it is not usable."""

    balance: int


@dataclass(frozen=True, slots=True)
class OutOfStock:
    product_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class OrderPending:
    """The store is slow: the order is still being placed and an SMS will say how it ended."""

    idempotency_key: str


@dataclass(frozen=True, slots=True)
class FindOrder:
    """Answer: ``OrderPlaced | None``: did the order under this key get placed?"""

    msisdn: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class OrderSummary:
    code: str
    status: str
    total: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ListOrders:
    """Answer: ``tuple[OrderSummary, ...]``, newest first, only this subscriber's."""

    msisdn: str
    limit: int = 30


@dataclass(frozen=True, slots=True)
class OrderLineView:
    name_en: str
    name_ko: str
    quantity: int
    unit_price: int


@dataclass(frozen=True, slots=True)
class OrderDetail:
    code: str
    status: str
    lines: tuple[OrderLineView, ...]
    subtotal: int
    fee: int
    total: int
    zone_en: str
    zone_ko: str
    address: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class GetOrder:
    """Answer: ``OrderDetail | None``; ``None`` also when the order is another subscriber's."""

    msisdn: str
    code: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Answer: ``bool``: True when the subscriber's own order was cancelled (before dispatch)."""

    msisdn: str
    code: str


# --- shop cards (issue 13) ---------------------------------------------------------------------
# A PIN travels only inside these requests, in memory, for one hop: never in a context, a
# record, a repr (so never in a traceback's message), a log or the store.


@dataclass(frozen=True, slots=True)
class CardView:
    id: int
    number: str  # as printed on the card
    balance: int  # won
    locked: bool = False


@dataclass(frozen=True, slots=True)
class ListCards:
    """Answer: ``tuple[CardView, ...]``: the subscriber's usable cards, oldest first."""

    msisdn: str


@dataclass(frozen=True, slots=True)
class PinChecked:
    """``ok``; or how many tries are ``left`` before the card locks; or ``locked`` (for
    ``minutes`` more)."""

    ok: bool
    left: int = 0
    locked: bool = False
    minutes: int = 0


@dataclass(frozen=True, slots=True)
class CheckPin:
    """Answer: ``PinChecked``. A wrong PIN counts; the third in a row locks the card."""

    msisdn: str
    card: int
    pin: str = field(repr=False)
    lang: Lang = "en"  # of the SMS that says the card is locked


@dataclass(frozen=True, slots=True)
class ChangePin:
    """Answer: ``bool``: the new PIN is set (the old one was checked on the screen before)."""

    msisdn: str
    card: int
    pin: str = field(repr=False)


Request = (
    CancelOrder
    | LoadCustomer
    | SaveLanguage
    | PlaceOrder
    | ListOrders
    | GetOrder
    | FindOrder
    | ListCards
    | CheckPin
    | ChangePin
)
