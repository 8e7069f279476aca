"""Catalog edits: categories, products and stock, as staff make them through the admin API.

Categories and products are few and listed whole, in menu order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database
from store.errors import Conflict, InvalidField, NotFound
from store.fields import (
    SKU,
    SLUG,
    Spec,
    Value,
    check_fields,
    column_length,
    count_field,
    text_field,
)
from store.models import MAX_INT, Category, Product

CATEGORY_FIELDS: tuple[Spec, ...] = (
    Spec("slug", "string", max_length=column_length(Category, "slug"), pattern=SLUG, required=True),
    text_field(Category, "name_en", min_length=1, gsm7=True, required=True),
    text_field(Category, "name_ko", min_length=1, required=True),
    count_field("position", default=0),
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
    text_field(Product, "name_en", min_length=1, gsm7=True, required=True),
    text_field(Product, "name_ko", min_length=1, required=True),
    text_field(Product, "description_en", gsm7=True, default=""),
    text_field(Product, "description_ko", default=""),
    count_field("price", required=True),
    count_field("stock", default=0),
    count_field("position", default=0),
    Spec("active", "boolean", default=True),
)
# Identity is not edited in place, and stock moves only through adjust_stock.
CATEGORY_EDITABLE = tuple(s for s in CATEGORY_FIELDS if s.name != "slug")
PRODUCT_EDITABLE = tuple(s for s in PRODUCT_FIELDS if s.name not in {"sku", "stock"})


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
        raise InvalidField("category", f"unknown category {ref!r}")
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
        raise InvalidField("delta", "give delta or set")
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


def _menu_order(table: type[Category] | type[Product]) -> tuple[Any, Any]:
    return col(table.position), col(table.id)


def _loose(values: Mapping[str, Value]) -> dict[str, Any]:
    # Checked field by field against the specs; the model's constructor wants them untyped.
    return dict(values)


def _id(value: int | None) -> int:
    # Rows read back from the database always have their primary key.
    assert value is not None
    return value
