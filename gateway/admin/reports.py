"""Report handlers: the shopping funnel for a period, and the live figures the dashboard shows."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from gateway import keys
from gateway.admin._http import database, moment
from gateway.admin.api import NoInput
from gateway.admin.shapes import Funnel, Period, Stats
from gateway.funnel import report
from store import reports
from store.models import utcnow

DEFAULT_PERIOD = timedelta(days=1)


async def funnel(request: web.Request, given: Period) -> Funnel:
    """Sessions that reached each step of the order journey, and the drop-off after each."""
    until = moment(given.until, end=True) or utcnow() + timedelta(hours=1)
    since = moment(given.since, end=False) or until - DEFAULT_PERIOD
    gateway = request.config_dict[keys.GATEWAY]
    if gateway.funnel is not None:
        await gateway.funnel.flush()  # this process's latest counts too
    steps = report(await reports.funnel(database(request), since, until))
    return Funnel(since=since, until=until, steps=steps)


async def stats(request: web.Request, given: NoInput) -> Stats:
    """Hop rate and orders and SMS by status, now."""
    db = database(request)
    return Stats(
        hops_per_second=request.config_dict[keys.METRICS].hop_rate(),
        orders=await reports.orders_by_status(db),
        sms=await reports.sms_by_status(db),
        timezone=request.config_dict[keys.SETTINGS].timezone,
    )
