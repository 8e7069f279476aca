"""Screen size by encoded units, and pagination that never splits an option.

A text is GSM-7 when every character is in the GSM 03.38 default alphabet or its extension
table (extension characters cost two septets); otherwise the whole text is UCS-2 and costs
one unit per UTF-16 code unit. The tables come from the ``gsm0338`` codec, not from a list
typed by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

Encoding = Literal["gsm7", "ucs2"]


def _gsm_tables() -> dict[str, int]:
    costs: dict[str, int] = {}
    for byte in range(128):
        if byte == 0x1B:  # escape to the extension table
            continue
        costs[bytes([byte]).decode("gsm03.38")] = 1
    for byte in range(128):
        try:
            char = (b"\x1b" + bytes([byte])).decode("gsm03.38")
        except UnicodeDecodeError:
            continue
        if len(char) == 1 and char not in costs:
            costs[char] = 2
    return costs


_SEPTETS = _gsm_tables()
# Most screens are all in the basic table (a septet each): one search in C says so, and the
# character loop below runs only for a text that holds something else.
_NOT_BASIC = re.compile(
    "[^" + "".join(re.escape(char) for char, cost in _SEPTETS.items() if cost == 1) + "]"
)


@dataclass(frozen=True)
class Budget:
    """How many units one screen (or message) may use, per encoding."""

    gsm7: int = 160
    ucs2: int = 80

    def limit(self, encoding: Encoding) -> int:
        return self.gsm7 if encoding == "gsm7" else self.ucs2


@dataclass(frozen=True, slots=True)
class Measure:
    encoding: Encoding
    units: int


@lru_cache(maxsize=4096)
def measure(text: str) -> Measure:
    """The encoding a network would pick for ``text`` and how many units it costs.

    Remembered for the last few thousand texts: a hop measures the same rows, reasons and
    titles over and over (four times on an order's screens), and a string's hash is kept."""
    if _NOT_BASIC.search(text) is None:
        return Measure("gsm7", len(text))
    septets = 0
    get = _SEPTETS.get
    for char in text:
        cost = get(char)
        if cost is None:
            return Measure("ucs2", len(text.encode("utf-16-le")) // 2)
        septets += cost
    return Measure("gsm7", septets)


def fits(text: str, budget: Budget) -> bool:
    m = measure(text)
    return m.units <= budget.limit(m.encoding)


def is_gsm7(text: str) -> bool:
    return measure(text).encoding == "gsm7"


def paginate(
    count: int,
    compose: Callable[[int, int, bool], str],
    budget: Budget,
) -> list[tuple[int, int]]:
    """Split ``count`` rows into pages ``[(start, stop), ...]`` that each fit ``budget``.

    ``compose(start, stop, more)`` renders the whole screen for rows ``start:stop`` (with the
    "more" line when ``more``), including everything the screen may show around them, such
    as the longest re-prompt reason. Rows are never split: a row too large to share a page
    gets a page of its own.
    """
    if count == 0:
        return [(0, 0)]
    pages: list[tuple[int, int]] = []
    start = 0
    while start < count:
        stop = start + 1  # a page holds at least one row
        while stop < count and fits(compose(start, stop + 1, stop + 1 < count), budget):
            stop += 1
        pages.append((start, stop))
        start = stop
    return pages


SMS_SINGLE = {"gsm7": 160, "ucs2": 70}
SMS_PART = {"gsm7": 153, "ucs2": 67}  # what is left beside the concatenation header


def sms_parts(text: str) -> int:
    """How many SMS parts ``text`` needs, never splitting an escape pair or a surrogate pair."""
    m = measure(text)
    if m.units <= SMS_SINGLE[m.encoding]:
        return 1
    limit = SMS_PART[m.encoding]
    parts, used = 1, 0
    for char in text:
        cost = _SEPTETS[char] if m.encoding == "gsm7" else (2 if ord(char) > 0xFFFF else 1)
        if used + cost > limit:
            parts, used = parts + 1, 0
        used += cost
    return parts
