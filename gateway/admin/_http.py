"""What every admin handler shares: the app's resources, JSON answers, catalog change news."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.admin._validate import Input
from store.db import Database

Handler = Callable[[web.Request, Input], Awaitable[web.StreamResponse]]


def database(request: web.Request) -> Database:
    return request.config_dict[keys.DATABASE]


def answer(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def error(status: int, reason: str, **extra: Any) -> web.Response:
    """A 4xx: ``{"error": reason}`` (plus ``extra`` fields)."""
    return web.json_response({"error": reason, **extra}, status=status)


async def catalog_changed(request: web.Request) -> None:
    """Every gateway process reloads its catalog before its next hop."""
    await request.config_dict[keys.GATEWAY].sessions.bump_catalog()


def iso(moment: datetime) -> str:
    """A stored (naive UTC) time as RFC 3339."""
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def maybe_iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def moment(text: str | None, *, end: bool) -> datetime | None:
    """A bound as naive UTC. A date means its start, or as an end, the start of the next day.

    A bound past what ``datetime`` holds (year 1 at +10:00, 9999-12-31 as an end) bounds
    nothing, so it is dropped rather than refused.
    """
    if text is None:
        return None
    try:
        if len(text) == len("YYYY-MM-DD"):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time())
            return day + timedelta(days=1) if end else day
        return datetime.fromisoformat(text.upper()).astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        return None
