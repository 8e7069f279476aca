"""Outbox handlers: the SMS queue as staff see it, and a second chance for failed messages."""

from __future__ import annotations

from aiohttp import web

from gateway import keys
from gateway.admin._http import database
from gateway.admin.shapes import MessageAt, OutboxFilter
from store import outbox_queries
from store.outbox_queries import MessageOut, MessagePage


async def list_outbox(request: web.Request, given: OutboxFilter) -> MessagePage:
    return await outbox_queries.list_outbox(
        database(request), status=given.status, limit=given.limit, cursor=given.cursor
    )


async def retry_message(request: web.Request, given: MessageAt) -> MessageOut:
    retried = await outbox_queries.retry_message(database(request), given.id)
    request.config_dict[keys.DISPATCHER].notify()
    return retried
