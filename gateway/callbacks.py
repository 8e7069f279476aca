"""The routes aggregators call: USSD hops, session ends, inbound SMS."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from gateway import keys
from gateway.channels import Channel
from gateway.channels._wire import form_fields
from gateway.channels.africastalking import AfricasTalking
from gateway.messages import BadRequest, Reply, SessionEnd
from gateway.numbers import mask, normalise_msisdn
from menus.text import texts
from store import inbox, outbox
from store.models import utcnow

log = logging.getLogger("okryu.callbacks")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_FIELD = 200
MAX_SMS = 1000


def add_routes(app: web.Application, channels: dict[str, Channel]) -> None:
    """One route per channel at ``/ussd/<slug>``, plus Africa's Talking's other callbacks."""
    for channel in channels.values():
        app.router.add_route(channel.method, f"/ussd/{channel.slug}", ussd_handler(channel))
    at = channels.get("africastalking")
    if isinstance(at, AfricasTalking):
        app.router.add_post("/ussd/africastalking/events", at_events_handler(at))
    app.router.add_post("/sms/africastalking", sms_africastalking)
    app.router.add_post("/sms/africastalking/dlr", dlr_africastalking)


def authorise(request: web.Request, slug: str) -> None:
    """Refuse a callback that fails the channel's authentication: 403, logged without body."""
    refusal = request.app[keys.SETTINGS].auth_for(slug).refusal(request)
    if refusal is not None:
        log.warning("refused a %s callback from %s: %s", slug, request.remote, refusal)
        raise BadRequest("forbidden", 403)


def ussd_handler(channel: Channel) -> Handler:
    async def ussd(request: web.Request) -> web.StreamResponse:
        authorise(request, channel.slug)
        settings = request.app[keys.SETTINGS]
        hop = await channel.parse(request, settings)
        if isinstance(hop, SessionEnd):
            await _record_end(request, hop)
            return channel.render(request, None)
        metrics = request.app[keys.METRICS]
        started = time.perf_counter()
        metrics.inflight.inc()
        try:
            async with asyncio.timeout(settings.hop_deadline):
                reply = await request.app[keys.GATEWAY].handle(
                    hop, settings.budget_for(channel.slug)
                )
        except Exception as error:
            # The subscriber gets a polite last screen and the log the reason; no 5xx reaches
            # the aggregator (it would show the handset a network error).
            metrics.errors.labels(_component(error)).inc()
            if isinstance(error, TimeoutError):
                log.warning(
                    "hop for %s on %s outlasted its deadline", mask(hop.msisdn), channel.slug
                )
            else:
                log.exception("hop failed for %s on %s", mask(hop.msisdn), channel.slug)
            reply = Reply(texts(settings.default_language)("error.unavailable"), True, "error")
        finally:
            metrics.inflight.dec()
        metrics.hops.labels(channel.slug, reply.screen).inc()
        metrics.hop_seconds.labels(channel.slug).observe(time.perf_counter() - started)
        metrics.hop_done()
        return channel.render(request, reply)

    return ussd


def at_events_handler(channel: AfricasTalking) -> Handler:
    async def at_events(request: web.Request) -> web.StreamResponse:
        authorise(request, channel.slug)
        end = await channel.parse_end(request, request.app[keys.SETTINGS])
        await _record_end(request, end)
        return channel.render(request, None)

    return at_events


def _component(error: BaseException) -> str:
    """Which part failed, for the error counter."""
    if isinstance(error, RedisError):
        return "redis"
    if isinstance(error, SQLAlchemyError | OSError):
        return "database"
    if isinstance(error, TimeoutError):
        return "deadline"
    return "hop"


async def _record_end(request: web.Request, end: SessionEnd) -> None:
    request.app[keys.METRICS].sessions.labels(end.status).inc()
    try:
        await request.app[keys.ENDS].record(end)
    except Exception:
        # Losing a session-end record costs a report line; failing the callback would only
        # make the aggregator retry it.
        log.exception("could not record the end of a session for %s", mask(end.msisdn))


async def sms_africastalking(request: web.Request) -> web.StreamResponse:
    """Africa's Talking incoming SMS (PROTOCOLS.md §3.2): keyword commands, answered by SMS."""
    authorise(request, "africastalking")
    settings = request.app[keys.SETTINGS]
    db = request.app[keys.DATABASE]
    data = await form_fields(request)
    msisdn = normalise_msisdn(data.text("from", MAX_FIELD), settings.default_region)
    text = data.text("text", MAX_SMS)
    received = await inbox.record(
        db,
        msisdn=msisdn,
        to=data.text("to", MAX_FIELD, default=""),
        text=text,
        provider_message_id=data.text("id", MAX_FIELD, default="").strip() or None,
    )
    if received.handled:
        return web.Response(text="OK", content_type="text/plain")  # a retry: answered already
    reply = await request.app[keys.COMMANDS].answer(msisdn, text)
    if reply is not None:
        await outbox.enqueue_once(
            db, to=msisdn, body=reply, kind="reply", idempotency_key=f"reply:{received.id}"
        )
    await inbox.mark_handled(db, received.id)
    request.app[keys.DISPATCHER].notify()
    return web.Response(text="OK", content_type="text/plain")


# Africa's Talking delivery statuses (PROTOCOLS.md §3.3): the final ones change the row.
AT_DELIVERY = {
    "Success": "delivered",
    "Failed": "failed",
    "Rejected": "rejected",
    "Sent": "enroute",
    "Submitted": "enroute",
    "Buffered": "enroute",
}


async def dlr_africastalking(request: web.Request) -> web.StreamResponse:
    """Africa's Talking delivery reports: the outbox row of that message id learns its fate."""
    authorise(request, "africastalking")
    data = await form_fields(request)
    message_id = data.ident("id", MAX_FIELD)
    status = data.text("status", MAX_FIELD).strip()
    if status not in AT_DELIVERY:
        raise BadRequest(f"status must be one of {', '.join(AT_DELIVERY)}")
    changed = await outbox.mark_delivery(
        request.app[keys.DATABASE], message_id, AT_DELIVERY[status], utcnow()
    )
    if changed:
        request.app[keys.METRICS].sms_receipts.labels(AT_DELIVERY[status]).inc()
    return web.Response(text="OK", content_type="text/plain")
