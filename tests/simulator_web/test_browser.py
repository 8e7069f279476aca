"""The web handset in headless Chromium, against the real gateway served on a real port.

Debian's ``chromium`` driven by Playwright's Python API; Playwright's own browser downloads
are never used. Without either the tests skip, saying how to install them. Set
``OKRYU_SCREENSHOT=/tmp/handset.png`` to keep a picture of the page mid-journey.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.settings import Settings
from store.db import Database
from tests.simulator_web import simulator_app

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get install -y chromium && pip install playwright"
if not CHROMIUM.exists():
    pytest.skip(f"no browser at {CHROMIUM}: {INSTALL}", allow_module_level=True)
try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:
    pytest.skip(f"the playwright package is missing: {INSTALL}", allow_module_level=True)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADDRESS = "Changjon street 5"
# What to press on each screen, and what the next screen says.
SHOPPING = [
    ("1", "Categories"),
    ("1", "Food"),
    ("2", "White rice 5 kg"),
    ("1", "How many? (1-10)"),
    ("2", "Cart: KPW 56,000"),
    ("1", "Delivery district"),
    ("1", "Delivery address?"),
    (ADDRESS, "Payment"),
    ("1", "Total KPW 57,000"),
]
PLACED = re.compile(r"^Order (\w+) placed\.")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(
    browser: Browser,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    gateway_settings: Settings,
    seeded_db: Database,
) -> AsyncIterator[Page]:
    """The handset page on the real gateway, whose outbox dispatcher really sends."""
    server = await aiohttp_server(simulator_app(gateway_settings, sms_dispatch=True))
    context = await browser.new_context(accept_downloads=True)
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    await tab.goto(str(server.make_url("/simulator/")))
    await expect(tab.locator("#screen")).to_contain_text("Dial *123# and press Send.")
    try:
        yield tab
    finally:
        await context.close()


def key(page: Page, name: str) -> object:
    return page.get_by_role("button", name=name, exact=True)


async def click_keys(page: Page, answer: str) -> None:
    """Press ``answer`` on the keypad; letters, which the keypad has none of, are typed."""
    if answer.isdigit():
        for digit in answer:
            await page.get_by_role("button", name=digit, exact=True).click()
    else:
        await page.locator("#answer").fill(answer)
    await page.get_by_role("button", name="Send", exact=True).click()


async def test_browser_shops_by_clicking_and_sees_the_sms_arrive(page: Page) -> None:
    screen, badge = page.locator("#screen"), page.locator("#badge")
    await page.get_by_role("button", name="Dial", exact=True).click()
    await expect(screen).to_contain_text("Okryu Shop\n1. Shop")
    await expect(badge).to_have_text("GSM-7 74/160")
    for answer, shown in SHOPPING:
        await click_keys(page, answer)
        await expect(screen).to_contain_text(shown)
        if shown == "Delivery district" and os.environ.get("OKRYU_SCREENSHOT"):
            await page.screenshot(path=os.environ["OKRYU_SCREENSHOT"], full_page=True)
    await click_keys(page, "1")
    await expect(screen).to_have_text(PLACED)
    code = PLACED.match(await screen.inner_text())
    assert code is not None
    inbox = page.locator("#sms li")
    await expect(inbox).to_have_count(1)
    await expect(inbox).to_contain_text(f"Okryu: order {code.group(1)} placed.")
    await expect(page.locator("#inbox-number")).to_have_text("for +8501912345678")


async def test_browser_shops_by_keyboard(page: Page) -> None:
    screen, answer = page.locator("#screen"), page.locator("#answer")
    await expect(answer).to_be_focused()
    await page.keyboard.press("Enter")  # nothing typed: Send dials the service code
    await expect(screen).to_contain_text("Okryu Shop")
    await page.keyboard.type("19")
    await page.keyboard.press("Backspace")
    await expect(answer).to_have_value("1")
    await page.keyboard.press("Enter")
    await expect(screen).to_contain_text("Categories")
    for typed, shown in SHOPPING[1:]:
        await page.keyboard.type(typed)
        await page.keyboard.press("Enter")
        await expect(screen).to_contain_text(shown)
    await page.keyboard.press("Enter")  # an empty answer: the gateway asks again
    await expect(screen).to_contain_text("Invalid choice. Try again.")
    await page.keyboard.type("1")
    await page.keyboard.press("Enter")
    await expect(screen).to_have_text(PLACED)
    # Away from the answer line the keys still type, and Enter on a focused key sends.
    await key(page, "Star").focus()
    await page.keyboard.type("*123*3#")
    await page.keyboard.press("Backspace")
    await page.keyboard.type("#")
    await expect(answer).to_have_value("*123*3#")
    await page.keyboard.press("Enter")
    await expect(screen).to_contain_text("My orders\n1. ")
    await page.keyboard.press("Escape")
    await expect(screen).to_contain_text("Dial *123# and press Send.")
    await expect(page.locator("#events")).to_contain_text("dial      *123*3#")


async def test_browser_shows_ucs2_in_korean_and_downloads_the_transcript(page: Page) -> None:
    screen, badge = page.locator("#screen"), page.locator("#badge")
    await page.locator("#dialect").select_option("hubtel")
    await page.get_by_role("button", name="Dial", exact=True).click()
    await expect(screen).to_contain_text("Okryu Shop")
    await expect(badge).to_have_text("GSM-7 74/160")
    for digit, shown in (("4", "조선말"), ("2", "언어: 조선말")):
        await click_keys(page, digit)
        await expect(screen).to_contain_text(shown)
    await expect(badge).to_have_text(re.compile(r"^UCS-2 \d+/80$"))
    await expect(badge).not_to_have_class(re.compile("over"))
    async with page.expect_download() as download:
        await page.get_by_role("link", name="Download transcript").click()
    saved = await (await download.value).path()
    transcript = Path(saved).read_text(encoding="utf-8")
    assert "dialect hubtel" in transcript and "/ussd/hubtel" in transcript
    assert "> dial *123#" in transcript and "> send '4'" in transcript
    assert "GSM-7 74/160" in transcript and "| 언어: 조선말" in transcript
