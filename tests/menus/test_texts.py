"""The message catalogs: complete in both languages and cheap to send in English."""

from __future__ import annotations

import string

from menus.screens import is_gsm7
from menus.text import texts


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_texts_both_languages_have_the_same_keys_and_placeholders() -> None:
    en, ko = texts("en"), texts("ko")
    assert en.keys() == ko.keys()
    for key in en.keys():
        assert _placeholders(en._entries[key]) == _placeholders(ko._entries[key]), key


def test_texts_english_never_forces_ucs2() -> None:
    en = texts("en")
    offenders = [key for key in en.keys() if key != "language.name" and not is_gsm7(en(key))]
    assert offenders == []


def test_texts_money_formats_per_language() -> None:
    assert texts("en").money(1200) == "KPW 1,200"
    assert texts("ko").money(1200) == "1,200원"
