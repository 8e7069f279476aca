"""Arkesel USSD (PROTOCOLS.md §2.4: from a third-party library, not Arkesel's own docs).

Request, JSON, on the dial and after every answer; ``userData`` is the whole dial string when
``newSession`` is true and only the latest answer afterwards::

    POST /ussd/arkesel
    Content-Type: application/json

    {"sessionID": "ark-51c0", "userID": "OKRYU", "newSession": true,
     "msisdn": "8501912345678", "userData": "*123*1#", "network": "MTN"}

Arkesel sends no service code, so every hop is taken as the first configured code (the one
the Arkesel account serves); a dial string of that code still yields its shortcut digits.

Reply, JSON, echoing the request's ids; ``continueSession`` false closes::

    {"sessionID": "ark-51c0", "userID": "OKRYU", "msisdn": "8501912345678",
     "message": "Pick a size\\n1. Small", "continueSession": true}
"""

from __future__ import annotations

from aiohttp import web

from gateway.channels._wire import MAX_FIELD, json_fields, latest_hop
from gateway.messages import MAX_USSD_STRING, Inbound, Reply, SessionEnd
from gateway.settings import Settings

ECHOED = ("sessionID", "userID", "msisdn")
# What render must send back, kept on the request: the adapter serves every request at once.
ECHO: web.RequestKey[dict[str, object]] = web.RequestKey("okryu.arkesel.echo", dict)


class Arkesel:
    slug = "arkesel"
    method = "POST"

    async def parse(self, request: web.Request, settings: Settings) -> Inbound | SessionEnd:
        data = await json_fields(request)
        session_ref = data.session_ref("sessionID")
        data.ident("userID")  # only echoed, but a reply without it is lost
        msisdn = data.phone("msisdn", settings.default_region)
        hop = latest_hop(
            self.slug,
            session_ref,
            msisdn,
            settings.service_code,
            data.input("userData", MAX_USSD_STRING),
            new_session=data.flag("newSession"),
            network=data.text("network", MAX_FIELD, default=""),
        )
        request[ECHO] = {name: data.raw(name) for name in ECHOED}
        return hop

    def render(self, request: web.Request, reply: Reply | None) -> web.Response:
        echo = request[ECHO]
        text, more = ("", False) if reply is None else (reply.text, not reply.end)
        return web.json_response({**echo, "message": text, "continueSession": more})
