"""What the gateway writes to its logs."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web

from gateway.logs import AccessLogger


async def test_access_log_leaves_out_query_strings(caplog: pytest.LogCaptureFixture) -> None:
    async def inbox(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/dev/sms", inbox)
    runner = web.AppRunner(app, access_log_class=AccessLogger)  # as `okryu serve` runs it
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{port}/dev/sms"
                async with http.get(url, params={"to": "+8501912345678"}) as response:
                    assert response.status == 200
    finally:
        await runner.cleanup()
    assert "GET /dev/sms 200" in caplog.text
    assert "1912345678" not in caplog.text
