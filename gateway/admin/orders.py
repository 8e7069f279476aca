"""Order handlers: search, detail with history, and the status changes staff make.

A status change is one store transaction (status, event with the actor, the customer's SMS in
their language, restock on cancel); the handler then wakes the SMS dispatcher.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import keys
from gateway.admin._http import answer, database, iso, moment
from gateway.admin._validate import Input
from gateway.admin.openapi import STAFF_HEADER, STAFF_PREFIX
from gateway.numbers import normalise_msisdn
from store import order_queries
from store.codes import normalise_code
from store.models import Order


def order_json(order: Order) -> dict[str, Any]:
    return {
        "code": order.code,
        "status": order.status,
        "msisdn": order.msisdn,
        "subtotal": order.subtotal,
        "fee": order.fee,
        "total": order.total,
        "payment_method": order.payment_method,
        "language": order.language,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
    }


def detail_json(detail: order_queries.OrderDetail) -> dict[str, Any]:
    zone = detail.zone
    return {
        **order_json(detail.order),
        "address": detail.order.address,
        "zone": None
        if zone is None
        else {"id": zone.id, "name_en": zone.name_en, "name_ko": zone.name_ko},
        "lines": [
            {
                "product_id": line.product_id,
                "sku": sku,
                "name_en": line.name_en,
                "name_ko": line.name_ko,
                "unit_price": line.unit_price,
                "quantity": line.quantity,
            }
            for line, sku in detail.lines
        ],
        "history": [
            {"status": e.status, "actor": e.actor, "note": e.note, "at": iso(e.created_at)}
            for e in detail.events
        ],
    }


async def list_orders(request: web.Request, given: Input) -> web.Response:
    query = given.query
    phone = query.get("phone")
    region = request.config_dict[keys.SETTINGS].default_region
    page = await order_queries.search_orders(
        database(request),
        status=query.get("status"),
        since=moment(query.get("from"), end=False),
        until=moment(query.get("to"), end=True),
        msisdn=None if phone is None else normalise_msisdn(phone, region),
        limit=query["limit"],
        cursor=query.get("cursor"),
    )
    return answer({"items": [order_json(o) for o in page.rows], "next_cursor": page.next_cursor})


async def get_order(request: web.Request, given: Input) -> web.Response:
    code = normalise_code(given.path["code"])
    return answer(detail_json(await order_queries.order_detail(database(request), code)))


async def change_order_status(request: web.Request, given: Input) -> web.Response:
    db = database(request)
    code = normalise_code(given.path["code"])
    staff = given.headers.get(STAFF_HEADER)
    status = given.body["status"]
    await request.config_dict[keys.GATEWAY].change_status(
        code,
        status,
        actor=f"{STAFF_PREFIX}{staff}" if staff else "staff",
        note=given.body.get("note", ""),
    )
    return answer(detail_json(await order_queries.order_detail(db, code)))
