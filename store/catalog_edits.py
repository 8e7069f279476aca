"""Catalog edits: categories, products and stock, as staff make them through the admin API.

The shapes of a category and a product are declared here once, as pydantic models: what a
request may write (``*In``, ``*Patch``), checked against the columns' widths, and how a row is
shown (``*Out``). The CSV import checks its rows with the same models. Categories and
products are few and listed whole, in menu order.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database
from store.errors import Conflict, InvalidField, NotFound
from store.fields import (
    SKU,
    SLUG,
    Absent,
    Count,
    English,
    Patch,
    RowId,
    Shown,
    Text,
    UtcTime,
    Whole,
    Written,
    refused,
)
from store.models import (
    DESCRIPTION_EN_WIDTH,
    DESCRIPTION_KO_WIDTH,
    MAX_INT,
    NAME_WIDTH,
    SKU_WIDTH,
    SLUG_WIDTH,
    STOCK_REASON_WIDTH,
    Category,
    Product,
    StockMove,
)

Slug = Annotated[str, Field(max_length=SLUG_WIDTH, pattern=SLUG)]
Sku = Annotated[str, Field(max_length=SKU_WIDTH, pattern=SKU)]
NameEn = Annotated[English, Field(min_length=1, max_length=NAME_WIDTH)]
NameKo = Annotated[Text, Field(min_length=1, max_length=NAME_WIDTH)]
DescriptionEn = Annotated[English, Field(max_length=DESCRIPTION_EN_WIDTH)]
DescriptionKo = Annotated[Text, Field(max_length=DESCRIPTION_KO_WIDTH)]
CategoryRef = Annotated[Slug | RowId, Field(description="the category's slug, or its id")]


class CategoryIn(Written):
    """A new category."""

    slug: Slug
    name_en: NameEn
    name_ko: NameKo
    position: Count = 0
    active: bool = True


class CategoryPatch(Patch):
    """Changes to a category ({"active": false} deactivates); its slug is not edited."""

    name_en: NameEn | Absent = None
    name_ko: NameKo | Absent = None
    position: Count | Absent = None
    active: bool | Absent = None


class CategoryOut(Shown):
    id: int
    slug: str
    name_en: str
    name_ko: str
    position: int
    active: bool


class ProductIn(Written):
    """A new product; also one row of the catalog's CSV file."""

    sku: Sku
    category: CategoryRef
    name_en: NameEn
    name_ko: NameKo
    description_en: DescriptionEn = ""
    description_ko: DescriptionKo = ""
    price: Count
    stock: Count = 0
    position: Count = 0
    active: bool = True


class ProductPatch(Patch):
    """Changes to a product; its sku is not edited, and stock moves only by :class:`StockChange`."""

    category: CategoryRef | Absent = None
    name_en: NameEn | Absent = None
    name_ko: NameKo | Absent = None
    description_en: DescriptionEn | Absent = None
    description_ko: DescriptionKo | Absent = None
    price: Count | Absent = None
    position: Count | Absent = None
    active: bool | Absent = None


class ProductOut(Shown):
    """A product as the API shows it: its category by slug."""

    id: int
    sku: str
    category: str
    name_en: str
    name_ko: str
    description_en: str
    description_ko: str
    price: int
    stock: int
    position: int
    active: bool


class StockChange(Written):
    """Stock moved by a delta ({"delta": -3}) or set to a figure ({"set": 10}), with a reason
    for the product's stock history ({"delta": 40, "reason": "delivery from the mill"})."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["delta"]}, {"required": ["set"]}]}
    )

    delta: Annotated[int, Field(ge=-MAX_INT, le=MAX_INT), Whole] | Absent = None
    set: Count | Absent = None
    reason: Annotated[Text, Field(max_length=STOCK_REASON_WIDTH)] = ""

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, given: object) -> object:
        if isinstance(given, dict) and len(given.keys() & {"delta", "set"}) != 1:
            raise refused("give exactly one of delta, set")
        return given


class StockMoveOut(Shown):
    """One move of a product's stock: what it changed, the stock after it, and why."""

    delta: int
    stock: int
    reason: str
    created_at: UtcTime


# --- categories -----------------------------------------------------------------------------


async def list_categories(db: Database) -> list[CategoryOut]:
    async with db.session() as session:
        rows = (await session.exec(select(Category).order_by(*_menu_order(Category)))).all()
    return [CategoryOut.model_validate(row) for row in rows]


async def create_category(db: Database, new: CategoryIn) -> CategoryOut:
    try:
        async with db.write() as session:
            if await _category(session, new.slug) is not None:
                raise Conflict(f"category {new.slug} already exists")
            row = Category(**new.model_dump())
            session.add(row)
            await session.flush()
            return CategoryOut.model_validate(row)
    except IntegrityError:  # created concurrently since the check
        raise Conflict(f"category {new.slug} already exists") from None


async def update_category(db: Database, slug: str, change: CategoryPatch) -> CategoryOut:
    async with db.write() as session:
        row = await _category(session, slug)
        if row is None:
            raise NotFound(f"no category {slug!r}")
        for name, value in change.model_dump(exclude_unset=True).items():
            setattr(row, name, value)
        session.add(row)
        return CategoryOut.model_validate(row)


async def _category(session: AsyncSession, ref: str | int) -> Category | None:
    """The category with this slug (a string) or id (an integer)."""
    where = col(Category.slug) == ref if isinstance(ref, str) else col(Category.id) == ref
    return (await session.exec(select(Category).where(where))).first()


async def known_category(session: AsyncSession, ref: str | int) -> Category:
    row = await _category(session, ref)
    if row is None:
        raise InvalidField("category", f"unknown category {ref!r}")
    return row


# --- products -------------------------------------------------------------------------------


def _products() -> Any:
    return (
        select(Product, Category.slug)
        .join(Category, col(Product.category_id) == col(Category.id))
        .order_by(*_menu_order(Category), *_menu_order(Product))
    )


def _shown(product: Product, category: str) -> ProductOut:
    return ProductOut.model_validate({**product.model_dump(), "category": category})


async def list_products(db: Database, category: str | None = None) -> list[ProductOut]:
    query = _products()
    if category is not None:
        query = query.where(col(Category.slug) == category)
    async with db.session() as session:
        rows = (await session.exec(query)).all()
    return [_shown(product, slug) for product, slug in rows]


async def get_product(db: Database, sku: str) -> ProductOut:
    async with db.session() as session:
        return await _product_out(session, sku)


async def create_product(db: Database, new: ProductIn) -> ProductOut:
    try:
        async with db.write() as session:
            category = await known_category(session, new.category)
            if (await session.exec(select(Product.id).where(Product.sku == new.sku))).first():
                raise Conflict(f"a product with sku {new.sku} already exists")
            row = Product(category_id=_id(category.id), **new.model_dump(exclude={"category"}))
            session.add(row)
            await session.flush()
            return _shown(row, category.slug)
    except IntegrityError:  # created concurrently since the check
        raise Conflict(f"a product with sku {new.sku} already exists") from None


async def update_product(db: Database, sku: str, change: ProductPatch) -> ProductOut:
    async with db.write() as session:
        row = await _product(session, sku)
        if change.category is not None:
            row.category_id = _id((await known_category(session, change.category)).id)
        for name, value in change.model_dump(exclude_unset=True, exclude={"category"}).items():
            setattr(row, name, value)
        session.add(row)
        await session.flush()
        return await _product_out(session, sku)


async def adjust_stock(db: Database, sku: str, change: StockChange) -> ProductOut:
    """Move stock by a delta or set it to a figure; never below zero (:class:`Conflict`).
    The move is kept, with its reason, in the product's stock history.

    The change is one conditional ``UPDATE``, so it composes with orders taking stock at the
    same moment instead of overwriting them.
    """
    statement = update(Product).where(col(Product.sku) == sku)
    delta = change.delta
    if change.set is not None:
        statement = statement.values(stock=change.set)
    elif delta is not None:
        # Bounds computed here, not in SQL, so PostgreSQL never overflows INTEGER evaluating them.
        statement = statement.where(
            col(Product.stock) >= max(0, -delta), col(Product.stock) <= MAX_INT - max(0, delta)
        ).values(stock=col(Product.stock) + delta)
    statement = statement.returning(col(Product.id), col(Product.stock)).execution_options(
        synchronize_session=False
    )
    async with db.write() as session:
        before = None
        if change.set is not None:  # the change a figure makes: read under the row's lock
            before = (
                await session.exec(
                    select(Product.stock).where(Product.sku == sku).with_for_update()
                )
            ).first()
        moved = (await session.exec(statement)).first()
        if moved is None:
            row = await _product(session, sku)
            assert delta is not None  # setting a figure fails only for want of the product
            if delta < 0:
                raise Conflict(
                    f"stock of {sku} is {row.stock}; it cannot go down by {-delta} (never below 0)"
                )
            raise Conflict(f"stock of {sku} is {row.stock}; it cannot go up by {delta}")
        product_id, after = moved
        session.add(
            StockMove(
                product_id=product_id,
                delta=after - before if before is not None else (delta or 0),
                stock=after,
                reason=change.reason,
            )
        )
        return await _product_out(session, sku)


async def stock_history(db: Database, sku: str, limit: int = 20) -> list[StockMoveOut]:
    """A product's latest stock moves by staff, newest first."""
    async with db.session() as session:
        product = await _product(session, sku)
        query = (
            select(StockMove)
            .where(StockMove.product_id == product.id)
            .order_by(col(StockMove.id).desc())
            .limit(limit)
        )
        rows = (await session.exec(query)).all()
    return [StockMoveOut.model_validate(row) for row in rows]


async def _product(session: AsyncSession, sku: str) -> Product:
    row = (await session.exec(select(Product).where(Product.sku == sku))).first()
    if row is None:
        raise NotFound(f"no product {sku!r}")
    return row


async def _product_out(session: AsyncSession, sku: str) -> ProductOut:
    found = (await session.exec(_products().where(col(Product.sku) == sku))).first()
    if found is None:
        raise NotFound(f"no product {sku!r}")
    product, slug = found
    return _shown(product, slug)


def _menu_order(table: type[Category] | type[Product]) -> tuple[Any, Any]:
    return col(table.position), col(table.id)


def _id(value: int | None) -> int:
    # Rows read back from the database always have their primary key.
    assert value is not None
    return value
