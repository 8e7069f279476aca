"""Report handlers: the shopping funnel for a period, and the live figures the dashboard shows."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from gateway import keys
from gateway.admin._http import answer, database, iso, moment
from gateway.admin._validate import Input
from gateway.funnel import report
from store import reports
from store.models import utcnow

DEFAULT_PERIOD = timedelta(days=1)


async def funnel(request: web.Request, given: Input) -> web.Response:
    """Sessions that reached each step of the order journey, and the drop-off after each."""
    until = moment(given.query.get("to"), end=True) or utcnow() + timedelta(hours=1)
    since = moment(given.query.get("from"), end=False) or until - DEFAULT_PERIOD
    gateway = request.config_dict[keys.GATEWAY]
    if gateway.funnel is not None:
        await gateway.funnel.flush()  # this process's latest counts too
    steps = report(await reports.funnel(database(request), since, until))
    return answer(
        {
            "from": iso(since),
            "to": iso(until),
            "steps": [
                {"screen": s.screen, "sessions": s.sessions, "dropped": s.dropped} for s in steps
            ],
        }
    )


async def stats(request: web.Request, given: Input) -> web.Response:
    """Hop rate and orders and SMS by status, now."""
    db = database(request)
    metrics = request.config_dict[keys.METRICS]
    return answer(
        {
            "hops_per_second": metrics.hop_rate(),
            "orders": await reports.orders_by_status(db),
            "sms": await reports.sms_by_status(db),
        }
    )
