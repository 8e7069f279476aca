"""SMS bodies, from the same catalogs as the screens."""

from __future__ import annotations

from collections.abc import Sequence

from menus.ports import OrderPlaced
from menus.screens import sms_parts
from menus.text import Texts, texts


def order_placed(placed: OrderPlaced, lang: str) -> str:
    """The confirmation SMS (kept within two parts in either language); paid by card, it
    says what was paid and what is left on the card."""
    t = catalog(lang)
    if placed.balance is not None:
        return t("sms.order_paid", code=placed.code, total=t.money(placed.total),
                 card=placed.card, balance=t.money(placed.balance))  # fmt: skip
    return t(
        "sms.order_placed",
        code=placed.code,
        subtotal=t.money(placed.subtotal),
        fee=t.money(placed.fee),
        total=t.money(placed.total),
    )


def order_failed(lang: str, dial: str) -> str:
    """The order could not be placed after the subscriber was told it was pending."""
    t = catalog(lang)
    return t("sms.order_failed", dial=dial)


def catalog(lang: str) -> Texts:
    """The catalog for ``lang``, English when the language is unknown."""
    return texts(lang if lang in ("en", "ko") else "en")


def cart_reminder(lang: str, dial: str) -> str:
    """The one reminder about a cart left behind when a session was cut."""
    return catalog(lang)("sms.cart_reminder", dial=dial)


def stopped(lang: str) -> str:
    return catalog(lang)("sms.stopped")


def help_text(lang: str, dial: str) -> str:
    return catalog(lang)("sms.help", dial=dial)


def status_changed(status: str, code: str, lang: str) -> str:
    """What the customer is told when staff (or they) change an order's status."""
    return catalog(lang)(f"sms.order_{status}", code=code)


def text(lang: str, key: str, **values: object) -> str:
    """Any SMS template of the catalogs, in ``lang`` (English when unknown)."""
    return catalog(lang)(key, **values)


# --- shop cards (issue 13) ----------------------------------------------------------------------


def order_refunded(code: str, amount: int, balance: int, card: str, lang: str) -> str:
    """The cancellation of an order paid by card: what went back on the card."""
    t = catalog(lang)
    return t("sms.order_refunded", code=code, amount=t.money(amount), card=card,
             balance=t.money(balance))  # fmt: skip


def card_topup(card: str, amount: int, balance: int, lang: str) -> str:
    t = catalog(lang)
    return t("sms.card_topup", card=card, amount=t.money(amount), balance=t.money(balance))


def card_locked(card: str, minutes: int, lang: str) -> str:
    return catalog(lang)("sms.card_locked", card=card, minutes=minutes)


def balances(cards: Sequence[tuple[str, int]], lang: str) -> str:
    """``BALANCE``: each card's last digits and balance; or how to get a card."""
    t = catalog(lang)
    if not cards:
        return t("sms.no_card")
    lines = [t("sms.balance_line", card=card, balance=t.money(amount)) for card, amount in cards]
    while True:  # as many cards as one SMS holds (a customer has one or two)
        body = t("sms.balance", cards=t("fmt.separator").join(lines))
        if sms_parts(body) <= 1 or len(lines) == 1:
            return body
        lines.pop()
