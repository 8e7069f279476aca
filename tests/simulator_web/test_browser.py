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
    ("2", "Cart (1): KPW 56,000"),
    ("1", "Delivery district"),
    ("1", "Delivery address?"),
    (ADDRESS, "Total KPW 57,000"),  # one way to pay: chosen without a screen
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


async def dial_from_the_keypad(page: Page, code: str) -> None:
    """Type a code on the answer line while no session is open, and press Send."""
    await page.locator("#answer").fill(code)
    await key(page, "Send").click()


async def test_browser_shows_a_whole_full_screen_without_scrolling(page: Page) -> None:
    # Medicine's first page is 139 of 160 characters and wraps to more than eight rows: its
    # last lines ("98 More", "0 Back 00 Home") were hidden below a scrolled-off end.
    screen = page.locator("#screen")
    await dial_from_the_keypad(page, "*123*1*2#")
    await expect(screen).to_contain_text("0 Back 00 Home")
    await expect(page.locator("#badge")).to_have_text("GSM-7 139/160")
    fit = await screen.evaluate(
        """(s) => {
            const range = document.createRange();
            range.selectNodeContents(s);
            const rows = range.getClientRects();
            const box = s.getBoundingClientRect();
            const answer = document.getElementById("answer").getBoundingClientRect();
            const display = s.closest(".display").getBoundingClientRect();
            return {
                rows: rows.length,
                lastBottom: rows[rows.length - 1].bottom,
                boxBottom: box.bottom,
                hidden: s.scrollHeight - s.clientHeight,
                answerTop: answer.top,
                displayBottom: display.bottom,
            };
        }"""
    )
    assert fit["rows"] > 8  # more rows than the old eight-row window
    assert fit["lastBottom"] <= fit["boxBottom"] + 0.5  # the last line is inside the screen
    assert fit["hidden"] <= 1  # nothing scrolled off
    assert fit["boxBottom"] <= fit["answerTop"] <= fit["displayBottom"]


async def test_browser_soft_keys_say_dial_again_and_ok_after_an_end(page: Page) -> None:
    left, right = page.locator("#soft-left"), page.locator("#soft-right")
    await expect(left).to_have_text("Send")
    await dial_from_the_keypad(page, "*999#")  # an unknown code: answered END at once
    await expect(page.locator("#screen")).to_contain_text("not in service")
    await expect(left).to_have_text("Dial again")
    await expect(right).to_have_text("OK")
    await key(page, "Send").click()  # the green key under "Dial again" dials again
    await expect(page.locator("#screen")).to_contain_text("Okryu Shop")
    await expect(left).to_have_text("Send")
    await expect(right).to_have_text("Cancel")


async def test_browser_keypad_types_letters_by_multi_tap(page: Page) -> None:
    await page.clock.install()  # the pause that keeps a letter is the page's clock, moved here
    answer, mode, screen = page.locator("#answer"), page.locator("#mode"), page.locator("#screen")
    # Food, Corn noodles, Add, 1 of it, Checkout, Central: the address prompt.
    await dial_from_the_keypad(page, "*123*1*1*1*1*1*1*1#")
    await expect(screen).to_contain_text("Delivery address?")
    await key(page, "Hash").click()
    await expect(mode).to_have_text("abc")
    for digit in "55" + "444" + "6":  # k, i, m: another key keeps the letter before it
        await key(page, digit).click()
    await expect(answer).to_have_value("kim")
    await key(page, "0").click()  # 0 is a space
    for digit in "22":
        await key(page, digit).click()
    await page.clock.run_for(1500)  # a pause: "b" is kept
    await key(page, "2").click()  # so the same key starts a new letter
    await expect(answer).to_have_value("kim ba")
    await key(page, "Hash").click()
    await expect(mode).to_have_text("123")
    await key(page, "5").click()
    await expect(answer).to_have_value("kim ba5")
    await key(page, "Send").click()
    await expect(screen).to_contain_text("Central, kim ba5")


async def test_browser_sends_an_sms_and_shows_the_answer(page: Page) -> None:
    inbox = page.locator("#sms li")
    await page.locator("#sms-text").fill("HELP")
    await page.get_by_role("button", name="Send SMS", exact=True).click()
    # Through /sms/africastalking, as a network posts it; the reply from the outbox.
    await expect(page.locator("#sms li.out")).to_contain_text("HELP")
    await expect(inbox.filter(has_text="Okryu: dial *123# to shop")).to_have_count(1)
    await page.locator("#sms-text").fill("주문")
    await page.keyboard.press("Enter")
    await expect(inbox.filter(has_text="you have no orders yet")).to_have_count(1)


async def test_browser_draws_korean_with_a_font_not_boxes(page: Page) -> None:
    # Without a CJK font Hangul is drawn as the missing-glyph box, as wide as any other
    # missing character; with one, it is drawn full width. Measured, not looked at.
    widths = await page.evaluate(
        """() => {
            const measure = (selector, text) => {
                const probe = document.createElement("span");
                probe.textContent = text;
                probe.style.whiteSpace = "pre";
                document.querySelector(selector).append(probe);
                const width = probe.getBoundingClientRect().width;
                probe.remove();
                return width;
            };
            const missing = "\\u{F0000}\\u{F0001}\\u{F0002}\\u{F0003}";  // private use: no font
            return {
                screen: [measure("#screen", "옥류상점"), measure("#screen", missing)],
                inbox: [measure("#sms", "옥류상점"), measure("#sms", missing)],
            };
        }"""
    )
    for where, (hangul, boxes) in widths.items():
        assert abs(hangul - boxes) > 1, (
            f"{where}: Hangul drawn as boxes (apt-get install fonts-noto-cjk)"
        )
