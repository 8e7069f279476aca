"""Catalog handlers: categories, products, stock, and the CSV round trip.

Every change ends by bumping the catalog version, so each gateway process reloads its
in-process catalog before answering its next hop.
"""

from __future__ import annotations

from aiohttp import web

from gateway.admin._http import answer, catalog_changed, database
from gateway.admin._validate import Input
from store import catalog_csv, catalog_edits


async def list_categories(request: web.Request, given: Input) -> web.Response:
    return answer(await catalog_edits.list_categories(database(request)))


async def create_category(request: web.Request, given: Input) -> web.Response:
    row = await catalog_edits.create_category(database(request), given.body)
    await catalog_changed(request)
    return answer(row, status=201)


async def update_category(request: web.Request, given: Input) -> web.Response:
    row = await catalog_edits.update_category(database(request), given.path["slug"], given.body)
    await catalog_changed(request)
    return answer(row)


async def list_products(request: web.Request, given: Input) -> web.Response:
    return answer(await catalog_edits.list_products(database(request), given.query.get("category")))


async def get_product(request: web.Request, given: Input) -> web.Response:
    return answer(await catalog_edits.get_product(database(request), given.path["sku"]))


async def create_product(request: web.Request, given: Input) -> web.Response:
    row = await catalog_edits.create_product(database(request), given.body)
    await catalog_changed(request)
    return answer(row, status=201)


async def update_product(request: web.Request, given: Input) -> web.Response:
    row = await catalog_edits.update_product(database(request), given.path["sku"], given.body)
    await catalog_changed(request)
    return answer(row)


async def adjust_stock(request: web.Request, given: Input) -> web.Response:
    row = await catalog_edits.adjust_stock(
        database(request),
        given.path["sku"],
        delta=given.body.get("delta"),
        to=given.body.get("set"),
    )
    await catalog_changed(request)
    return answer(row)


async def export_catalog(request: web.Request, given: Input) -> web.Response:
    return web.Response(
        text=await catalog_csv.export_csv(database(request)),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="catalog.csv"'},
    )


async def import_catalog(request: web.Request, given: Input) -> web.Response:
    imported = await catalog_csv.import_csv(database(request), given.body)
    await catalog_changed(request)
    return answer({"created": imported.created, "updated": imported.updated})
