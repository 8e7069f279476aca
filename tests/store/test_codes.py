from __future__ import annotations

from store.codes import ALPHABET, new_code, normalise_code


def test_alphabet_has_no_ambiguous_characters() -> None:
    assert not set("0O1IL") & set(ALPHABET)


def test_new_code_is_six_characters_from_the_alphabet() -> None:
    codes = [new_code() for _ in range(500)]
    assert all(len(code) == 6 and set(code) <= set(ALPHABET) for code in codes)
    assert len(set(codes)) > 490  # random, not a counter or a constant


def test_normalise_code_uppercases_and_drops_spaces() -> None:
    assert normalise_code(" ab3 4cd\t") == "AB34CD"
