"""Access logs without query strings: they carry phone numbers (``/dev/sms?to=+850...``)."""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse


class AccessLogger(AbstractAccessLogger):
    """``METHOD /path status seconds``: enough to read traffic, nothing about subscribers."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.4fs", request.method, request.path, response.status, time)
