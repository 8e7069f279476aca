"""SMS templates stay within two parts, in both languages, with worst-case values."""

from __future__ import annotations

import pytest

from menus import sms
from menus.ports import OrderPlaced
from menus.screens import is_gsm7, sms_parts

WORST = OrderPlaced(code="WWWWWW", subtotal=9_999_999, fee=99_999, total=10_099_998)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_sms_order_confirmation_fits_two_parts(lang: str) -> None:
    body = sms.order_placed(WORST, lang)
    assert WORST.code in body and "10,099,998" in body
    assert sms_parts(body) <= 2


def test_sms_english_confirmation_is_gsm7() -> None:
    assert is_gsm7(sms.order_placed(WORST, "en"))


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("status", ["confirmed", "dispatched", "delivered", "cancelled"])
def test_sms_status_changes_fit_two_parts(status: str, lang: str) -> None:
    body = sms.status_changed(status, WORST.code, lang)
    assert WORST.code in body and sms_parts(body) <= 2
    assert lang == "ko" or is_gsm7(body)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_sms_other_templates_fit_two_parts(lang: str) -> None:
    bodies = [
        sms.order_failed(lang, "*123*45*678#"),
        sms.cart_reminder(lang, "*123*45*678#"),
        sms.stopped(lang),
        sms.help_text(lang, "*123*45*678#"),
    ]
    assert all(sms_parts(body) <= 2 for body in bodies)
    assert lang == "ko" or all(is_gsm7(body) for body in bodies)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_sms_command_replies_fit_two_parts(lang: str) -> None:
    t = sms.catalog(lang)
    longest_status = max(
        (t(f"status.{s}") for s in ("placed", "confirmed", "dispatched", "delivered", "cancelled")),
        key=len,
    )
    lines = t("fmt.separator").join(
        t("sms.orders_line", code="WWWWWW", status=longest_status) for _ in range(2)
    )
    bodies = [
        t("sms.status", code="WWWWWW", status=longest_status, total=t.money(10_099_998)),
        t("sms.no_order", code="WWWWWWWWWWWWWWWWWWWW"),
        t("sms.no_orders", dial="*123*45*678#"),
        t("sms.orders", orders=lines),
        t("sms.cannot_cancel", code="WWWWWW", status=longest_status),
        t("sms.usage_cancel"),
        t("sms.language"),
    ]
    assert all(sms_parts(body) <= 2 for body in bodies)
    assert lang == "ko" or all(is_gsm7(body) for body in bodies)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_sms_card_templates_fit_and_say_what_was_paid_and_what_is_left(lang: str) -> None:
    paid = OrderPlaced("WWWWWW", 9_999_999, 99_999, 10_099_998, balance=2_000_000_000,
                       card="9999")  # fmt: skip
    bodies = [
        sms.order_placed(paid, lang),
        sms.order_refunded("WWWWWW", 10_099_998, 2_000_000_000, "9999", lang),
        sms.card_topup("9999", 2_000_000_000, 2_000_000_000, lang),
        sms.card_locked("9999", 1440, lang),
        sms.balances([("9999", 2_000_000_000), ("8888", 2_000_000_000)], lang),
        sms.balances([], lang),
        sms.status_changed("dispatched_paid", "WWWWWW", lang),
    ]
    assert all(sms_parts(body) <= 2 for body in bodies)
    assert lang == "ko" or all(is_gsm7(body) for body in bodies)
    t = sms.catalog(lang)
    assert t.money(10_099_998) in bodies[0] and t.money(2_000_000_000) in bodies[0]
    assert sms_parts(bodies[4]) == 1  # BALANCE is one SMS, however many cards
