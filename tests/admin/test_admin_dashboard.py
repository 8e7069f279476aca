"""The dashboard at /admin/ in Chromium: the login gate, phone width, an order's whole story in
the shop's time zone, and the catalog and stock edited from the browser. Layout is asserted by
bounding boxes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from tests.admin.conftest import TOKEN
from tests.admin.test_admin_api import call, place_by_ussd
from tests.gateway.test_ussd import MSISDN


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(accept_downloads=True)
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    try:
        yield tab
    finally:
        await context.close()


async def log_in(page: Any, admin: TestClient[Any, Any], token: str = TOKEN) -> None:
    await page.goto(str(admin.make_url("/admin/")))
    await page.fill("#token", token)
    await page.press("#token", "Enter")


async def test_dashboard_shows_nothing_before_login_says_a_wrong_token_and_logs_out(
    admin: TestClient[Any, Any], page: Any
) -> None:
    from playwright.async_api import expect

    code = await place_by_ussd(admin)
    await page.goto(str(admin.make_url("/admin/")))
    board = page.locator("#board")
    assert await board.bounding_box() is None  # not laid out at all: `hidden` holds
    await expect(board).to_be_hidden()
    await page.fill("#token", "wrong")
    await page.press("#token", "Enter")
    await expect(page.locator("#problem")).to_have_text("Wrong token: the admin API refused it.")
    await expect(board).to_be_hidden()
    assert code not in await page.content()
    await page.fill("#token", TOKEN)
    await page.press("#token", "Enter")
    await expect(page.locator(f"tr[data-code='{code}']")).to_be_visible()
    await expect(page.locator("#login")).to_be_hidden()
    await page.get_by_role("button", name="Log out").click()
    await expect(board).to_be_hidden()
    await expect(page.locator("#login")).to_be_visible()
    assert code not in await page.content()
    await page.reload()  # the token went with the log-out
    await expect(page.locator("#login")).to_be_visible()
    assert await board.bounding_box() is None


async def test_dashboard_fits_a_phone_width(admin: TestClient[Any, Any], page: Any) -> None:
    from playwright.async_api import expect

    code = await place_by_ussd(admin)
    await page.set_viewport_size({"width": 360, "height": 740})
    await log_in(page, admin)
    await expect(page.locator(f"tr[data-code='{code}']")).to_be_visible()
    widths = await page.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            view: document.documentElement.clientWidth,
            cards: [...document.querySelectorAll(".card")]
                .filter((c) => c.offsetParent !== null)
                .map((c) => [c.getBoundingClientRect().left, c.getBoundingClientRect().right]),
        })"""
    )
    assert widths["page"] <= widths["view"] == 360  # no sideways scroll of the page
    assert widths["cards"] and all(0 <= left and right <= 360 for left, right in widths["cards"])


async def test_dashboard_opens_an_order_in_the_shops_time_zone_and_asks_before_cancelling(
    admin: TestClient[Any, Any], page: Any
) -> None:
    from playwright.async_api import expect

    code = await place_by_ussd(admin)
    order = await call(admin, "GET", f"/orders/{code}")
    placed = datetime.fromisoformat(order["created_at"].replace("Z", "+00:00"))
    local = placed.astimezone(ZoneInfo("Asia/Pyongyang")).strftime("%Y-%m-%d %H:%M")
    await log_in(page, admin)
    await expect(page.locator("#zone")).to_have_text("Times in Asia/Pyongyang")
    row = page.locator(f"tr[data-code='{code}']")
    await expect(row).to_contain_text(local)
    await page.get_by_role("button", name=f"Open order {code}").click()
    detail = page.locator("#detail")
    await expect(detail).to_be_visible()
    await expect(detail).to_contain_text(MSISDN)
    await expect(detail).to_contain_text("Changjon street 5")
    await expect(detail).to_contain_text("Central")
    await expect(detail).to_contain_text(f"{local} (Asia/Pyongyang)")
    await expect(page.locator("#detail-lines tr")).to_have_count(len(order["lines"]))
    await expect(page.locator("#detail-history")).to_contain_text("placed")
    await expect(page.locator("#detail-sms")).to_contain_text(f"Okryu: order {code} placed.")
    page.once("dialog", lambda dialog: dialog.dismiss())  # "Cancel order ...?" No.
    await page.get_by_role("button", name=f"Mark {code} cancelled").click()
    await expect(row.locator(".status")).to_have_text("placed")
    assert (await call(admin, "GET", f"/orders/{code}"))["status"] == "placed"
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name=f"Mark {code} cancelled").click()
    await expect(page.locator("#detail-title")).to_have_text(f"Order {code}: cancelled")
    await expect(page.locator("#detail-sms")).to_contain_text("is cancelled")
    assert (await call(admin, "GET", f"/orders/{code}"))["status"] == "cancelled"


async def test_dashboard_edits_the_catalog_and_stock_and_moves_its_csv(
    admin: TestClient[Any, Any], page: Any, tmp_path: Any
) -> None:
    from playwright.async_api import expect

    await log_in(page, admin)
    rows = page.locator("#products tr")
    await expect(rows).to_have_count(48)
    await page.fill("#catalog-search", "rice")
    await expect(rows).to_have_count(1)
    sku = await rows.first.get_attribute("data-sku")
    await page.get_by_role("button", name=f"Edit {sku}").click()
    form = page.locator("#product-form")
    await form.locator("[name=price]").fill("30500")
    await form.locator("[name=name_ko]").fill("입쌀 5키로 (새것)")
    await form.get_by_role("button", name="Save").click()
    await expect(page.locator("#catalog-note")).to_have_text(f"Saved {sku}.")
    await form.locator("[name=delta]").fill("-3")
    await form.locator("[name=reason]").fill("3 bags torn")
    await page.get_by_role("button", name="Move stock").click()
    await expect(page.locator("#catalog-note")).to_contain_text(f"Stock of {sku} moved by -3")
    # The move is kept with its reason, and the product's history shows it.
    await expect(page.locator("#stock-history li").first).to_contain_text("-3")
    await expect(page.locator("#stock-history li").first).to_contain_text("3 bags torn")
    assert (await call(admin, "GET", f"/products/{sku}/stock"))[0]["reason"] == "3 bags torn"
    product = await call(admin, "GET", f"/products/{sku}")
    assert (product["price"], product["name_ko"]) == (30500, "입쌀 5키로 (새것)")
    # Deactivate it, then a new product in both languages.
    await form.locator("[name=active]").uncheck()
    await form.get_by_role("button", name="Save").click()
    await expect(page.locator("#catalog-note")).to_have_text(f"Saved {sku}.")
    assert (await call(admin, "GET", f"/products/{sku}"))["active"] is False
    await page.get_by_role("button", name="New product").click()
    for name, value in (("sku", "FD-TEA"), ("name_en", "Green tea"), ("name_ko", "록차"),
                        ("price", "3000")):  # fmt: skip
        await form.locator(f"[name={name}]").fill(value)
    await form.get_by_role("button", name="Save").click()
    await expect(page.locator("#catalog-note")).to_have_text("Saved FD-TEA.")
    assert (await call(admin, "GET", "/products/FD-TEA"))["name_ko"] == "록차"
    # The CSV out, and back in: a bad line is named and nothing is written.
    async with page.expect_download() as download:
        await page.get_by_role("button", name="Download CSV").click()
    csv = (await (await download.value).path()).read_text(encoding="utf-8")
    assert csv.startswith("sku,") and "FD-TEA" in csv and "록차" in csv
    bad = tmp_path / "bad.csv"
    bad.write_text(csv.replace("Green tea", "").replace(",3000,", ",-5,"), encoding="utf-8")
    await page.set_input_files("#csv-upload", str(bad))
    await expect(page.locator("#catalog-note")).to_contain_text("Nothing imported")
    await expect(page.locator("#catalog-note")).to_contain_text("line ")
    good = tmp_path / "good.csv"
    good.write_text(csv.replace("Green tea", "Green tea loose"), encoding="utf-8")
    await page.set_input_files("#csv-upload", str(good))
    await expect(page.locator("#catalog-note")).to_contain_text("Imported good.csv: 0 new, ")
    assert (await call(admin, "GET", "/products/FD-TEA"))["name_en"] == "Green tea loose"
