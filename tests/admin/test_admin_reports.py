"""The funnel report and live stats in the admin API, and the dashboard page in Chromium."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.admin.conftest import TOKEN
from tests.admin.test_admin_api import call, place_by_ussd
from tests.gateway.test_ussd import walk


async def test_admin_funnel_shows_each_step_and_the_drop_off(admin: TestClient[Any, Any]) -> None:
    await place_by_ussd(admin)
    await walk(admin, ["1", "1", "1"], session="ATUid_browse")
    funnel = await call(admin, "GET", "/reports/funnel")
    steps = {s["screen"]: s for s in funnel["steps"]}
    assert steps["home"]["sessions"] == 2 and steps["placed"]["sessions"] == 1
    assert steps["product"] == {"screen": "product", "sessions": 2, "dropped": 1}
    empty = await call(admin, "GET", "/reports/funnel?from=2020-01-01&to=2020-01-02")
    assert all(s["sessions"] == 0 for s in empty["steps"])


async def test_admin_stats_show_the_hop_rate_and_counts(admin: TestClient[Any, Any]) -> None:
    await place_by_ussd(admin)
    stats = await call(admin, "GET", "/stats")
    assert stats["hops_per_second"] > 0
    assert stats["orders"] == {"placed": 1} and stats["sms"] == {"queued": 1}


async def test_admin_reports_need_the_token(admin: TestClient[Any, Any]) -> None:
    for path in ("/admin/api/reports/funnel", "/admin/api/stats"):
        assert (await admin.get(path)).status == 401


async def test_dashboard_page_is_served_without_data(admin: TestClient[Any, Any]) -> None:
    page = await admin.get("/admin/")
    assert page.status == 200 and "Okryu operations" in await page.text()
    assert (await admin.get("/admin/dashboard.js")).status == 200
    assert TOKEN not in await page.text()


async def test_dashboard_in_chromium_moves_an_order_and_draws_the_funnel(
    admin: TestClient[Any, Any], browser: Any
) -> None:
    from playwright.async_api import expect

    code = await place_by_ussd(admin)
    page = await browser.new_page()
    page.set_default_timeout(10_000)
    await page.goto(str(admin.make_url("/admin/")))
    await page.fill("#token", "wrong")
    await page.press("#token", "Enter")
    await expect(page.locator("#problem")).to_contain_text("Wrong token")
    await page.fill("#token", TOKEN)
    await page.press("#token", "Enter")
    row = page.locator(f"tr[data-code='{code}']")
    await expect(row.locator(".status")).to_have_text("placed")
    await expect(page.locator(".bar[data-screen='placed'] .n")).to_have_text("1")
    await page.get_by_role("button", name=f"Mark {code} confirmed").click()
    await expect(row.locator(".status")).to_have_text("confirmed")
    detail = await call(admin, "GET", f"/orders/{code}")
    assert detail["status"] == "confirmed"
    await page.close()
