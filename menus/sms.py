"""SMS bodies, from the same catalogs as the screens."""

from __future__ import annotations

from menus.ports import OrderPlaced
from menus.text import Texts, texts


def order_placed(placed: OrderPlaced, lang: str) -> str:
    """The confirmation SMS (kept within two parts in either language)."""
    t = catalog(lang)
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
