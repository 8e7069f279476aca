"""The USSD hop's fast lane past aiohttp's router.

aiohttp's Application handles each request by resolving its route (a URL object built from
the path, a match-info object, the sub-app walk) before calling the handler: 4% of a browsing
hop's CPU, profiled under the peer bench's load, for a route that is one of a handful of exact
paths. Here the server's request handler first looks the request's method and raw path up in
the USSD routes (``keys.FAST_LANE``, filled by ``gateway.callbacks.add_routes``); a hit goes
straight to its handler, everything else (the admin API, the web handset, a path with a query
or an odd spelling, a wrong method) to the Application as before. A USSD handler reads nothing
of the routing (not ``request.app``, not ``match_info``) so it answers the same either way.

``install`` is called on a runner once it is set up, before it serves: ``okryu serve`` and the
tests' servers both, so the whole suite runs through the lane.
"""

from __future__ import annotations

from collections.abc import Awaitable

from aiohttp import web
from aiohttp.web_request import BaseRequest

from gateway import keys


def install(runner: web.BaseRunner, app: web.Application) -> None:
    """Send ``app``'s USSD hops past the router on ``runner``'s server."""
    server = runner.server
    if server is None:
        raise RuntimeError("the runner is not set up")
    lane = app.get(keys.FAST_LANE)
    if not lane:
        return
    routed = server.request_handler

    # Not a coroutine function: the server awaits the handler's own coroutine, and each of the
    # hop's awaits resumes one frame less.
    def handle(request: BaseRequest) -> Awaitable[web.StreamResponse]:
        handler = lane.get((request.method, request.raw_path))
        if handler is None:
            return routed(request)
        return handler(request)  # type: ignore[arg-type]

    server.request_handler = handle
