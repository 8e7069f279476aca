"""Mounting the admin API: bearer auth, one handler per declared operation, JSON errors.

Every route under ``/admin/api/`` needs ``Authorization: Bearer <OKRYU_ADMIN_TOKEN>``,
compared in constant time; the token never reaches a log or an answer. With an empty token
the API refuses to start, unless ``OKRYU_DEMO`` is set: then it accepts the well-known demo
token ``demo``, and says so (without the token) in the log.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway import keys
from gateway.admin import catalog, orders, outbox, reports
from gateway.admin._http import Handler, error
from gateway.admin._validate import Input, read_input
from gateway.admin.openapi import OPERATIONS, PREFIX, Operation, document
from gateway.messages import BadRequest
from gateway.settings import SettingsError
from store.catalog_csv import ImportRejected
from store.errors import Conflict, NotFound, StoreError

log = logging.getLogger("okryu.admin")

DEMO_TOKEN = "demo"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="okryu-admin"'}


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
    admin = web.Application(middlewares=[_guard(token)])
    the_document = document()
    handlers: dict[str, Handler] = {**HANDLERS, "openapi": _serving(the_document)}
    assert handlers.keys() == {op.id for op in OPERATIONS}, "every operation needs a handler"
    for op in OPERATIONS:
        admin.router.add_route(op.method, op.path.removeprefix(PREFIX), _bind(op, handlers[op.id]))
    app.add_subapp(PREFIX, admin)
    # The dashboard page holds no data: everything it shows comes from the API, with the token.
    app.router.add_get("/admin", _to_dashboard)
    app.router.add_get("/admin/", _dashboard)
    app.router.add_static("/admin/", DASHBOARD, append_version=False)


DASHBOARD = Path(__file__).parent.parent / "static" / "admin"


async def _to_dashboard(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/admin/")


async def _dashboard(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        DASHBOARD / "index.html",
        headers={"Content-Security-Policy": "default-src 'self'", "Cache-Control": "no-store"},
    )


HANDLERS: dict[str, Handler] = {
    "list_categories": catalog.list_categories,
    "create_category": catalog.create_category,
    "update_category": catalog.update_category,
    "list_products": catalog.list_products,
    "create_product": catalog.create_product,
    "get_product": catalog.get_product,
    "update_product": catalog.update_product,
    "adjust_stock": catalog.adjust_stock,
    "export_catalog": catalog.export_catalog,
    "import_catalog": catalog.import_catalog,
    "list_orders": orders.list_orders,
    "get_order": orders.get_order,
    "change_order_status": orders.change_order_status,
    "list_outbox": outbox.list_outbox,
    "retry_message": outbox.retry_message,
    "funnel": reports.funnel,
    "stats": reports.stats,
}


def _serving(the_document: dict[str, Any]) -> Handler:
    async def openapi(request: web.Request, given: Input) -> web.Response:
        return web.json_response(the_document)

    return openapi


def _bind(
    op: Operation, handler: Handler
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def bound(request: web.Request) -> web.StreamResponse:
        return await handler(request, await read_input(op, request))

    return bound


def _guard(token: str) -> Middleware:
    expected = token.encode()

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
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
            rows = [{"line": e.line, "field": e.field, "reason": e.reason} for e in rejected.errors]
            return error(422, str(rejected), errors=rows)
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
