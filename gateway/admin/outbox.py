"""Outbox handlers: the SMS queue as staff see it, and a second chance for failed messages."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import keys
from gateway.admin._http import answer, database, iso, maybe_iso
from gateway.admin._validate import Input
from store import outbox_queries
from store.models import OutboundMessage


def message_json(row: OutboundMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "to": row.to,
        "body": row.body,
        "kind": row.kind,
        "order_id": row.order_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "provider": row.provider,
        "provider_message_id": row.provider_message_id,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "sent_at": maybe_iso(row.sent_at),
        "delivered_at": maybe_iso(row.delivered_at),
    }


async def list_outbox(request: web.Request, given: Input) -> web.Response:
    page = await outbox_queries.list_outbox(
        database(request),
        status=given.query.get("status"),
        limit=given.query["limit"],
        cursor=given.query.get("cursor"),
    )
    return answer(
        {"items": [message_json(row) for row in page.rows], "next_cursor": page.next_cursor}
    )


async def retry_message(request: web.Request, given: Input) -> web.Response:
    row = await outbox_queries.retry_message(database(request), given.path["id"])
    request.config_dict[keys.DISPATCHER].notify()
    return answer(message_json(row))
