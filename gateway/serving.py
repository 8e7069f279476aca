"""Serving the app in this process: start, say so, serve until SIGTERM or SIGINT, stop."""

from __future__ import annotations

import asyncio
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

import uvloop
from aiohttp import web

from gateway import lanes
from gateway.app import SERVER_OPTIONS, create_app
from gateway.callbacks import warn_open
from gateway.logs import AccessLogger
from gateway.settings import Settings, SettingsError
from gateway.startup import StartupError, cause

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(settings: Settings, *, ready: Connection | None = None, worker: int = 0) -> int:
    """The gateway in this process until SIGTERM or SIGINT; the exit status. ``ready`` (a
    worker's pipe to its master) hears "ready", or why not, instead of the banner."""
    try:
        app = create_app(settings, freeze_gc=True)
        uvloop.run(_serve(app, settings, ready, worker))
    except SettingsError as error:
        return _failed(str(error), 2, ready)
    except StartupError as error:
        return _failed(str(error), 1, ready)
    return 0


def _failed(reason: str, status: int, ready: Connection | None) -> int:
    if ready is not None:
        ready.send(reason)
    else:
        print(f"okryu: {reason}", file=sys.stderr)
    return status


async def _serve(
    app: web.Application, settings: Settings, ready: Connection | None, worker: int
) -> None:
    """Start (Redis answers, the store migrates, the socket binds), say so, serve until SIGINT
    or SIGTERM, stop. A start-up failure is a ``StartupError`` naming the setting."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    # A line per hop is what a busy gateway can least afford to write (a formatted line per
    # request, thousands a second); the hop rate and latency are in /metrics either way.
    logging_options: dict[str, Any] = (
        {"access_log_class": AccessLogger} if settings.access_log else {"access_log": None}
    )
    runner = web.AppRunner(app, **logging_options, **SERVER_OPTIONS)
    try:
        await runner.setup()  # the app's cleanup contexts: Redis, then the store (StartupError)
        lanes.install(runner, app)  # USSD hops past the router
        if stop.is_set():  # asked to stop while starting
            return
        # Workers share the port: each opens it, and the kernel spreads connections.
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=ready is not None)
        try:
            await site.start()
        except OSError as error:
            raise StartupError(
                f"cannot listen on {settings.host}:{settings.port} (OKRYU_HOST/OKRYU_PORT): "
                f"{cause(error)}"
            ) from error
        if ready is not None:
            ready.send("ready")
            if worker == 0:
                warn_open(app)
        else:
            base = f"http://{settings.host}:{settings.port}"
            print(
                f"Okryu gateway on {base}  (USSD: POST /ussd/<aggregator>; a handset: "
                "`okryu phone`" + (f" or {base}/simulator/" if settings.simulator else "") + ")",
                flush=True,
            )
            warn_open(app)
        await stop.wait()
    finally:
        await runner.cleanup()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
