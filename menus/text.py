"""Message catalogs: every word a subscriber reads, per language, in ``menus/text/*.toml``."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from menus.ports import Lang

_DIR = Path(__file__).with_name("text")
MONEY_KEPT = 4096  # formatted amounts a catalog keeps (then forgets them all and starts again)


class Texts:
    """One language's catalog: ``texts("home.cart", count=2)``."""

    def __init__(self, lang: Lang, entries: dict[str, str]) -> None:
        self.lang = lang
        self._entries = entries
        self._money: dict[int, str] = {}  # prices and totals recur: each formatted once

    def __call__(self, key: str, **values: Any) -> str:
        template = self._entries[key]
        return template.format(**values) if values else template

    def keys(self) -> set[str]:
        return set(self._entries)

    def template(self, key: str) -> str:
        """The entry as written, placeholders unfilled."""
        return self._entries[key]

    def money(self, amount: int) -> str:
        shown = self._money.get(amount)
        if shown is None:
            if len(self._money) >= MONEY_KEPT:
                self._money.clear()
            shown = self._money[amount] = self("fmt.price", amount=f"{amount:,}")
        return shown

    def option(self, n: int, label: str) -> str:
        return self("fmt.option", n=n, label=label)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


@cache
def texts(lang: Lang) -> Texts:
    """The catalog for ``lang``, loaded once per process."""
    with (_DIR / f"{lang}.toml").open("rb") as f:
        return Texts(lang, _flatten(tomllib.load(f)))
