"""Screen measurement by encoding, and pagination by encoded size."""

from __future__ import annotations

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import pytest
from hypothesis import given
from hypothesis import strategies as st

from menus.screens import Budget, fits, measure, paginate, sms_parts


@pytest.mark.parametrize(
    ("text", "encoding", "units"),
    [
        ("Okryu Shop", "gsm7", 10),
        ("Price: 10 {EUR}", "gsm7", 17),  # { and } come from the extension table: 2 each
        ("€" * 80, "gsm7", 160),
        ("^[]~|\\", "gsm7", 12),
        ("Ça va", "gsm7", 5),  # capital C-cedilla is in the default alphabet
        ("ça va", "ucs2", 5),  # lower-case c-cedilla is not
        ("it’s", "ucs2", 4),  # a curly quote forces UCS-2
        ("옥류상점 Shop", "ucs2", 9),
        ("Order 1 😀", "ucs2", 10),  # outside the BMP: a surrogate pair, two units
        ("line\nbreak", "gsm7", 10),
    ],
)
def test_measure_counts_units_in_the_encoding_a_network_would_use(
    text: str, encoding: str, units: int
) -> None:
    assert measure(text).encoding == encoding
    assert measure(text).units == units


# Menu text, with the characters that decide: the extension table, Latin letters the default
# alphabet has and lacks, Hangul, an emoji, control characters. (Not a bare ESC: the codec
# passes it through as a byte, but it is the extension table's escape, never a character.)
_SCREEN_TEXT = st.text(
    st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from("\n\r\x0c€ÇçÉéñÑßÆ¤§¿£¥`옥류😀’\x00"),
    ),
    max_size=200,
)


@given(_SCREEN_TEXT)
def test_measure_agrees_with_the_gsm_codec(text: str) -> None:
    # The codec is the oracle: a text it encodes is GSM-7 at one septet per byte (an
    # extension character is the escape and itself); any other is UCS-2 in UTF-16 units.
    try:
        expected = ("gsm7", len(text.encode("gsm03.38")))
    except UnicodeEncodeError:
        expected = ("ucs2", len(text.encode("utf-16-le")) // 2)
    got = measure(text)
    assert (got.encoding, got.units) == expected


def test_fits_at_the_boundary_of_each_encoding() -> None:
    budget = Budget(gsm7=160, ucs2=80)
    assert fits("a" * 160, budget)
    assert not fits("a" * 161, budget)
    assert not fits("a" * 159 + "€", budget)  # 159 + 2 septets
    assert fits("가" * 80, budget)
    assert not fits("가" * 81, budget)
    assert not fits("a" * 80 + "가", budget)  # one Hangul syllable makes it all UCS-2


def _compose(rows: list[str]):  # type: ignore[no-untyped-def]
    def compose(start: int, stop: int, more: bool) -> str:
        lines = ["Title", *rows[start:stop]]
        if more:
            lines.append("98 More")
        lines.append("0 Back 00 Home")
        return "\n".join(lines)

    return compose


def test_paginate_fills_pages_in_order_and_every_page_fits() -> None:
    rows = [f"{i}. Item with a longish name {i}" for i in range(1, 30)]
    budget = Budget(gsm7=160, ucs2=80)
    pages = paginate(len(rows), _compose(rows), budget)
    assert pages[0][0] == 0 and pages[-1][1] == len(rows)
    for (_, stop), (start, _) in zip(pages, pages[1:], strict=False):
        assert stop == start  # no row skipped, none repeated
    for number, (start, stop) in enumerate(pages):
        screen = _compose(rows)(start, stop, number < len(pages) - 1)
        assert fits(screen, budget)
        # and the page is full: one more row would not have fitted
        if stop < len(rows):
            assert not fits(_compose(rows)(start, stop + 1, stop + 1 < len(rows)), budget)


def test_paginate_korean_pages_hold_fewer_rows_than_english() -> None:
    budget = Budget()
    english = [f"Product {i} KPW 1,000" for i in range(12)]
    korean = [f"상품{i} 1,000원" for i in range(12)]
    assert len(paginate(12, _compose(korean), budget)) > len(
        paginate(12, _compose(english), budget)
    )


def test_paginate_never_splits_a_row_that_is_too_big() -> None:
    rows = ["short", "x" * 300, "short again"]
    pages = paginate(3, _compose(rows), Budget())
    assert (1, 2) in pages  # the huge row alone, whole


def test_paginate_empty_list_is_one_empty_page() -> None:
    assert paginate(0, _compose([]), Budget()) == [(0, 0)]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 100, 2),  # the escape pair moves whole to the second part
        ("가" * 70, 1),
        ("가" * 71, 2),
        ("가" * 134, 2),
        ("가" * 135, 3),
    ],
)
def test_sms_parts_counts_concatenated_parts(text: str, parts: int) -> None:
    assert sms_parts(text) == parts
