from __future__ import annotations

from collections import Counter

from store.codes import ALPHABET, new_code, normalise_code


def test_alphabet_has_no_ambiguous_characters() -> None:
    assert not set("0O1IL") & set(ALPHABET)


def test_new_code_is_six_characters_from_the_alphabet() -> None:
    codes = [new_code() for _ in range(500)]
    assert all(len(code) == 6 and set(code) <= set(ALPHABET) for code in codes)
    assert len(set(codes)) > 490  # random, not a counter or a constant


def test_normalise_code_uppercases_and_drops_spaces() -> None:
    assert normalise_code(" ab3 4cd\t") == "AB34CD"


def test_new_code_draws_every_character_evenly_at_every_position() -> None:
    # 500 draws expected of each character at each position (sd ~22): a base conversion that
    # favoured some characters, or left a position constant, falls far outside.
    codes = [new_code() for _ in range(500 * len(ALPHABET))]
    for position in range(6):
        counts = Counter(code[position] for code in codes)
        assert set(counts) == set(ALPHABET)
        assert 380 <= min(counts.values()) and max(counts.values()) <= 620, (position, counts)
