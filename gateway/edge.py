"""What every request meets first, as a wrapper on each route's handler.

A body no handler could read is refused before any reads it, and a ``BadRequest`` from a
handler becomes its 4xx with the reason. No aggregator, SMSC gateway or browser compresses
what it posts here; a compressed body that is not what it says failed deep inside the body
reader (500, and a traceback logged even for a request refused unread). An unknown charset
failed the same way.

A wrapper rather than an aiohttp middleware: with any middleware on the app (or a sub-app),
aiohttp runs every request through two more coroutine layers, resumed at each of a hop's
awaits (profiled: 3% of a browsing hop's CPU). ``edged`` tells whether a handler has it; a
test walks every route of the app.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from gateway.messages import BadRequest

BODY_SECONDS = 10.0  # the longest a request's body may take to arrive
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MARK = "__okryu_edge__"


def edge(handler: Handler) -> Handler:
    """``handler`` behind the checks every request meets first."""

    async def at_the_edge(request: web.Request) -> web.StreamResponse:
        refusal = await admit(request)
        if refusal is not None:
            return refusal
        try:
            return await handler(request)
        except BadRequest as error:
            return refusal_of(error)

    return mark(at_the_edge)


def edged(handler: object) -> bool:
    """Whether ``handler`` went through :func:`edge` (or does its checks itself)."""
    return bool(getattr(handler, _MARK, False))


def mark(handler: Handler) -> Handler:
    """Say that ``handler`` calls :func:`admit` and maps ``BadRequest`` itself."""
    setattr(handler, _MARK, True)
    return handler


async def admit(request: web.Request) -> web.Response | None:
    """The refusal of a request whose body no handler could read, or None; reads the body
    (within a bound) so that handlers read it from memory."""
    headers = request.headers
    if hdrs.CONTENT_ENCODING in headers:
        encoding = headers[hdrs.CONTENT_ENCODING].strip().lower()
        if encoding not in ("", "identity"):
            reason = f"Content-Encoding {encoding[:20]!r} is not accepted: send the body as it is"
            return refused(415, reason)
    charset = request.charset
    if charset is not None:
        try:
            codecs.lookup(charset)
        except LookupError:
            return refused(400, f"unknown charset {charset[:40]!r}")
    if request.body_exists and not request.content.is_eof():
        # Read now, within a bound: a caller trickling a byte every few seconds would hold
        # a handler (and a connection) for as long as it liked. Handlers read it from memory.
        # (A body that came whole with its headers, as a USSD hop's does, needs no wait.)
        try:
            async with asyncio.timeout(BODY_SECONDS):
                await request.read()
        except TimeoutError:
            return refused(408, f"the body did not arrive within {BODY_SECONDS:g} s")
    return None


def refusal_of(error: BadRequest) -> web.Response:
    """A handler's ``BadRequest``, answered: its status, its reason."""
    return web.Response(status=error.status, text=error.reason)


def refused(status: int, reason: str) -> web.Response:
    # The connection closes after the answer: the unread body is not drained to keep it.
    response = web.Response(status=status, text=reason)
    response.force_close()
    return response
