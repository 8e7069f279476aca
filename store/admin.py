"""What the admin API asks of the store: catalog edits, CSV import/export, orders, the outbox.

Writable fields are declared once, as :class:`Spec` rows whose lengths come from the table
columns; the API derives its request schema from them and CSV rows are checked by them.

CSV import is **all or nothing**: every row is checked first; if any is wrong nothing is
written and every problem is reported with its line number, so the file is fixed and sent
again whole (a half-applied price list is worse than none). Rows are upserted by ``sku``.
Columns ``sku, category, name_en, name_ko, price`` are required; a column left out of the
file (say ``stock``) leaves that field alone on existing products and takes its default on
new ones. ``category`` is the category's slug; ``active`` is true/false, yes/no or 1/0.

Orders and outbox messages are listed newest first with keyset pagination on the id: a page
ends with ``next_cursor``, the id to continue below, so rows arriving meanwhile never shift
or repeat a page. Categories and products are few and listed whole, in menu order.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from menus.screens import is_gsm7
from store.db import Database
from store.errors import StoreError
from store.models import (
    Category,
    DeliveryZone,
    Order,
    OrderEvent,
    OrderLine,
    OutboundMessage,
    Product,
    utcnow,
)

Value = str | int | bool
MAX_INT = 2**31 - 1  # INTEGER columns on PostgreSQL
NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"
# English texts, shown on GSM-7 screens: printable ASCII but the backtick, which GSM-7 lacks.
ASCII = r"^[\x20-\x5f\x61-\x7e]*$"
SLUG = r"^[a-z0-9][a-z0-9-]*$"
SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# What a value that does not match a pattern is told.
PATTERN_SAYS = {
    NO_CONTROLS: "must not contain control characters",
    ASCII: "must be printable ASCII without ` (GSM-7)",
    SLUG: "must be lower-case letters, digits and '-', starting with a letter or digit",
    SKU: "must be letters, digits, '.', '_' and '-', starting with a letter or digit",
}
OUTBOX_STATUSES = ("queued", "sending", "sent", "delivered", "failed", "cancelled")


class Invalid(StoreError):
    """A field's value is unusable; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


class NotFound(StoreError):
    """No such row."""


class Conflict(StoreError):
    """The request clashes with the current state (a taken sku, stock below zero...)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str | None
    reason: str


class ImportRejected(StoreError):
    """A CSV file with problems; nothing was written."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the file; nothing was imported")
        self.errors = list(errors)


def column_length(table: type[SQLModel], name: str) -> int:
    """The width of a VARCHAR column, as PostgreSQL enforces it."""
    length = getattr(table.__table__.c[name].type, "length", None)  # type: ignore[attr-defined]
    assert isinstance(length, int)
    return length


@dataclass(frozen=True, slots=True)
class Spec:
    """One writable field. ``kind="category"`` is a category's slug, or its id in JSON."""

    name: str
    kind: Literal["string", "integer", "boolean", "category"]
    max_length: int | None = None
    min_length: int = 0
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    gsm7: bool = False
    required: bool = False
    default: Value | None = None

    def check(self, value: object) -> Value:
        """``value`` if it is usable for this field, else :class:`Invalid` naming the field."""
        name = self.name
        if self.kind == "boolean":
            if not isinstance(value, bool):
                raise Invalid(name, f"{name} must be true or false")
            return value
        if self.kind == "integer" or (self.kind == "category" and not isinstance(value, str)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise Invalid(name, f"{name} must be an integer")
            if self.minimum is not None and value < self.minimum:
                raise Invalid(name, f"{name} must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise Invalid(name, f"{name} must be at most {self.maximum}")
            return value
        if not isinstance(value, str):
            raise Invalid(name, f"{name} must be a string")
        if len(value) < self.min_length:
            raise Invalid(name, f"{name} must not be empty")
        if self.max_length is not None and len(value) > self.max_length:
            raise Invalid(name, f"{name} is too long (at most {self.max_length} characters)")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):  # anchored
            raise Invalid(name, f"{name} {PATTERN_SAYS.get(self.pattern, 'has a wrong form')}")
        if self.gsm7 and not is_gsm7(value):
            raise Invalid(name, f"{name} must use only GSM-7 characters (plain ASCII)")
        return value

    def parse(self, text: str) -> Value:
        """A CSV cell read as this field's type, then checked."""
        if self.kind == "boolean":
            flag = _FLAGS.get(text.strip().lower())
            if flag is None:
                raise Invalid(self.name, f"{self.name} must be true or false, not {text!r}")
            return flag
        if self.kind == "integer":
            if not re.fullmatch(r"\s*-?[0-9]{1,12}\s*", text):
                raise Invalid(self.name, f"{self.name} must be an integer, not {text!r}")
            return self.check(int(text))
        return self.check(text)


_FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _text(table: type[SQLModel], name: str, *, gsm7: bool = False, **kw: Any) -> Spec:
    pattern = ASCII if gsm7 else NO_CONTROLS
    return Spec(
        name, "string", max_length=column_length(table, name), pattern=pattern, gsm7=gsm7, **kw
    )


def _count(name: str, **kw: Any) -> Spec:
    return Spec(name, "integer", minimum=0, maximum=MAX_INT, **kw)


CATEGORY_FIELDS: tuple[Spec, ...] = (
    Spec("slug", "string", max_length=column_length(Category, "slug"), pattern=SLUG, required=True),
    _text(Category, "name_en", min_length=1, gsm7=True, required=True),
    _text(Category, "name_ko", min_length=1, required=True),
    _count("position", default=0),
    Spec("active", "boolean", default=True),
)
PRODUCT_FIELDS: tuple[Spec, ...] = (
    Spec("sku", "string", max_length=column_length(Product, "sku"), pattern=SKU, required=True),
    Spec(
        "category",
        "category",
        max_length=column_length(Category, "slug"),
        pattern=SLUG,
        minimum=1,
        maximum=MAX_INT,
        required=True,
    ),
    _text(Product, "name_en", min_length=1, gsm7=True, required=True),
    _text(Product, "name_ko", min_length=1, required=True),
    _text(Product, "description_en", gsm7=True, default=""),
    _text(Product, "description_ko", default=""),
    _count("price", required=True),
    _count("stock", default=0),
    _count("position", default=0),
    Spec("active", "boolean", default=True),
)
# Identity is not edited in place, and stock moves only through adjust_stock.
CATEGORY_EDITABLE = tuple(s for s in CATEGORY_FIELDS if s.name != "slug")
PRODUCT_EDITABLE = tuple(s for s in PRODUCT_FIELDS if s.name not in {"sku", "stock"})
CSV_COLUMNS = tuple(s.name for s in PRODUCT_FIELDS)


def check_fields(
    specs: Sequence[Spec], values: Mapping[str, object], *, partial: bool = False
) -> dict[str, Value]:
    """The values checked field by field; unknown fields and missing required ones refused."""
    known = {s.name: s for s in specs}
    for name in values:
        if name not in known:
            raise Invalid(name, f"unknown field {name}")
    checked: dict[str, Value] = {}
    for spec in specs:
        if spec.name in values:
            checked[spec.name] = spec.check(values[spec.name])
        elif not partial and spec.required:
            raise Invalid(spec.name, f"{spec.name} is required")
        elif not partial and spec.default is not None:
            checked[spec.name] = spec.default
    return checked


# --- categories -----------------------------------------------------------------------------


def category_row(row: Category) -> dict[str, Value]:
    return {
        "id": _id(row.id),
        "slug": row.slug,
        "name_en": row.name_en,
        "name_ko": row.name_ko,
        "position": row.position,
        "active": row.active,
    }


async def list_categories(db: Database) -> list[dict[str, Value]]:
    async with db.session() as session:
        rows = (await session.exec(select(Category).order_by(*_menu_order(Category)))).all()
    return [category_row(row) for row in rows]


async def create_category(db: Database, values: Mapping[str, object]) -> dict[str, Value]:
    checked = check_fields(CATEGORY_FIELDS, values)
    try:
        async with db.write() as session:
            if await _category(session, str(checked["slug"])) is not None:
                raise Conflict(f"category {checked['slug']} already exists")
            row = Category(**_loose(checked))
            session.add(row)
            await session.flush()
            return category_row(row)
    except IntegrityError:  # created concurrently since the check
        raise Conflict(f"category {checked['slug']} already exists") from None


async def update_category(
    db: Database, slug: str, values: Mapping[str, object]
) -> dict[str, Value]:
    checked = check_fields(CATEGORY_EDITABLE, values, partial=True)
    async with db.write() as session:
        row = await _category(session, slug)
        if row is None:
            raise NotFound(f"no category {slug!r}")
        for name, value in checked.items():
            setattr(row, name, value)
        session.add(row)
        return category_row(row)


async def _category(session: AsyncSession, ref: str | int) -> Category | None:
    """The category with this slug (a string) or id (an integer)."""
    where = col(Category.slug) == ref if isinstance(ref, str) else col(Category.id) == ref
    return (await session.exec(select(Category).where(where))).first()


async def _known_category(session: AsyncSession, ref: Value) -> Category:
    row = await _category(session, ref)
    if row is None:
        raise Invalid("category", f"unknown category {ref!r}")
    return row


# --- products -------------------------------------------------------------------------------


def product_row(row: Product, category: str) -> dict[str, Value]:
    """A product as the API shows it and the CSV holds it (plus its id)."""
    return {
        "id": _id(row.id),
        "sku": row.sku,
        "category": category,
        "name_en": row.name_en,
        "name_ko": row.name_ko,
        "description_en": row.description_en,
        "description_ko": row.description_ko,
        "price": row.price,
        "stock": row.stock,
        "position": row.position,
        "active": row.active,
    }


def _products() -> Any:
    return (
        select(Product, Category.slug)
        .join(Category, col(Product.category_id) == col(Category.id))
        .order_by(*_menu_order(Category), *_menu_order(Product))
    )


async def list_products(db: Database, category: str | None = None) -> list[dict[str, Value]]:
    query = _products()
    if category is not None:
        query = query.where(col(Category.slug) == category)
    async with db.session() as session:
        rows = (await session.exec(query)).all()
    return [product_row(product, slug) for product, slug in rows]


async def get_product(db: Database, sku: str) -> dict[str, Value]:
    async with db.session() as session:
        return await _product_out(session, sku)


async def create_product(db: Database, values: Mapping[str, object]) -> dict[str, Value]:
    checked = check_fields(PRODUCT_FIELDS, values)
    sku = str(checked["sku"])
    try:
        async with db.write() as session:
            category = await _known_category(session, checked.pop("category"))
            if (await session.exec(select(Product.id).where(Product.sku == sku))).first():
                raise Conflict(f"a product with sku {sku} already exists")
            row = Product(category_id=_id(category.id), **_loose(checked))
            session.add(row)
            await session.flush()
            return product_row(row, category.slug)
    except IntegrityError:  # created concurrently since the check
        raise Conflict(f"a product with sku {sku} already exists") from None


async def update_product(db: Database, sku: str, values: Mapping[str, object]) -> dict[str, Value]:
    checked = check_fields(PRODUCT_EDITABLE, values, partial=True)
    async with db.write() as session:
        row = await _product(session, sku)
        if "category" in checked:
            row.category_id = _id((await _known_category(session, checked.pop("category"))).id)
        for name, value in checked.items():
            setattr(row, name, value)
        session.add(row)
        await session.flush()
        return await _product_out(session, sku)


async def adjust_stock(
    db: Database, sku: str, *, delta: int | None = None, to: int | None = None
) -> dict[str, Value]:
    """Move stock by ``delta`` or set it ``to`` a figure; never below zero (:class:`Conflict`).

    The change is one conditional ``UPDATE``, so it composes with orders taking stock at the
    same moment instead of overwriting them.
    """
    statement = update(Product).where(col(Product.sku) == sku)
    if to is not None:
        statement = statement.values(stock=to)
    elif delta is not None:
        # Bounds computed here, not in SQL, so PostgreSQL never overflows INTEGER evaluating them.
        statement = statement.where(
            col(Product.stock) >= max(0, -delta), col(Product.stock) <= MAX_INT - max(0, delta)
        ).values(stock=col(Product.stock) + delta)
    else:
        raise Invalid("delta", "give delta or set")
    statement = statement.returning(col(Product.id)).execution_options(synchronize_session=False)
    async with db.write() as session:
        if (await session.exec(statement)).first() is None:
            row = await _product(session, sku)
            assert delta is not None
            if delta < 0:
                raise Conflict(
                    f"stock of {sku} is {row.stock}; it cannot go down by {-delta} (never below 0)"
                )
            raise Conflict(f"stock of {sku} is {row.stock}; it cannot go up by {delta}")
        return await _product_out(session, sku)


async def _product(session: AsyncSession, sku: str) -> Product:
    row = (await session.exec(select(Product).where(Product.sku == sku))).first()
    if row is None:
        raise NotFound(f"no product {sku!r}")
    return row


async def _product_out(session: AsyncSession, sku: str) -> dict[str, Value]:
    found = (await session.exec(_products().where(col(Product.sku) == sku))).first()
    if found is None:
        raise NotFound(f"no product {sku!r}")
    product, slug = found
    return product_row(product, slug)


# --- CSV ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Imported:
    created: int
    updated: int


async def export_csv(db: Database) -> str:
    """Every product, active or not, in menu order; the file import_csv reads back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for product in await list_products(db):
        writer.writerow(
            [_cell(product[c]) for c in CSV_COLUMNS]  # booleans as true/false
        )
    return out.getvalue()


# A cell that starts with one of these is a formula to a spreadsheet ("=cmd|' /C calc'!A0").
# Exported with a leading apostrophe, which spreadsheets show as text; import takes it off.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _uncell(text: str) -> str:
    """A cell as it was before :func:`_cell` guarded it."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


async def import_csv(db: Database, text: str) -> Imported:
    """Upsert the file's products by sku, all or nothing (:class:`ImportRejected`)."""
    header, rows, errors = _read_csv(text)
    required = {s.name for s in PRODUCT_FIELDS if s.required}
    async with db.write() as session:
        slugs = {c.slug: _id(c.id) for c in (await session.exec(select(Category))).all()}
        existing = {p.sku: p for p in (await session.exec(select(Product))).all()}
        seen: dict[str, int] = {}
        checked_rows: list[dict[str, Value]] = []
        for line, cells in rows:
            values: dict[str, Value] = {}
            for spec in PRODUCT_FIELDS:
                if spec.name not in header:
                    continue
                try:
                    values[spec.name] = spec.parse(_uncell(cells[header.index(spec.name)]))
                except Invalid as error:
                    errors.append(RowError(line, error.field, str(error)))
            sku = values.get("sku")
            if isinstance(sku, str):
                if sku in seen:
                    errors.append(RowError(line, "sku", f"sku {sku} is also on line {seen[sku]}"))
                seen.setdefault(sku, line)
            category = values.get("category")
            if isinstance(category, str) and category not in slugs:
                errors.append(RowError(line, "category", f"unknown category {category!r}"))
            if required <= values.keys():
                checked_rows.append(values)
        if errors:
            raise ImportRejected(sorted(errors, key=lambda e: e.line))
        created = 0
        for values in checked_rows:
            fields = dict(values)
            fields["category_id"] = slugs[str(fields.pop("category"))]
            row = existing.get(str(values["sku"]))
            if row is None:
                defaults = {s.name: s.default for s in PRODUCT_FIELDS if s.default is not None}
                session.add(Product(**_loose({**defaults, **fields})))
                created += 1
                continue
            for name, value in fields.items():
                setattr(row, name, value)
            session.add(row)
        return Imported(created=created, updated=len(checked_rows) - created)


def _read_csv(text: str) -> tuple[list[str], list[tuple[int, list[str]]], list[RowError]]:
    """(header, [(line, cells)], errors); a header problem is rejected at once."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    errors: list[RowError] = []
    header: list[str] = []
    try:
        header = [name.strip() for name in next(reader, [])]
        problems = [f"unknown column {name!r}" for name in header if name not in CSV_COLUMNS]
        problems += [
            f"column {name} appears twice" for name in set(header) if header.count(name) > 1
        ]
        problems += [
            f"missing column {s.name}"
            for s in PRODUCT_FIELDS
            if s.required and s.name not in header
        ]
        if problems:
            raise ImportRejected([RowError(1, None, problem) for problem in problems])
        while True:
            line = reader.line_num + 1
            cells = next(reader, None)
            if cells is None:
                break
            if not any(cell.strip() for cell in cells):
                continue  # blank lines between rows
            if len(cells) != len(header):
                reason = f"the row has {len(cells)} cells; the header has {len(header)}"
                errors.append(RowError(line, None, reason))
                continue
            rows.append((line, cells))
    except csv.Error as error:
        errors.append(RowError(reader.line_num, None, f"unreadable CSV: {error}"))
    if not rows and not errors:
        errors.append(RowError(1, None, "the file has no products"))
    return header, rows, errors


# --- orders ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """Rows newest first; ``next_cursor`` continues below them (None: this was the last)."""

    rows: list[Any]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class OrderDetail:
    order: Order
    zone: DeliveryZone | None
    lines: list[tuple[OrderLine, str | None]]  # with the product's sku
    events: list[OrderEvent]


async def search_orders(
    db: Database,
    *,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    msisdn: str | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> Page:
    """Orders matching every filter given: created in ``[since, until)``, for ``msisdn``."""
    query = select(Order)
    if status is not None:
        query = query.where(col(Order.status) == status)
    if since is not None:
        query = query.where(col(Order.created_at) >= since)
    if until is not None:
        query = query.where(col(Order.created_at) < until)
    if msisdn is not None:
        query = query.where(col(Order.msisdn) == msisdn)
    return await _page(db, query, Order, limit, cursor)


async def order_detail(db: Database, code: str) -> OrderDetail:
    async with db.session() as session:
        order = (await session.exec(select(Order).where(Order.code == code))).first()
        if order is None:
            raise NotFound(f"no order {code}")
        zone = await session.get(DeliveryZone, order.zone_id)
        lines = (
            await session.exec(
                select(OrderLine, Product.sku)
                .join(Product, col(OrderLine.product_id) == col(Product.id), isouter=True)
                .where(OrderLine.order_id == order.id)
                .order_by(col(OrderLine.id))
            )
        ).all()
        events = (
            await session.exec(
                select(OrderEvent)
                .where(OrderEvent.order_id == order.id)
                .order_by(col(OrderEvent.created_at), col(OrderEvent.id))
            )
        ).all()
    return OrderDetail(order, zone, [(line, sku) for line, sku in lines], list(events))


# --- outbox ---------------------------------------------------------------------------------


async def list_outbox(
    db: Database, *, status: str | None = None, limit: int = 50, cursor: int | None = None
) -> Page:
    query = select(OutboundMessage)
    if status is not None:
        query = query.where(col(OutboundMessage.status) == status)
    return await _page(db, query, OutboundMessage, limit, cursor)


async def retry_message(db: Database, id: int) -> OutboundMessage:
    """Put a failed message back in the queue, due now with its attempts reset."""
    async with db.write() as session:
        retried = await session.exec(
            update(OutboundMessage)
            .where(col(OutboundMessage.id) == id, col(OutboundMessage.status) == "failed")
            .values(status="queued", attempts=0, next_attempt_at=utcnow(), lease_until=None)
            .returning(col(OutboundMessage.id))
            .execution_options(synchronize_session=False)
        )
        requeued = retried.first() is not None
        row = await session.get(OutboundMessage, id)
        if row is None:
            raise NotFound(f"no message {id}")
        if not requeued:
            raise Conflict(f"message {id} is {row.status}; only failed messages can be retried")
        return row


async def _page(
    db: Database,
    query: Any,
    table: type[Order] | type[OutboundMessage],
    limit: int,
    cursor: int | None,
) -> Page:
    if cursor is not None:
        query = query.where(col(table.id) < cursor)
    query = query.order_by(col(table.id).desc()).limit(limit + 1)
    async with db.session() as session:
        rows = list((await session.exec(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _id(rows[-1].id) if more else None)


def _menu_order(table: type[Category] | type[Product]) -> tuple[Any, Any]:
    return col(table.position), col(table.id)


def _loose(values: Mapping[str, Value]) -> dict[str, Any]:
    # Checked field by field against the specs; the model's constructor wants them untyped.
    return dict(values)


def _id(value: int | None) -> int:
    # Rows read back from the database always have their primary key.
    assert value is not None
    return value
