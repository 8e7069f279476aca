"""SMS templates stay within two parts, in both languages, with worst-case values; the order
confirmation and every status SMS within one."""

from __future__ import annotations

import pytest

from menus import sms
from menus.ports import OrderPlaced
from menus.screens import is_gsm7, measure, sms_parts

WORST = OrderPlaced(code="WWWWWW", subtotal=9_999_999, fee=99_999, total=10_099_998)
# The largest total the screens are checked with (menus.shop.Shop.worst_case): no realistic
# order comes near it.
LARGEST = OrderPlaced(code="WWWWWW", subtotal=99_000_000, fee=999_999, total=99_999_999)
STATUSES = ["placed", "confirmed", "dispatched", "delivered", "cancelled"]
ONE_PART = {"en": ("gsm7", 160), "ko": ("ucs2", 70)}


def one_part(body: str, lang: str) -> bool:
    """One SMS: 160 GSM-7 septets in English, 70 UCS-2 units in Korean."""
    encoding, limit = ONE_PART[lang]
    m = measure(body)
    return m.encoding == encoding and m.units <= limit and sms_parts(body) == 1


@pytest.mark.parametrize("placed", [WORST, LARGEST])
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_sms_order_confirmation_fits_one_part(lang: str, placed: OrderPlaced) -> None:
    body = sms.order_placed(placed, lang)
    assert placed.code in body and f"{placed.total:,}" in body and f"{placed.fee:,}" in body
    assert one_part(body, lang), (measure(body), body)


@pytest.mark.parametrize(("lang", "keyword"), [("en", "STATUS"), ("ko", "상태")])
def test_sms_confirmation_names_the_status_command_in_the_readers_language(
    lang: str, keyword: str
) -> None:
    assert sms.order_placed(WORST, lang).endswith(f" {keyword} WWWWWW")


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("status", ["confirmed", "dispatched", "delivered", "cancelled"])
def test_sms_status_changes_fit_one_part(status: str, lang: str) -> None:
    body = sms.status_changed(status, WORST.code, lang)
    assert WORST.code in body and one_part(body, lang), body


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("status", STATUSES)
def test_sms_status_replies_fit_one_part(status: str, lang: str) -> None:
    t = sms.catalog(lang)
    for total in (WORST.total, LARGEST.total):
        body = t(
            "sms.status", code="WWWWWW", status=t(f"sms_status.{status}"), total=t.money(total)
        )
        assert one_part(body, lang), body
        cannot = t("sms.cannot_cancel", code="WWWWWW", status=t(f"sms_status.{status}"))
        assert one_part(cannot, lang), cannot


def test_sms_status_reads_as_part_of_a_sentence() -> None:
    t = sms.catalog("en")
    body = t("sms.status", code="YF58BR", status=t("sms_status.placed"), total=t.money(1000))
    assert body == "Okryu: order YF58BR is placed. Total KPW 1,000."


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_sms_reminder_names_stop_in_the_readers_language(lang: str) -> None:
    assert sms.cart_reminder(lang, "*123#").endswith(
        "STOP for no more reminders." if lang == "en" else "중지."
    )


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
        (t(f"sms_status.{s}") for s in STATUSES),
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


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_sms_card_confirmation_refund_and_dispatch_fit_one_part(lang: str) -> None:
    # Issue 12's rule for the confirmation and every status SMS holds when a card pays:
    # the largest total, and a balance as large as a card may hold (MAX_INT).
    paid = OrderPlaced("WWWWWW", 99_000_000, 999_999, 99_999_999, balance=2_147_483_647,
                       card="9999")  # fmt: skip
    t = sms.catalog(lang)
    confirmation = sms.order_placed(paid, lang)
    assert t.money(99_999_999) in confirmation and t.money(2_147_483_647) in confirmation
    assert confirmation.endswith(f" {'STATUS' if lang == 'en' else '상태'} WWWWWW")
    refund = sms.order_refunded("WWWWWW", 99_999_999, 2_147_483_647, "9999", lang)
    dispatched = sms.status_changed("dispatched_paid", "WWWWWW", lang)
    for body in (confirmation, refund, dispatched):
        assert one_part(body, lang), (measure(body), body)


@pytest.mark.parametrize(("lang", "keyword"), [("en", "BALANCE"), ("ko", "잔액")])
def test_sms_help_and_help_screen_name_the_balance_command(lang: str, keyword: str) -> None:
    t = sms.catalog(lang)
    assert keyword in sms.help_text(lang, "*123#") and keyword in t("help.sms")
