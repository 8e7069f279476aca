from __future__ import annotations

import re

import pytest

from store.catalog import catalog_is_empty, load_catalog
from store.db import Database
from store.errors import StoreError
from store.models import Category, DeliveryZone, Product
from store.seed import CATEGORIES, PRODUCTS, ZONES, seed, seed_if_empty
from tests.store.factories import count

_KOREAN = re.compile(r"[가-힣0-9 ]+")


def test_seed_table_is_big_enough_for_a_demo() -> None:
    assert len(CATEGORIES) >= 6
    assert len(PRODUCTS) >= 42
    assert len(ZONES) >= 8


def test_seed_english_texts_fit_the_screen_in_plain_ascii() -> None:
    for _, sku, name_en, _, description_en, _, _, _ in PRODUCTS:
        assert len(name_en) <= 18, sku
        assert len(description_en) <= 60, sku
        assert name_en.isascii() and description_en.isascii(), sku
        assert name_en.isprintable() and description_en.isprintable(), sku


def test_seed_korean_texts_fit_the_screen_in_hangul() -> None:
    for _, sku, _, name_ko, _, description_ko, _, _ in PRODUCTS:
        assert len(name_ko) <= 8, sku
        assert len(description_ko) <= 24, sku
        assert _KOREAN.fullmatch(name_ko) and _KOREAN.fullmatch(description_ko), sku
    for _, name_en, name_ko in CATEGORIES:
        assert name_en.isascii() and _KOREAN.fullmatch(name_ko)


def test_seed_prices_and_stock_are_plausible() -> None:
    prices = [p[6] for p in PRODUCTS]
    stocks = [p[7] for p in PRODUCTS]
    assert all(800 <= price <= 60000 for price in prices)
    assert stocks.count(0) == 1
    assert sum(1 <= stock <= 3 for stock in stocks) >= 3
    assert len({p[1] for p in PRODUCTS}) == len(PRODUCTS)  # skus are unique


async def test_seed_loads_every_row(db: Database) -> None:
    assert await catalog_is_empty(db)
    await seed(db)
    assert await count(db, Category) == len(CATEGORIES)
    assert await count(db, Product) == len(PRODUCTS)
    assert await count(db, DeliveryZone) == len(ZONES)
    assert not await catalog_is_empty(db)


async def test_seed_gives_every_category_products(seeded_db: Database) -> None:
    catalog = await load_catalog(seeded_db, "v1")
    assert [c.name_ko for c in catalog.categories] == [ko for _, _, ko in CATEGORIES]
    assert all(len(catalog.by_category[c.id]) >= 5 for c in catalog.categories)
    food = catalog.by_category[catalog.categories[0].id]
    assert [catalog.products[pid].sku for pid in food[:2]] == ["FD-CORNNOODLE", "FD-RICE5"]
    assert "MD-CHONGSIM" in {p.sku for p in catalog.products.values()}  # sold out, still listed
    assert [z.name_en for z in catalog.zones] == [en for en, _, _ in ZONES]


async def test_seed_refuses_a_database_that_has_a_catalog(seeded_db: Database) -> None:
    with pytest.raises(StoreError):
        await seed(seeded_db)
    assert await seed_if_empty(seeded_db) is False
    assert await count(seeded_db, Product) == len(PRODUCTS)


async def test_seed_if_empty_loads_only_once(db: Database) -> None:
    assert await seed_if_empty(db) is True
    assert await seed_if_empty(db) is False
    assert await count(db, Category) == len(CATEGORIES)
