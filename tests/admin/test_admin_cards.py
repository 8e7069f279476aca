"""Shop cards in the admin API: issue, top up at the counter, correct, statement, ledger."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from store.db import Database
from tests.admin.conftest import TOKEN
from tests.admin.test_admin_api import API, AUTH, call, sms_to
from tests.gateway.test_ussd import MSISDN, post, walk

PIN = "739146"
CHECKOUT = ["1", "1", "1", "1", "2", "1", "1", "Changjon street 5"]


async def issued(admin: TestClient[Any, Any], phone: str = "0191 234 5678") -> dict[str, Any]:
    return await call(admin, "POST", "/cards", json={"phone": phone, "pin": PIN}, status=201)  # type: ignore[no-any-return]


async def test_admin_cards_issue_top_up_once_per_reference_and_tell_the_customer(
    admin: TestClient[Any, Any], seeded_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    card = await issued(admin)
    assert card["msisdn"] == MSISDN and card["balance"] == 0 and len(card["number"]) == 12
    assert "pin" not in str(card).lower()
    number = card["number"]
    body = {"amount": 20_000, "reference": "COUNTER7-0042"}
    headers = {"X-Okryu-Staff": "kim"}
    first = await call(admin, "POST", f"/cards/{number}/topups", json=body, headers=headers)
    again = await call(admin, "POST", f"/cards/{number}/topups", json=body, headers=headers)
    assert (first["balance"], first["repeated"]) == (20_000, False)
    assert (again["balance"], again["repeated"]) == (20_000, True)
    other = {"amount": 5_000, "reference": "COUNTER7-0042"}
    refused = await call(admin, "POST", f"/cards/{number}/topups", json=other, status=409)
    assert "COUNTER7-0042" in refused["error"]
    assert await sms_to(seeded_db) == [
        ("card_topup", f"Okryu: KPW 20,000 added to card {number[-4:]}. Balance KPW 20,000.")
    ]
    listed = await call(admin, "GET", "/cards", params={"phone": "+8501912345678"})
    assert [c["number"] for c in listed] == [number] and listed[0]["balance"] == 20_000
    assert PIN not in caplog.text


async def test_admin_cards_statement_shows_payment_and_refund_after_a_ussd_order(
    admin: TestClient[Any, Any], seeded_db: Database
) -> None:
    number = (await issued(admin))["number"]
    await call(admin, "POST", f"/cards/{number}/topups",
               json={"amount": 15_000, "reference": "R-1"})  # fmt: skip
    await walk(admin, [*CHECKOUT, "1"])
    _, end = await post(admin, "*".join([*CHECKOUT, "1", PIN]))
    code = end.split()[2]
    await call(admin, "POST", f"/orders/{code}/status", json={"status": "cancelled"})
    statement = await call(admin, "GET", f"/cards/{number}/statement")
    assert [(x["kind"], x["amount"], x["balance"], x["order"]) for x in statement["lines"]] == [
        ("topup", 15_000, 15_000, None),
        ("payment", -10_000, 5_000, code),
        ("refund", 10_000, 15_000, code),
    ]
    assert statement["lines"][2]["actor"] == "staff"
    order = await call(admin, "GET", f"/orders/{code}")
    assert order["payment_method"] == "card" and order["status"] == "cancelled"
    ledger = await call(admin, "GET", "/reports/ledger")
    assert ledger["balances"] is True and ledger["total"] == 0 and ledger["entries"] == 6
    (day,) = ledger["days"]
    assert (day["topups"], day["payments"], day["refunds"], day["balances"]) == (
        15_000, 10_000, 10_000, 15_000,
    )  # fmt: skip


async def test_admin_cards_adjustment_never_takes_a_card_below_zero(
    admin: TestClient[Any, Any],
) -> None:
    number = (await issued(admin))["number"]
    up = await call(admin, "POST", f"/cards/{number}/adjustments",
                    json={"amount": 300, "reference": "FIX-1"})  # fmt: skip
    assert up["balance"] == 300
    await call(admin, "POST", f"/cards/{number}/adjustments",
               json={"amount": -301, "reference": "FIX-2"}, status=409)  # fmt: skip
    down = await call(admin, "POST", f"/cards/{number}/adjustments",
                      json={"amount": -300, "reference": "FIX-3"})  # fmt: skip
    assert down["balance"] == 0


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/cards", {"phone": MSISDN, "pin": "12"}, 400),
        ("/cards", {"phone": MSISDN, "pin": "12²4"}, 400),
        ("/cards", {"phone": MSISDN, "pin": "1234\u0000"}, 400),
        ("/cards", {"phone": "not a phone", "pin": "1234"}, 400),
        ("/cards", {"phone": MSISDN, "pin": "1234", "balance": 10**6}, 400),
        ("/cards/123/topups", {"amount": 1, "reference": "A"}, 400),
        ("/cards/999999999999/topups", {"amount": 1, "reference": "A"}, 404),
        ("/cards/{n}/topups", {"amount": 0, "reference": "A"}, 400),
        ("/cards/{n}/topups", {"amount": 2**31, "reference": "A"}, 400),
        ("/cards/{n}/topups", {"amount": 1.5, "reference": "A"}, 400),
        ("/cards/{n}/topups", {"amount": 1, "reference": "x" * 10_000}, 400),
        ("/cards/{n}/topups", {"amount": 1, "reference": "a\u0000b"}, 400),
        ("/cards/{n}/topups", {"amount": 1}, 400),
    ],
)
async def test_admin_cards_bad_input_is_a_4xx_with_a_reason_and_changes_nothing(
    admin: TestClient[Any, Any], path: str, body: dict[str, Any], status: int
) -> None:
    number = (await issued(admin))["number"]
    refused = await call(admin, "POST", path.replace("{n}", number), json=body, status=status)
    assert refused["error"] and "1234" not in refused["error"]
    card = await call(admin, "GET", f"/cards/{number}")
    assert card["balance"] == 0
    assert len(await call(admin, "GET", "/cards", params={"phone": MSISDN})) == 1


async def test_admin_cards_need_the_token(admin: TestClient[Any, Any]) -> None:
    response = await admin.post(API + "/cards", json={"phone": MSISDN, "pin": PIN})
    assert response.status == 401
    response = await admin.get(API + "/reports/ledger", headers=AUTH)
    assert response.status == 200


async def test_dashboard_in_chromium_issues_a_card_tops_it_up_and_shows_its_statement(
    admin: TestClient[Any, Any], browser: Any
) -> None:
    from playwright.async_api import expect

    page = await browser.new_page()
    page.set_default_timeout(10_000)
    await page.goto(str(admin.make_url("/admin/")))
    await page.fill("#token", TOKEN)
    await page.press("#token", "Enter")
    await page.fill("#card-phone", MSISDN)
    await page.fill("#card-pin", PIN)
    await page.get_by_role("button", name="Issue a card to this phone").click()
    row = page.locator("#cards tr")
    await expect(row.locator(".balance")).to_have_text("KPW 0")
    assert await page.input_value("#card-pin") == ""  # the PIN is not left in the page
    number = await row.get_attribute("data-number")
    for _ in range(2):  # the same counter reference twice: one top-up
        await row.get_by_label("Amount").fill("5000")
        await row.get_by_label("Counter reference").fill("C-1")
        await row.get_by_role("button", name="Top up").click()
        await expect(page.locator("#statement tr")).to_have_count(1)
    await expect(row.locator(".balance")).to_have_text("KPW 5,000")
    await expect(page.locator("#problem")).to_contain_text("already topped up")
    card = await call(admin, "GET", f"/cards/{number}")
    assert card["balance"] == 5000
    await page.close()
