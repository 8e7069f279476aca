"""What the channel adapters share: reading a request's fields and a first hop's dial string."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

from gateway.dial import split_dial
from gateway.messages import BadRequest, Inbound

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Fields:
    """The named values of one request, each read with the same checks and reasons."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.values = values

    def raw(self, name: str) -> object:
        """The value as it came, for echoing back unchanged (``None`` when absent)."""
        return self.values.get(name)

    def text(self, name: str, limit: int, default: str | None = None) -> str:
        """A text value of at most ``limit`` characters; absent is an error without a default.

        JSON integers are taken as their digits: aggregators send ids and numbers either way.
        """
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
            raise BadRequest(f"field {name} is too long")
        return value

    def ident(self, name: str, limit: int) -> str:
        """A required, non-blank text value (a session id, a service code), stripped."""
        value = self.text(name, limit).strip()
        if not value:
            raise BadRequest(f"{name} is empty")
        return value

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
        """An optional whole number (absent: ``None``)."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise BadRequest(f"field {name} must be a whole number")


async def json_fields(request: web.Request) -> Fields:
    """The fields of a JSON object body, or 415 for another content type."""
    if request.content_type != "application/json":
        raise BadRequest("expected a JSON body (application/json)", 415)
    try:
        data = json.loads(await request.text())
    except (ValueError, LookupError):  # bad JSON, bad UTF-8, an unknown charset
        raise BadRequest("the body is not readable JSON") from None
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
