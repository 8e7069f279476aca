"""SMS keyword commands, tolerant of case, spacing and a leading ``#``; in English or Korean.

``STATUS [code]``, ``CANCEL <code>``, ``ORDERS``, ``BALANCE``, ``LANG EN|KO``, ``STOP``,
``START``, ``HELP``.
Anything else gets the help text. A subscriber only ever sees their own orders: someone
else's code is answered exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from menus import sms
from menus.ports import Lang
from menus.screens import sms_parts
from store import cards, lifecycle, orders
from store.codes import CODE_LENGTH
from store.db import Database

KEYWORDS: dict[str, str] = {
    "STATUS": "STATUS", "상태": "STATUS", "조회": "STATUS",
    "CANCEL": "CANCEL", "취소": "CANCEL",
    "ORDERS": "ORDERS", "ORDER": "ORDERS", "주문": "ORDERS",
    "LANG": "LANG", "LANGUAGE": "LANG", "언어": "LANG",
    "STOP": "STOP", "UNSUBSCRIBE": "STOP", "중지": "STOP", "그만": "STOP",
    "START": "START", "시작": "START",
    "HELP": "HELP", "도움": "HELP", "도움말": "HELP",
    "BALANCE": "BALANCE", "BAL": "BALANCE", "잔액": "BALANCE",
}  # fmt: skip
LANGUAGES: dict[str, Lang] = {
    "EN": "en", "ENGLISH": "en", "영어": "en",
    "KO": "ko", "KR": "ko", "KOREAN": "ko", "조선말": "ko", "조선어": "ko", "한국어": "ko",
}  # fmt: skip
ORDERS_LISTED = 5
ECHOED_CODE = CODE_LENGTH + 2  # at most this much of a code is repeated back in a reply


def command(text: str) -> tuple[str, list[str]]:
    """``" #status  abc234 "`` -> ``("STATUS", ["ABC234"])``; unknown words -> ``""``."""
    words = text.strip().lstrip("#").upper().split()
    if not words:
        return "", []
    return KEYWORDS.get(words[0], ""), words[1:]


class Commands:
    """Answers one subscriber's SMS. ``None``: the action sends its own SMS (a cancellation)."""

    def __init__(
        self,
        db: Database,
        *,
        dial: str,
        default_language: str,
        change_status: Callable[..., Awaitable[object]],
    ) -> None:
        self.db = db
        self.dial = dial
        self.change_status = change_status  # Gateway.change_status: the SMS and restock follow
        self.default_language = default_language

    async def answer(self, msisdn: str, text: str) -> str | None:
        profile = await orders.get_customer(self.db, msisdn)
        lang = profile.lang if profile is not None else self.default_language
        keyword, args = command(text)
        # A code is a few characters; whatever else was sent is not repeated back in full.
        args = [arg[:ECHOED_CODE] for arg in args]
        if keyword == "STATUS":
            return await self._status(msisdn, args[0] if args else None, lang)
        if keyword == "ORDERS":
            return await self._orders(msisdn, lang)
        if keyword == "BALANCE":
            found = await cards.list_cards(self.db, msisdn)
            return sms.balances([(c.number[-4:], c.balance) for c in found], lang)
        if keyword == "CANCEL":
            if not args:
                return sms.text(lang, "sms.usage_cancel")
            return await self._cancel(msisdn, args[0], lang)
        if keyword == "LANG" and args and args[0] in LANGUAGES:
            new = LANGUAGES[args[0]]
            await orders.save_language(self.db, msisdn, new)
            return sms.text(new, "sms.language")
        if keyword == "STOP":
            await orders.set_reminders(self.db, msisdn, False)
            return sms.stopped(lang)
        if keyword == "START":
            await orders.set_reminders(self.db, msisdn, True)
        return sms.help_text(lang, self.dial)

    async def _status(self, msisdn: str, code: str | None, lang: str) -> str:
        if code is None:
            latest = await orders.list_orders(self.db, msisdn, limit=1)
            if not latest:
                return sms.text(lang, "sms.no_orders", dial=self.dial)
            code = latest[0].code
        detail = await orders.get_order(self.db, msisdn, code)
        if detail is None:
            return sms.text(lang, "sms.no_order", code=code)
        t = sms.catalog(lang)
        return t("sms.status", code=detail.code, status=t(f"sms_status.{detail.status}"),
                 total=t.money(detail.total))  # fmt: skip

    async def _orders(self, msisdn: str, lang: str) -> str:
        found = await orders.list_orders(self.db, msisdn, limit=ORDERS_LISTED)
        if not found:
            return sms.text(lang, "sms.no_orders", dial=self.dial)
        t = sms.catalog(lang)
        lines = [
            t("sms.orders_line", code=o.code, status=t(f"sms_status.{o.status}")) for o in found
        ]
        while True:  # the newest first, as many as two SMS parts hold
            body = t("sms.orders", orders=t("fmt.separator").join(lines))
            if sms_parts(body) <= 2 or len(lines) == 1:
                return body
            lines.pop()

    async def _cancel(self, msisdn: str, code: str, lang: str) -> str | None:
        try:
            await self.change_status(
                code, "cancelled", actor=f"customer:{msisdn}", msisdn=msisdn, note="by SMS"
            )
        except lifecycle.UnknownOrder:
            return sms.text(lang, "sms.no_order", code=code)
        except lifecycle.IllegalTransition:
            detail = await orders.get_order(self.db, msisdn, code)
            status = detail.status if detail is not None else "cancelled"
            t = sms.catalog(lang)
            return t("sms.cannot_cancel", code=code, status=t(f"sms_status.{status}"))
        return None  # the cancellation's own SMS is the answer
