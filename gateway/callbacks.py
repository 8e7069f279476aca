"""The routes aggregators call: USSD hops, session ends, inbound SMS."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable

from aiohttp import web
from redis.exceptions import ClusterDownError, RedisError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from gateway import keys
from gateway.auth import is_proxied
from gateway.channels import Channel
from gateway.channels._wire import form_fields
from gateway.channels.africastalking import AfricasTalking
from gateway.edge import Handler, admit, edge, mark, refusal_of
from gateway.logs import describe
from gateway.messages import BadRequest, Inbound, Reply, SessionEnd
from gateway.numbers import mask
from gateway.settings import Settings, SettingsError
from menus.text import texts
from store import inbox, outbox
from store.db import DRIVER_OUTAGES
from store.models import (
    PROVIDER_ID_LIMIT,
    PROVIDER_ID_WIDTH,
    SMS_BODY_WIDTH,
    SMS_TO_WIDTH,
    utcnow,
)

log = logging.getLogger("okryu.callbacks")

SMS_CHANNEL = "africastalking"  # inbound SMS and delivery reports: authenticated as this one
SMPP_CHANNEL = "smpp"  # USSD and SMS over the operator's SMPP bind (gateway/smpp/ussd.py)


def add_routes(app: web.Application, channels: dict[str, Channel]) -> None:
    """One route per served channel at ``/ussd/<slug>``, plus Africa's Talking's callbacks.

    Outside demo mode, refuses (:class:`SettingsError`) to serve a callback that has neither
    a secret nor an allowlist, unless it is declared open (``OKRYU_CALLBACK_OPEN``) or the
    gateway listens on loopback only.
    """
    settings = app[keys.SETTINGS]
    served = served_channels(settings, channels)
    sms = SMS_CHANNEL in served or settings.sms_provider == SMS_CHANNEL
    app[keys.OPEN_CALLBACKS] = check_authentication(
        settings, [*served, *([SMS_CHANNEL] if sms else [])]
    )
    outages = Outages()  # one per app: every channel's hops fail on the same Redis
    lane = app[keys.FAST_LANE] = {}
    for channel in served.values():
        path, handler = f"/ussd/{channel.slug}", ussd_handler(app, channel, outages)
        app.router.add_route(channel.method, path, handler)
        lane[(channel.method, path)] = handler
    at = served.get(SMS_CHANNEL)
    if isinstance(at, AfricasTalking):
        app.router.add_post("/ussd/africastalking/events", edge(at_events_handler(at)))
    if sms:
        app.router.add_post("/sms/africastalking", edge(sms_africastalking))
        app.router.add_post("/sms/africastalking/dlr", edge(dlr_africastalking))


def served_channels(settings: Settings, channels: dict[str, Channel]) -> dict[str, Channel]:
    """The channels ``OKRYU_CHANNELS`` names (all of them when unset)."""
    if settings.channels is None:
        return channels
    # "smpp" is no callback: the bind runs when OKRYU_USSD_SMPP_HOST is set.
    unknown = [slug for slug in settings.channels if slug not in {*channels, SMPP_CHANNEL}]
    if unknown:
        raise SettingsError(
            f"OKRYU_CHANNELS names unknown channels {', '.join(unknown)};"
            f" known: {', '.join(channels)}"
        )
    return {slug: channels[slug] for slug in settings.channels if slug in channels}


def check_authentication(settings: Settings, slugs: Iterable[str]) -> list[str]:
    """Refuse to serve open callbacks in production; the open ones that may run so."""
    open_ = sorted({slug for slug in slugs if settings.auth_for(slug).is_open})
    undeclared = [slug for slug in open_ if not settings.may_run_open(slug)]
    if undeclared and not _is_loopback(settings.host):
        raise SettingsError(
            f"callbacks on {', '.join(undeclared)} would take requests from anyone: set"
            " OKRYU_CALLBACK_SECRETS or OKRYU_CALLBACK_ALLOW for them, leave them out of"
            " OKRYU_CHANNELS, or (on a private network only) list them in OKRYU_CALLBACK_OPEN"
        )
    return open_


def warn_open(app: web.Application) -> None:
    """Say, once the gateway serves, which callbacks anyone who reaches them may call."""
    open_ = app[keys.OPEN_CALLBACKS]
    if open_:
        log.warning(
            "callbacks on %s are open: anyone who reaches them can dial or text as any number",
            ", ".join(open_),
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authorise(request: web.Request, settings: Settings, slug: str) -> None:
    """Refuse a callback that fails the channel's authentication: 403, logged without body."""
    auth = settings.auth_for(slug)
    refusal = auth.refusal(request)
    if refusal is None and auth.is_open and not settings.may_run_open(slug) and is_proxied(request):
        # Open only because the gateway listens on loopback: a proxy's request is from anywhere.
        refusal = "an undeclared open callback takes no proxied requests"
    if refusal is not None:
        log.warning("refused a %s callback from %s: %s", slug, request.remote, refusal)
        raise BadRequest("forbidden", 403)


def ussd_handler(app: web.Application, channel: Channel, outages: Outages) -> Handler:
    # The hop's own edge (gateway.edge), inline: one coroutine layer less on the hottest path.
    # It reads nothing of the request's routing (not even request.app): the fast lane
    # (gateway.lanes) hands it requests that never met the router.
    settings = app[keys.SETTINGS]

    async def ussd(request: web.Request) -> web.StreamResponse:
        refusal = await admit(request)
        if refusal is not None:
            return refusal
        try:
            authorise(request, settings, channel.slug)
            hop = await channel.parse(request, settings)
        except BadRequest as error:
            return refusal_of(error)
        return channel.render(request, await answer_hop(app, channel.slug, hop, outages))

    return mark(ussd)


async def answer_hop(
    app: web.Application, slug: str, hop: Inbound | SessionEnd, outages: Outages
) -> Reply | None:
    """The answer to one hop of channel ``slug``, whatever carried it (an HTTP callback, an
    SMPP bind): the hop run within the deadline, or None for a session-end notice (recorded).

    Never raises for a hop: the subscriber gets a polite last screen and the log the reason.
    """
    settings = app[keys.SETTINGS]
    if hop.service_code not in settings.service_codes:
        # Another code routed here by mistake (or a caller trying codes): nothing to
        # remember, and one short screen that says so.
        return None if isinstance(hop, SessionEnd) else _unknown(settings)
    if isinstance(hop, SessionEnd):
        await record_end(app, hop)
        return None
    metrics = app[keys.METRICS]
    gateway = app[keys.GATEWAY]
    started = time.perf_counter()
    metrics.inflight.inc()
    try:
        with gateway.deadlines.watch():
            reply = await gateway.handle(hop, settings.budget_for(slug))
    except Exception as error:
        # No 5xx reaches the aggregator (it would show the handset a network error).
        component = _component(error)
        metrics.errors.labels(component).inc()
        if isinstance(error, TimeoutError):
            log.warning("hop for %s on %s outlasted its deadline", mask(hop.msisdn), slug)
        elif _is_outage(error):
            # Redis or the database is down: the same line for every hop would drown the
            # log. One line now and then, with a count; tracebacks are for bugs.
            outages.note(component, error)
        else:
            log.exception("hop failed for %s on %s", mask(hop.msisdn), slug)
        reply = Reply(texts(settings.default_language)("error.unavailable"), True, "error")
    finally:
        metrics.inflight.dec()
    metrics.hop_answered(slug, reply.screen, time.perf_counter() - started)
    return reply


def _unknown(settings: Settings) -> Reply:
    return Reply(texts(settings.default_language)("error.unknown_code"), True, "unknown_code")


def at_events_handler(channel: AfricasTalking) -> Handler:
    async def at_events(request: web.Request) -> web.StreamResponse:
        settings = request.app[keys.SETTINGS]
        authorise(request, settings, channel.slug)
        end = await channel.parse_end(request, settings)
        if end.service_code in settings.service_codes:
            await record_end(request.app, end)
        return channel.render(request, None)

    return at_events


class Outages:
    """One log line per component every ``every`` seconds while hops fail on it."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}

    def note(self, component: str, error: BaseException) -> None:
        now = time.monotonic()
        self._since[component] = self._since.get(component, 0) + 1
        if now - self._last.get(component, -self.every) < self.every:
            return
        failed = self._since.pop(component)
        self._last[component] = now
        log.warning(
            "hops failing: %s unavailable (%s); %d failed since the last such line",
            component, describe(error), failed,
        )  # fmt: skip


# Redis or the database out of reach (not a query they refused); on a Redis Cluster, a master
# failing over (its slots unserved until its replica takes over).
_OUTAGE = (
    RedisConnectionError, RedisTimeoutError, OperationalError, InterfaceError, OSError,
    ClusterDownError, TryAgainError, SlotNotCoveredError, *DRIVER_OUTAGES,
)  # fmt: skip


def _is_outage(error: BaseException) -> bool:
    return isinstance(error, _OUTAGE)


def _component(error: BaseException) -> str:
    """Which part failed, for the error counter."""
    if isinstance(error, RedisError):
        return "redis"
    if isinstance(error, (SQLAlchemyError, OSError, *DRIVER_OUTAGES)):
        return "database"
    if isinstance(error, TimeoutError):
        return "deadline"
    return "hop"


async def record_end(app: web.Application, end: SessionEnd) -> None:
    """Count and keep the end of a session (its cart reminder follows from it)."""
    app[keys.METRICS].sessions.labels(end.status).inc()
    try:
        await app[keys.ENDS].record(end)
    except Exception:
        # Losing a session-end record costs a report line; failing the callback would only
        # make the aggregator retry it.
        log.exception("could not record the end of a session for %s", mask(end.msisdn))


async def sms_africastalking(request: web.Request) -> web.StreamResponse:
    """Africa's Talking incoming SMS (PROTOCOLS.md §3.2): keyword commands, answered by SMS."""
    settings = request.app[keys.SETTINGS]
    authorise(request, settings, SMS_CHANNEL)
    data = await form_fields(request)
    await receive_sms(
        request.app,
        msisdn=data.phone("from", settings.default_region),
        to=data.text("to", SMS_TO_WIDTH, default=""),
        text=data.input("text", SMS_BODY_WIDTH),  # a stray control byte earns the help text
        provider_message_id=data.text("id", PROVIDER_ID_WIDTH, default="").strip() or None,
    )
    return web.Response(text="OK", content_type="text/plain")


async def receive_sms(
    app: web.Application, *, msisdn: str, to: str, text: str, provider_message_id: str | None
) -> None:
    """An incoming SMS, whatever carried it: kept, its command run and answered by SMS under
    the reply rules (``gateway/replies.py``); a retry of one handled already does nothing."""
    db = app[keys.DATABASE]
    received = await inbox.record(
        db, msisdn=msisdn, to=to, text=text, provider_message_id=provider_message_id
    )
    if received.handled:
        return  # a retry: answered already
    guard = app[keys.REPLIES]
    if guard.serves(msisdn):  # a foreign sender is not a customer: no command, no reply
        reply = await app[keys.COMMANDS].answer(msisdn, text)
        refusal = None if reply is None else await guard.refusal(msisdn)
        if reply is not None and refusal is None:
            await outbox.enqueue_once(
                db, to=msisdn, body=reply, kind="reply", idempotency_key=f"reply:{received.id}"
            )
            app[keys.DISPATCHER].notify()
        elif refusal is not None:
            app[keys.METRICS].replies_dropped.labels(refusal).inc()
    else:
        app[keys.METRICS].replies_dropped.labels("region").inc()
    await inbox.mark_handled(db, received.id)


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
    """Africa's Talking delivery reports: the outbox row of that message id learns its fate.

    A final report for an id no part has yet is kept until that part is recorded: AT can
    report a message before its answer to the send is recorded, and cannot be asked to
    report it again. An id longer than the column is matched by its stored form.
    """
    authorise(request, request.app[keys.SETTINGS], SMS_CHANNEL)
    data = await form_fields(request)
    message_id = data.ident("id", PROVIDER_ID_LIMIT)
    status = data.ident("status")
    if status not in AT_DELIVERY:
        raise BadRequest(f"status must be one of {', '.join(AT_DELIVERY)}")
    state = AT_DELIVERY[status]
    outcome = await outbox.record_receipt(
        request.app[keys.DATABASE], message_id, state, utcnow(), keep=True
    )
    if outcome == "recorded":
        request.app[keys.METRICS].sms_receipts.labels(state).inc()
    elif outcome == "kept":
        log.info(
            "kept a %s report for %s until its send is recorded",
            state,
            outbox.stored_id(message_id),
        )
    return web.Response(text="OK", content_type="text/plain")
