"""Hubtel Programmable Services over USSD (PROTOCOLS.md §2.1).

Request, JSON, on the dial and after every answer; ``Message`` is the whole dial string on
``Initiation`` and only the latest answer afterwards::

    POST /ussd/hubtel
    Content-Type: application/json

    {"SessionId": "3c7ad1", "ServiceCode": "123", "Type": "Initiation", "Message": "*123*1#",
     "Operator": "mtn", "Platform": "USSD", "Mobile": "8501912345678", "Sequence": 1}

``Type`` is ``Initiation`` | ``Response`` | ``Release`` (the subscriber or Hubtel closed the
session) | ``Timeout`` (the service answered too late; Hubtel ignores any reply), compared
case-insensitively: the docs write it in lower case, the SDK in PascalCase.

Reply, JSON: ``Response`` waits for input, ``Release`` closes::

    {"Type": "Response", "Message": "Pick a size\\n1. Small", "Label": "Pick a size",
     "DataType": "input", "FieldType": "text"}
"""

from __future__ import annotations

from aiohttp import web

from gateway.channels._wire import MAX_FIELD, json_fields, latest_hop
from gateway.dial import split_dial
from gateway.messages import MAX_USSD_STRING, BadRequest, Inbound, Reply, SessionEnd
from gateway.settings import Settings

HOPS: dict[str, bool] = {"initiation": True, "response": False}  # Type -> opens a session
ENDS: dict[str, str] = {"release": "released", "timeout": "abandoned"}  # Type -> end status


class Hubtel:
    slug = "hubtel"
    method = "POST"

    async def parse(self, request: web.Request, settings: Settings) -> Inbound | SessionEnd:
        data = await json_fields(request)
        session_ref = data.session_ref("SessionId")
        given = data.ident("Type")
        kind = given.lower()
        msisdn = data.phone("Mobile", settings.default_region)
        # ServiceCode is the code registered at Hubtel ("123", "714*5"), without * and #; the
        # same on every hop, so the session is always found under the same base code.
        base, _ = split_dial(data.ident("ServiceCode"), settings.service_codes)
        if kind in ENDS:
            return SessionEnd(self.slug, session_ref, msisdn, base, status=ENDS[kind])
        if kind not in HOPS:
            raise BadRequest(
                f"field Type must be Initiation, Response, Release or Timeout, not {given!r}"
            )
        return latest_hop(
            self.slug,
            session_ref,
            msisdn,
            base,
            data.input("Message", MAX_USSD_STRING),
            new_session=HOPS[kind],
            sequence=data.number("Sequence"),
            network=data.text("Operator", MAX_FIELD, default=""),
        )

    def render(self, request: web.Request, reply: Reply | None) -> web.Response:
        if reply is None:  # a Release or Timeout notice: nothing left to show
            return web.json_response({"Type": "Release", "Message": ""})
        return web.json_response(
            {
                "Type": "Release" if reply.end else "Response",
                "Message": reply.text,
                # Hubtel's app and web channels show Label as the screen's title.
                "Label": reply.text.split("\n", 1)[0],
                "DataType": "display" if reply.end else "input",
                "FieldType": "text",
            }
        )
