"""Phone numbers: E.164 at the edge, by Google's ``phonenumbers`` metadata."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from gateway.messages import BadRequest
from store.models import MSISDN_WIDTH


@lru_cache(maxsize=65536)
def normalise_msisdn(raw: str, default_region: str) -> str:
    """``raw`` as E.164 (``+8501912345678``), or :class:`BadRequest`.

    Numbers are accepted when *possible* (right length for the country), not only when
    *valid*: the metadata lags the ranges operators open, and aggregators are trusted to send
    real subscribers.
    """
    text = raw.strip()
    if not text.isprintable():
        raise BadRequest("phone number is not a phone number")
    if not text:
        raise BadRequest("phone number is missing")
    if text[0] != "+" and text.isdigit() and len(text) > 10:
        text = "+" + text  # aggregators that drop the "+" still send the country code
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise BadRequest("phone number is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise BadRequest("phone number is not a possible number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) > MSISDN_WIDTH:
        # phonenumbers calls some 16- to 17-digit numbers possible; E.164 stops at 15 digits,
        # and every table keeps a number in that width.
        raise BadRequest("phone number is longer than E.164 allows (15 digits)")
    return e164


def mask(msisdn: str) -> str:
    """For logs: keep the country code and the last three digits."""
    if len(msisdn) <= 6:
        return "***"
    return f"{msisdn[:4]}{'*' * (len(msisdn) - 7)}{msisdn[-3:]}"
