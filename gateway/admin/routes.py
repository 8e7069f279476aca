"""The admin API's routes, each declared once, mounted behind bearer auth with JSON errors.

Every route under ``/admin/api/`` needs ``Authorization: Bearer <OKRYU_ADMIN_TOKEN>``,
compared in constant time; the token never reaches a log or an answer. With an empty token
the API refuses to start, unless ``OKRYU_DEMO`` is set: then it accepts the well-known demo
token ``demo``, and says so (without the token) in the log.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.admin import cards, catalog, orders, outbox, reports
from gateway.admin._http import error
from gateway.admin.api import PREFIX, Link, NoInput, Route, read, respond
from gateway.admin.openapi import document
from gateway.admin.shapes import (
    Adjustment,
    CardAt,
    CardFilter,
    CatalogFile,
    CategoryEdit,
    CsvText,
    Funnel,
    ImportProblems,
    LedgerPeriod,
    LedgerReport,
    MessageAt,
    NewCard,
    NewCategory,
    NewProduct,
    OrderAt,
    OrderFilter,
    OrderMove,
    OutboxFilter,
    Period,
    ProductAt,
    ProductEdit,
    ProductFilter,
    Stats,
    StockMove,
    TopUp,
)
from gateway.edge import Handler, edge
from gateway.messages import BadRequest
from gateway.settings import SettingsError
from store.cards import CardOut, Statement, TopUpOut
from store.catalog_csv import Imported, ImportRejected
from store.catalog_edits import CategoryOut, ProductOut, StockMoveOut
from store.errors import Conflict, NotFound, StoreError
from store.order_queries import OrderDetailOut, OrderPage
from store.outbox_queries import MessageOut, MessagePage

log = logging.getLogger("okryu.admin")

DEMO_TOKEN = "demo"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="okryu-admin"'}


async def openapi(request: web.Request, given: NoInput) -> web.StreamResponse:
    return web.json_response(_document())


@cache
def _document() -> dict[str, Any]:
    return document(ROUTES, {422: ImportProblems})


def _to_product(at: str) -> tuple[Link, ...]:
    return tuple(Link(to, "sku", at) for to in ("get_product", "update_product", "adjust_stock"))


ROUTES: tuple[Route[Any], ...] = (
    Route("GET", "/openapi.json", "This document", openapi, NoInput, answer=dict[str, Any]),
    Route("GET", "/categories", "Every category, active or not, in menu order",
          catalog.list_categories, NoInput, answer=list[CategoryOut]),
    Route("POST", "/categories", "Add a category", catalog.create_category, NewCategory,
          answer=CategoryOut, status=201, errors=(409,),
          links=(Link("update_category", "slug", "$response.body#/slug"),)),
    Route("PATCH", "/categories/{slug}",
          "Change a category's names, position or active flag ({\"active\": false} deactivates)",
          catalog.update_category, CategoryEdit, answer=CategoryOut, errors=(404,)),
    Route("GET", "/products", "Every product, active or not, in menu order",
          catalog.list_products, ProductFilter, answer=list[ProductOut]),
    Route("POST", "/products", "Add a product", catalog.create_product, NewProduct,
          answer=ProductOut, status=201, errors=(409,), links=_to_product("$response.body#/sku")),
    Route("GET", "/products/{sku}", "One product", catalog.get_product, ProductAt,
          answer=ProductOut, errors=(404,)),
    Route("PATCH", "/products/{sku}",
          "Change a product ({\"active\": false} deactivates; stock moves through /stock)",
          catalog.update_product, ProductEdit, answer=ProductOut, errors=(404,)),
    Route("POST", "/products/{sku}/stock",
          "Move stock by delta ({\"delta\": -3}) or set it ({\"set\": 10}); never below zero",
          catalog.adjust_stock, StockMove, answer=ProductOut, errors=(404, 409)),
    Route("GET", "/products/{sku}/stock",
          "The product's latest stock moves by staff, newest first, each with its reason",
          catalog.stock_history, ProductAt, answer=list[StockMoveOut], errors=(404,)),
    Route("GET", "/catalog.csv", "Every product as CSV", catalog.export_catalog, NoInput,
          answer=CsvText, answer_type="text/csv"),
    Route("POST", "/catalog.csv",
          "Upsert products by sku from CSV, all or nothing; problems are reported per line",
          catalog.import_catalog, CatalogFile, answer=Imported, errors=(422,)),
    Route("GET", "/orders", "Orders, newest first, filtered", orders.list_orders, OrderFilter,
          answer=OrderPage,
          links=tuple(Link(to, "code", "$response.body#/items/0/code")
                      for to in ("get_order", "change_order_status"))),
    Route("GET", "/orders/{code}", "One order with its lines and history", orders.get_order,
          OrderAt, answer=OrderDetailOut, errors=(404,)),
    Route("POST", "/orders/{code}/status",
          "Confirm, dispatch, deliver or cancel (restocks); the customer is told by SMS",
          orders.change_order_status, OrderMove, answer=OrderDetailOut, errors=(404, 409)),
    Route("GET", "/outbox", "Outbound SMS, newest first", outbox.list_outbox, OutboxFilter,
          answer=MessagePage, links=(Link("retry_message", "id", "$response.body#/items/0/id"),)),
    Route("GET", "/reports/funnel",
          "Sessions that reached each step of the order journey in a period, and the drop-off",
          reports.funnel, Period, answer=Funnel),
    Route("GET", "/stats", "The live hop rate of this process; orders and SMS by status",
          reports.stats, NoInput, answer=Stats),
    Route("POST", "/outbox/{id}/retry", "Queue a failed message again, due now, its attempts reset",
          outbox.retry_message, MessageAt, answer=MessageOut, errors=(404, 409)),
    # shop cards (issue 13)
    Route("GET", "/cards", "A customer's shop cards", cards.list_cards, CardFilter,
          answer=list[CardOut]),
    Route("POST", "/cards", "Issue a shop card to a customer, with the PIN they chose",
          cards.issue_card, NewCard, answer=CardOut, status=201,
          links=tuple(Link(to, "number", "$response.body#/number")
                      for to in ("get_card", "top_up", "card_statement"))),
    Route("GET", "/cards/{number}", "One shop card", cards.get_card, CardAt, answer=CardOut,
          errors=(404,)),
    Route("POST", "/cards/{number}/topups",
          "Top a card up with cash taken at the counter; the same reference again is the same"
          " top-up (answered with repeated: true); the customer is told by SMS",
          cards.top_up, TopUp, answer=TopUpOut, errors=(404, 409)),
    Route("POST", "/cards/{number}/adjustments",
          "Correct a card's balance (either sign) against the counter's cash; once per"
          " reference; never below zero", cards.adjust_card, Adjustment, answer=TopUpOut,
          errors=(404, 409)),
    Route("GET", "/cards/{number}/statement",
          "A card's movements, oldest first, with the balance after each",
          cards.card_statement, CardAt, answer=Statement, errors=(404,)),
    Route("GET", "/reports/ledger",
          "Top-ups, payments, refunds and balances per day, and the proof the ledger balances",
          cards.ledger_report, LedgerPeriod, answer=LedgerReport),
)  # fmt: skip


def add_admin_routes(app: web.Application) -> None:
    """Mount the admin API on ``app`` (a :class:`SettingsError` when it has no token)."""
    settings = app[keys.SETTINGS]
    token = settings.admin_token
    if not token:
        if not settings.demo:
            raise SettingsError(
                "OKRYU_ADMIN_TOKEN is empty: set it to a long random secret to serve the admin"
                " API (or set OKRYU_DEMO=1 for a demo with the well-known demo token)"
            )
        token = DEMO_TOKEN
        log.warning(
            "OKRYU_ADMIN_TOKEN is not set: the admin API accepts the well-known demo token;"
            " set a secret token before exposing it"
        )
    # Each route guarded and edged on its own (no middleware: see gateway.edge), and a last
    # route for every other path, so that an unknown route or method answers JSON, after the
    # token, as the API's own refusals do.
    guard = _guard(token)
    admin = web.Application()
    for route in ROUTES:
        admin.router.add_route(route.method, route.path, edge(guard(_bind(route))))
    rest = admin.router.add_resource("/{rest:.*}")
    rest.add_route("*", edge(guard(_unrouted(admin, rest))))
    app.add_subapp(PREFIX, admin)
    # The dashboard page holds no data: everything it shows comes from the API, with the token.
    app.router.add_get("/admin", edge(_to_dashboard))
    app.router.add_get("/admin/", edge(_dashboard))
    app.router.add_static("/admin/", DASHBOARD, append_version=False)


DASHBOARD = Path(__file__).parent.parent / "static" / "admin"


async def _to_dashboard(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/admin/")


async def _dashboard(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        DASHBOARD / "index.html",
        headers={"Content-Security-Policy": "default-src 'self'", "Cache-Control": "no-store"},
    )


def _bind(route: Route[Any]) -> Handler:
    async def bound(request: web.Request) -> web.StreamResponse:
        return respond(route, await route.handler(request, await read(route, request)))

    return bound


def _unrouted(admin: web.Application, rest: web.AbstractResource) -> Handler:
    """No route of the API takes this request: 405 naming the methods its path takes, or
    404 (raised, for the guard to answer as JSON)."""

    async def unrouted(request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        for resource in admin.router.resources():
            if resource is not rest:
                allowed |= (await resource.resolve(request))[1]
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound()

    return unrouted


def _guard(token: str) -> Callable[[Handler], Handler]:
    """The bearer token checked before a handler, and its refusals answered as JSON."""
    expected = token.encode()

    def guarded(handler: Handler) -> Handler:
        async def guard(request: web.Request) -> web.StreamResponse:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            # surrogatepass: whatever bytes a header held, comparing them must not raise.
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("utf-8", "surrogatepass"), expected
            ):
                response = error(401, "missing or wrong bearer token")
                response.headers.update(_CHALLENGE)
                return response
            try:
                return await handler(request)
            except BadRequest as refused:
                return error(refused.status, refused.reason)
            except ImportRejected as rejected:
                problems = ImportProblems(error=str(rejected), errors=rejected.errors)
                return error(422, str(rejected), problems)
            except NotFound as missing:  # an unknown order too
                return error(404, str(missing))
            except Conflict as conflict:  # an illegal status change too
                return error(409, str(conflict))
            except StoreError as refused:  # InvalidField, and any other refusal the store explains
                return error(400, str(refused))
            except web.HTTPException as http:
                if http.status < 400:
                    raise
                response = error(http.status, http.reason)
                if "Allow" in http.headers:
                    response.headers["Allow"] = http.headers["Allow"]
                return response

        return guard

    return guarded
