"""Catalog handlers: categories, products, stock, and the CSV round trip.

Every change ends by bumping the catalog version, so each gateway process reloads its
in-process catalog before answering its next hop.
"""

from __future__ import annotations

from aiohttp import web

from gateway.admin._http import catalog_changed, database
from gateway.admin.api import NoInput
from gateway.admin.shapes import (
    CatalogFile,
    CategoryEdit,
    NewCategory,
    NewProduct,
    ProductAt,
    ProductEdit,
    ProductFilter,
    StockMove,
)
from store import catalog_csv, catalog_edits
from store.catalog_csv import Imported
from store.catalog_edits import CategoryOut, ProductOut, StockMoveOut


async def list_categories(request: web.Request, given: NoInput) -> list[CategoryOut]:
    return await catalog_edits.list_categories(database(request))


async def create_category(request: web.Request, given: NewCategory) -> CategoryOut:
    made = await catalog_edits.create_category(database(request), given.body)
    await catalog_changed(request)
    return made


async def update_category(request: web.Request, given: CategoryEdit) -> CategoryOut:
    changed = await catalog_edits.update_category(database(request), given.slug, given.body)
    await catalog_changed(request)
    return changed


async def list_products(request: web.Request, given: ProductFilter) -> list[ProductOut]:
    return await catalog_edits.list_products(database(request), given.category)


async def get_product(request: web.Request, given: ProductAt) -> ProductOut:
    return await catalog_edits.get_product(database(request), given.sku)


async def create_product(request: web.Request, given: NewProduct) -> ProductOut:
    made = await catalog_edits.create_product(database(request), given.body)
    await catalog_changed(request)
    return made


async def update_product(request: web.Request, given: ProductEdit) -> ProductOut:
    changed = await catalog_edits.update_product(database(request), given.sku, given.body)
    await catalog_changed(request)
    return changed


async def adjust_stock(request: web.Request, given: StockMove) -> ProductOut:
    moved = await catalog_edits.adjust_stock(database(request), given.sku, given.body)
    await catalog_changed(request)
    return moved


async def stock_history(request: web.Request, given: ProductAt) -> list[StockMoveOut]:
    return await catalog_edits.stock_history(database(request), given.sku)


async def export_catalog(request: web.Request, given: NoInput) -> web.Response:
    return web.Response(
        text=await catalog_csv.export_csv(database(request)),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="catalog.csv"'},
    )


async def import_catalog(request: web.Request, given: CatalogFile) -> Imported:
    imported = await catalog_csv.import_csv(database(request), given.body)
    await catalog_changed(request)
    return imported
