"""The web handset: its JSON API over HTTP, and the page in headless Chromium."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from gateway.app import create_app
from gateway.settings import Settings
from gateway.simulator_web import add_simulator_routes

ORDER = ("1", "1", "2", "1", "2", "1", "1", "Changjon street 5", "1")  # food, 2nd, 2 of it...


class Clock:
    """The simulator's clock, moved by hand: handles expire and subscribers dawdle on cue."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def simulator_app(
    settings: Settings, /, simulator: dict[str, Any] | None = None, **overrides: Any
) -> web.Application:
    """The real gateway with the web handset added, as ``create_app`` will when told to."""
    app = create_app(dataclasses.replace(settings, **overrides))
    add_simulator_routes(app, **(simulator or {}))
    return app
