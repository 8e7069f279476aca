"""Order handlers: search, detail with history, and the status changes staff make.

A status change is one store transaction (status, event with the actor, the customer's SMS in
their language, restock on cancel); the handler then wakes the SMS dispatcher.
"""

from __future__ import annotations

from aiohttp import web

from gateway import keys
from gateway.admin._http import database, moment
from gateway.admin.shapes import STAFF_PREFIX, OrderAt, OrderFilter, OrderMove
from gateway.numbers import normalise_msisdn
from store import order_queries
from store.codes import normalise_code
from store.order_queries import OrderDetailOut, OrderPage


async def list_orders(request: web.Request, given: OrderFilter) -> OrderPage:
    region = request.config_dict[keys.SETTINGS].default_region
    return await order_queries.search_orders(
        database(request),
        status=given.status,
        since=moment(given.since, end=False),
        until=moment(given.until, end=True),
        msisdn=None if given.phone is None else normalise_msisdn(given.phone, region),
        limit=given.limit,
        cursor=given.cursor,
    )


async def get_order(request: web.Request, given: OrderAt) -> OrderDetailOut:
    return await order_queries.order_detail(database(request), normalise_code(given.code))


async def change_order_status(request: web.Request, given: OrderMove) -> OrderDetailOut:
    code = normalise_code(given.code)
    await request.config_dict[keys.GATEWAY].change_status(
        code,
        given.body.status,
        actor=f"{STAFF_PREFIX}{given.staff}" if given.staff else "staff",
        note=given.body.note,
    )
    return await order_queries.order_detail(database(request), code)
