"""The aiohttp application: one factory, one cleanup context per resource."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from redis.exceptions import RedisClusterException, RedisError
from sqlalchemy import text

from gateway import keys, redis_clients
from gateway.admin import add_admin_routes
from gateway.background import Background
from gateway.callbacks import SMPP_CHANNEL, add_routes
from gateway.catalog import (
    EMPTY_CATALOG,
    CatalogCache,
    CatalogVersions,
    CatalogWatch,
    empty_catalog,
)
from gateway.channels import load_channels
from gateway.edge import edge
from gateway.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from gateway.ends import SessionEnds
from gateway.funnel import FunnelCounter
from gateway.hop import Gateway
from gateway.keywords import Commands
from gateway.logs import describe
from gateway.messages import BadRequest
from gateway.metrics import Metrics
from gateway.numbers import normalise_msisdn
from gateway.pipeliner import Pipeliner
from gateway.promises import Promises
from gateway.replies import ReplyGuard
from gateway.sessions import SessionStore
from gateway.settings import Settings, SettingsError
from gateway.simulator_web import add_simulator_routes
from gateway.smpp.provider import SmppProvider
from gateway.smpp.receipts import outbox_receipts
from gateway.smpp.ussd import USSD_SMPP, UssdOverSmpp
from gateway.sms.dispatcher import Dispatcher
from gateway.sms.factory import make_provider
from gateway.sms.pacer import Pacer
from gateway.startup import StartupError, cause, database_failures
from menus.engine import make_engine_factory
from menus.shop import Shop
from store import migrate, outbox, reports
from store.db import Database
from store.seed import seed_if_empty

log = logging.getLogger("okryu.app")
FUNNEL_FLUSH_SECONDS = 10.0
PROMISE_INTERVAL = 15.0  # seconds between looks at promises a dead process left

# How the HTTP server runs the app (okryu serve's runner; tests pass them to theirs). Bodies
# are not decompressed by the server: a body that says it is gzip and is not failed inside
# the parser (a 500, a traceback logged even for a request refused unread); unread, a coded
# body is refused with its reason by gateway.edge instead.
SERVER_OPTIONS: dict[str, Any] = {"auto_decompress": False, "keepalive_timeout": 75.0}
# A young collection once 10,000 more GC-tracked objects have been made than freed (CPython
# 3.11: 700). An order journey's hops keep their state across waits, so under order load the
# young collections ran 36-54 times a second, walking the young objects then alive: 8-12 us of
# an order hop (README, Benchmark). At 10,000 none ran in any measured window; each that runs
# walks more, and garbage in cycles lives longer, bounded by the same count.
YOUNG_COLLECTION = 10_000


def create_app(
    settings: Settings, *, redis: redis_clients.Client | None = None, freeze_gc: bool = False
) -> web.Application:
    """The gateway. ``redis`` lets a caller supply its own client (tests count its trips).

    ``freeze_gc`` (for a serving process): once started, move everything alive into the
    garbage collector's permanent generation. Full collections then walk only what hops
    allocate, instead of pausing every hop in flight for ~45 ms every few seconds. Young
    collections then wait for ``YOUNG_COLLECTION`` objects.
    """
    app = web.Application()  # no middleware: gateway.edge wraps each route instead
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = Metrics()
    app.cleanup_ctx.append(_redis_ctx(redis))
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_http_ctx)
    app.cleanup_ctx.append(_sms_ctx)
    app.cleanup_ctx.append(_gateway_ctx)
    app.cleanup_ctx.append(_smpp_ctx)
    app.router.add_get("/healthz", edge(healthz))
    app.router.add_get("/readyz", edge(readyz))
    app.router.add_get("/metrics", edge(metrics))
    channels = load_channels(settings.channels_file)
    # The slugs settings name, now that the file is read; "smpp" is the USSD centre's bind.
    settings.check_channels([*channels, SMPP_CHANNEL])
    add_routes(app, channels)
    add_admin_routes(app)  # refuses (SettingsError) without a token outside demo mode
    if settings.simulator:
        if not settings.demo:
            # The web handset dials as any phone number it is given (and reads its SMS):
            # a tester's tool, never something to expose on a live gateway.
            raise SettingsError("OKRYU_SIMULATOR=1 needs OKRYU_DEMO=1: it can act as any number")
        add_simulator_routes(app)
    if freeze_gc:
        app.on_startup.append(_freeze_gc)
    if settings.demo:  # every number's SMS, unauthenticated: a development tool only
        app.router.add_get("/dev/sms", edge(dev_inbox))
    return app


async def _freeze_gc(app: web.Application) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])


# --- resources ------------------------------------------------------------------------------


def _redis_ctx(
    given: redis_clients.Client | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.SETTINGS]
        if given is not None:
            await _answers(given, settings.redis_url)
            app[keys.REDIS] = given
            yield
            return
        embedded: EmbeddedRedis | None = None
        url = settings.redis_url
        if url is None:
            embedded = EmbeddedRedis()
            try:
                url = await embedded.start()
            except (EmbeddedRedisError, OSError) as error:
                raise StartupError(
                    f"cannot start the embedded redis-server (OKRYU_REDIS_URL is unset): "
                    f"{cause(error)}"
                ) from error
            log.info("started an embedded redis-server at %s", url)
        try:
            client = redis_clients.connect(url, settings.redis_connections)
        except ValueError as error:  # not a redis://, rediss://, unix:// or redis+cluster:// URL
            raise _unreachable(error, settings.redis_url) from error
        try:
            await _answers(client, settings.redis_url)
            app[keys.REDIS] = client
            yield
        finally:
            await client.aclose()
            if embedded is not None:
                await embedded.stop()

    return redis_ctx


async def _answers(client: redis_clients.Client, configured: str | None) -> None:
    """Start only with a Redis that answers: else one line naming the setting."""
    try:
        await client.ping()
    except (RedisError, RedisClusterException) as error:  # a cluster with no node reachable
        raise _unreachable(error, configured) from error


def _unreachable(error: Exception, configured: str | None) -> StartupError:
    return StartupError(f"cannot reach Redis (OKRYU_REDIS_URL): {cause(error, configured)}")


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    with database_failures(settings.database_url):
        db = Database(settings.database_url)
        await migrate.upgrade(db)
    if settings.seed_if_empty and await seed_if_empty(db):
        log.info("seeded the demo catalog")
    app[keys.DATABASE] = db
    try:
        yield
    finally:
        await db.close()


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[keys.HTTP] = session
        yield


async def _sms_ctx(app: web.Application) -> AsyncIterator[None]:
    """The SMS provider and the outbox dispatcher (whose loop runs here unless turned off)."""
    settings = app[keys.SETTINGS]
    db = app[keys.DATABASE]
    provider = make_provider(settings, app[keys.HTTP])
    dispatcher = app[keys.DISPATCHER] = Dispatcher(
        db,
        provider,
        give_up=timedelta(seconds=settings.sms_give_up),
        pacer=Pacer(settings.sms_rate) if settings.sms_rate > 0 else None,
    )
    if isinstance(provider, SmppProvider):
        provider.on_receipt = outbox_receipts(db, app[keys.METRICS])
        await provider.start()  # binds in the background; a down SMSC is retried, not fatal
    background = Background()
    if settings.sms_dispatch:
        poll = settings.sms_poll_interval
        background.start(lambda: dispatcher.run(poll, background.stopping), name="sms")
    try:
        yield
    finally:
        await background.stop()
        if isinstance(provider, SmppProvider):
            await provider.close()


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sessions, the catalog, the hop, session ends and SMS commands."""
    settings = app[keys.SETTINGS]
    db = app[keys.DATABASE]
    dispatcher = app[keys.DISPATCHER]

    async def sms_queued() -> None:
        dispatcher.notify()

    catalogs = CatalogCache(db)
    # One pipeliner (one lane) for the hops' sessions and the stock bumps of their orders.
    pipeliner = Pipeliner(app[keys.REDIS])
    versions = CatalogVersions(
        app[keys.REDIS], settings.redis_prefix, poll=settings.catalog_poll, pipeliner=pipeliner
    )
    funnel = FunnelCounter(db)
    sessions = SessionStore(app[keys.REDIS], settings.redis_prefix, settings.cart_ttl, pipeliner)
    app[keys.REPLIES] = ReplyGuard(
        app[keys.REDIS],
        settings.redis_prefix,
        regions=settings.reply_regions,
        per_sender=settings.sms_replies_per_sender,
        per_hour=settings.sms_replies_per_hour,
    )
    app[keys.ENDS] = SessionEnds(
        db=db,
        sessions=sessions,
        dial=settings.service_code,
        reminder_delay=timedelta(seconds=settings.reminder_delay),
        default_language=settings.default_language,
        notify=sms_queued,
        serves=app[keys.REPLIES].serves,
    )
    gateway = app[keys.GATEWAY] = Gateway(
        sessions=sessions,
        catalogs=catalogs,
        versions=versions,
        db=db,
        engine_for=make_engine_factory(Shop(), settings),
        on_sms_queued=sms_queued,
        resume_ttl=settings.resume_ttl,
        deadline=settings.hop_deadline,
        dial=settings.service_code,
        retry_window=settings.retry_window,
        metrics=app[keys.METRICS],
        funnel=funnel,
        promises=Promises(app[keys.REDIS], settings.redis_prefix),
        pin_lock=settings.pin_lock,
    )
    app[keys.COMMANDS] = Commands(
        db,
        dial=settings.service_code,
        default_language=settings.default_language,
        change_status=gateway.change_status,
    )
    await versions.refresh()  # the first hops need them before the subscription is up
    watch = CatalogWatch(db, versions)
    await watch.check()  # what the catalog is now: a change from here on is noticed
    catalog = await catalogs.get(versions.catalog_tag, versions.stock_tag)
    if empty_catalog(catalog):
        log.warning(EMPTY_CATALOG)
    background = Background()
    stopping = background.stopping
    background.start(lambda: funnel.run(FUNNEL_FLUSH_SECONDS, stopping), name="funnel")
    background.start(lambda: _keep_promises(gateway, background), name="promises")
    background.start(lambda: versions.run(stopping), name="catalog versions")
    background.start(lambda: watch.run(stopping), name="catalog watch")
    try:
        yield
    finally:
        await background.stop()  # the promise keeper first: no placement starts after close
        await gateway.close()
        await funnel.close()
        await catalogs.close()
        await sessions.close()
        await versions.close()


async def _smpp_ctx(app: web.Application) -> AsyncIterator[None]:
    """The operator's SMPP bind: USSD dialogues and SMS from subscribers (channel ``smpp``).

    One bind carries both USSD and the outbox's SMS when ``OKRYU_SMS_PROVIDER=smpp`` shares
    it (``Settings.sms_over_ussd_bind``); an SMS provider's own bind takes subscribers' SMS.
    Started last, once every hop can be answered; until then the centre is asked to resend.
    """
    settings = app[keys.SETTINGS]
    channel = app[USSD_SMPP] = UssdOverSmpp(app, settings)
    provider = app[keys.DISPATCHER].provider
    sms_bind = provider if isinstance(provider, SmppProvider) else None
    own: SmppProvider | None = None
    if settings.ussd_smpp:
        if sms_bind is not None and settings.sms_over_ussd_bind:
            channel.attach(sms_bind, ussd=True)
        else:
            own = SmppProvider.from_ussd_settings(settings)
            own.on_receipt = outbox_receipts(app[keys.DATABASE], app[keys.METRICS])
            channel.attach(own, ussd=True)
            await own.start()  # binds in the background; a down centre is retried, not fatal
    if sms_bind is not None and not settings.sms_over_ussd_bind:
        channel.attach(sms_bind, ussd=False)
    try:
        yield
    finally:
        for bind in (sms_bind, own):
            if bind is not None:
                bind.on_mobile = None  # from now on the centre keeps what it sends
        await channel.close()
        if own is not None:
            await own.close()


async def _keep_promises(gateway: Gateway, background: Background) -> None:
    """Now (after a crash, promises may be waiting) and every while: keep old promises."""
    while True:
        try:
            kept = await gateway.keep_promises()
            if kept:
                log.info("kept %d promises of an SMS made before a restart", kept)
        except Exception as error:
            log.warning("keeping promises failed (%s); trying again later", describe(error))
        if await background.pause(PROMISE_INTERVAL):
            return


# --- handlers -------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    worker = os.environ.get("OKRYU_WORKER")  # set by okryu serve --workers (gateway.workers)
    return web.json_response({"status": "ok", "worker": int(worker) if worker else 0})


async def readyz(request: web.Request) -> web.Response:
    problems: dict[str, str] = {}
    try:
        await request.app[keys.REDIS].ping()
    except Exception as error:  # readiness reports, it does not raise
        problems["redis"] = type(error).__name__
    try:
        async with request.app[keys.DATABASE].session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except Exception as error:
        problems["database"] = type(error).__name__
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    # Ready to answer, yet a shop with nothing to sell says so: staff can fill the catalog
    # while it serves, and no hop needs the database to tell an empty shop.
    gateway = request.app[keys.GATEWAY]
    catalog = await gateway.catalogs.get(gateway.versions.catalog_tag, gateway.versions.stock_tag)
    details = {
        "categories": len(catalog.categories),
        "products": len(catalog.products),
        "zones": len(catalog.zones),
    }
    body: dict[str, object] = {"status": "ok", "catalog": details}
    if empty_catalog(catalog):
        body["warnings"] = [EMPTY_CATALOG]
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics: this process's counters, the database's order and SMS counts."""
    db = request.app[keys.DATABASE]
    body = request.app[keys.METRICS].render(
        await reports.orders_by_status(db), await reports.sms_by_status(db)
    )
    return web.Response(body=body, headers={"Content-Type": Metrics.content_type})


async def dev_inbox(request: web.Request) -> web.Response:
    """The development SMS inbox the handset simulators read (demo / log provider only)."""
    settings = request.app[keys.SETTINGS]
    to = normalise_msisdn(request.query.get("to", ""), settings.default_region)
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        raise BadRequest("after must be an integer") from None
    rows = await outbox.sent_to(request.app[keys.DATABASE], to, after)
    return web.json_response(
        {"messages": [{"id": i, "body": body, "at": at.isoformat()} for i, body, at in rows]}
    )
