"""What the channel adapters share: reading a request's fields and a first hop's dial string."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from aiohttp import web

from gateway.dial import split_dial
from gateway.messages import BadRequest, Inbound
from gateway.numbers import normalise_msisdn
from menus.engine import is_digits
from store.models import SESSION_REF_WIDTH

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FIELD = 200  # any other identifier an aggregator sends (a network name, a user id)
MAX_NUMBER = 2**31 - 1  # hop counts and durations: what an INTEGER column keeps
# C0 controls (NUL among them: PostgreSQL refuses it in text), DEL and lone surrogates (which
# no UTF-8 encoder takes) are not text a subscriber can have meant.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_input(text: str) -> str:
    """What a subscriber typed, with anything that is not text replaced by U+FFFD.

    Typed input is never refused at the edge: the screen it answers re-prompts for a value it
    cannot use, so a stray control byte costs the subscriber one screen, not the session.
    """
    return _NOT_TEXT.sub(REPLACEMENT, text)


def is_text(value: str) -> bool:
    """No control characters (tab and line breaks aside) and no lone surrogates."""
    return _NOT_TEXT.search(value) is None


class Fields:
    """The named values of one request, each read with the same checks and reasons."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.values = values

    def raw(self, name: str) -> object:
        """The value as it came, for echoing back unchanged (``None`` when absent)."""
        return self.values.get(name)

    def _bounded(self, name: str, limit: int, default: str | None) -> str:
        value = self.values.get(name)
        if value is None:
            if default is None:
                raise BadRequest(f"missing field {name}")
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise BadRequest(f"field {name} must be text")
        if len(value) > limit:
            raise BadRequest(f"field {name} is too long (at most {limit} characters)")
        return value

    def text(self, name: str, limit: int, default: str | None = None) -> str:
        """A text value of at most ``limit`` characters; absent is an error without a default.

        JSON integers are taken as their digits: aggregators send ids and numbers either way.
        Control characters and invalid text are refused: no store keeps them.
        """
        value = self._bounded(name, limit, default)
        if not is_text(value):
            raise BadRequest(f"field {name} holds a control character or invalid text")
        return value

    def input(self, name: str, limit: int, default: str | None = None) -> str:
        """What the subscriber typed: like :meth:`text`, but control characters and invalid
        text become U+FFFD for the screen to re-prompt, rather than failing the request."""
        return clean_input(self._bounded(name, limit, default))

    def ident(self, name: str, limit: int = MAX_FIELD) -> str:
        """A required, non-blank text value (a session id, a service code), stripped."""
        value = self.text(name, limit).strip()
        if not value:
            raise BadRequest(f"{name} is empty")
        return value

    def session_ref(self, name: str) -> str:
        """The aggregator's session id: an identifier the session store keeps whole."""
        return self.ident(name, SESSION_REF_WIDTH)

    def phone(self, name: str, default_region: str) -> str:
        """A phone number, as E.164 (see :func:`gateway.numbers.normalise_msisdn`)."""
        return normalise_msisdn(self.text(name, MAX_FIELD), default_region)

    def flag(self, name: str) -> bool:
        """A required boolean: JSON ``true``/``false``, or the same words as text."""
        value = self.values.get(name)
        if value is None:
            raise BadRequest(f"missing field {name}")
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise BadRequest(f"field {name} must be true or false")

    def number(self, name: str) -> int | None:
        """An optional whole number of ASCII digits, at most ``MAX_NUMBER`` (absent: ``None``)."""
        value = self.values.get(name)
        if value is None:
            return None
        number: int | None = None
        if isinstance(value, str) and is_digits(value.strip()):
            number = int(value.strip())
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        if number is None or not 0 <= number <= MAX_NUMBER:
            raise BadRequest(f"field {name} must be a whole number (0 to {MAX_NUMBER})")
        return number


async def json_fields(request: web.Request) -> Fields:
    """The fields of a JSON object body, or 415 for another content type."""
    if request.content_type != "application/json":
        raise BadRequest("expected a JSON body (application/json)", 415)
    try:
        data = json.loads(await request.text())
    except (ValueError, LookupError):  # bad JSON, bad UTF-8, an unknown charset
        raise BadRequest("the body is not readable JSON") from None
    except RecursionError:  # [[[[... nested past what the parser follows
        raise BadRequest("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the body is not a JSON object")
    return Fields(data)


async def form_fields(request: web.Request) -> Fields:
    """The fields of a form-encoded body, or 415 for another content type."""
    if request.content_type not in FORM_TYPES:
        raise BadRequest("expected a form-encoded body (application/x-www-form-urlencoded)", 415)
    try:
        form = await request.post()
    except ValueError:  # bad percent-encoding or UTF-8
        raise BadRequest("the body is not a readable form") from None
    return Fields(form)


def query_fields(request: web.Request) -> Fields:
    """The fields of the query string (aggregators that call back with GET)."""
    return Fields(request.query)


def latest_hop(
    channel: str,
    session_ref: str,
    msisdn: str,
    service_code: str,
    message: str,
    *,
    new_session: bool,
    sequence: int | None = None,
    network: str = "",
) -> Inbound:
    """A hop from an aggregator that sends only the latest answer (``mode="latest"``).

    ``message`` is that answer, or on the hop that opens a session the whole dial string,
    whose shortcut digits are the inputs (``*123*1*2#`` on ``*123#``: 1, 2). An opening
    message that is not a dial string of ``service_code`` carries no input.
    """
    inputs: tuple[str, ...] = (message,)
    if new_session:
        dialled = message.strip()
        is_dial = dialled.startswith("*") and dialled.endswith("#")
        # split_dial finds no digits in a dial string of another code.
        inputs = split_dial(dialled, (service_code,))[1] if is_dial else ()
    return Inbound(
        channel=channel,
        session_ref=session_ref,
        msisdn=msisdn,
        service_code=service_code,
        inputs=inputs,
        mode="latest",
        new_session=new_session,
        sequence=sequence,
        network=network,
    )
