"""What every admin handler shares: the app's resources, 4xx answers, catalog change news."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from aiohttp import web
from pydantic import BaseModel

from gateway import keys
from gateway.admin.api import Refusal
from store.db import Database


def database(request: web.Request) -> Database:
    return request.config_dict[keys.DATABASE]


def error(status: int, reason: str, shape: BaseModel | None = None) -> web.Response:
    """A 4xx: a :class:`Refusal` (``{"error": reason}``), or ``shape`` when the route says."""
    answer = Refusal(error=reason) if shape is None else shape
    return web.Response(
        body=answer.model_dump_json(),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


async def catalog_changed(request: web.Request) -> None:
    """Every gateway process reloads its catalog before its next hop."""
    await request.config_dict[keys.GATEWAY].versions.bump("catalog")


def moment(bound: date | datetime | None, *, end: bool) -> datetime | None:
    """A bound as naive UTC. A date means its start, or as an end, the start of the next day.

    A bound past what ``datetime`` holds (year 1 at +10:00, 9999-12-31 as an end) bounds
    nothing, so it is dropped rather than refused.
    """
    try:
        if isinstance(bound, datetime):
            return bound.astimezone(UTC).replace(tzinfo=None)
        if isinstance(bound, date):
            day = datetime.combine(bound, datetime.min.time())
            return day + timedelta(days=1) if end else day
    except OverflowError:
        pass
    return None
