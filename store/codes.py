"""Short order codes a customer can read off an SMS and type on a keypad."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L: the pairs people misread on a small screen. 31**6 is about 887 million
# codes, so a collision is rare and place_order simply draws again.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6


def new_code(length: int = CODE_LENGTH) -> str:
    """A fresh random order code, from a cryptographic source so codes cannot be guessed.

    One draw below ``len(ALPHABET) ** length``, written in that base: as uniform as a
    ``secrets.choice`` per character, with one read of the system's source instead of six
    (a system call each, on every order's confirming hop)."""
    base = len(ALPHABET)
    drawn = secrets.randbelow(base**length)
    digits = []
    for _ in range(length):
        drawn, digit = divmod(drawn, base)
        digits.append(ALPHABET[digit])
    return "".join(digits)


def normalise_code(text: str) -> str:
    """The code as stored: upper case, without the spaces people type or paste around it."""
    return "".join(text.split()).upper()
