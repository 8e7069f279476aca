"""The admin API's tests share one app, with a known token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

TOKEN = "t0ken"


@pytest.fixture
async def admin(
    make_gateway: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> TestClient[Any, Any]:
    return await make_gateway(admin_token=TOKEN)
