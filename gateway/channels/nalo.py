"""Nalo Solutions USSD (PROTOCOLS.md §2.3: third-party sources; check Nalo's Postman doc).

Request, JSON, on the dial and after every answer; ``MSGTYPE`` true opens a session, and then
``USERDATA`` is the whole dial string, afterwards only the latest answer::

    POST /ussd/nalo
    Content-Type: application/json

    {"USERID": "NALOTest", "MSISDN": "8501912345678", "USERDATA": "*123*1#",
     "MSGTYPE": true, "NETWORK": "MTN", "SESSIONID": "16590115252429751"}

Nalo sends no service code, so every hop is taken as the first configured code (the one the
Nalo account serves); a dial string of that code still yields its shortcut digits.
``SESSIONID`` is required: without it a redial could not be told from a retried first hop.

Reply, JSON, echoing ``USERID`` and ``MSISDN``; ``MSGTYPE`` true continues, false closes::

    {"USERID": "NALOTest", "MSISDN": "8501912345678", "MSG": "Pick a size\\n1. Small",
     "MSGTYPE": true}
"""

from __future__ import annotations

from aiohttp import web

from gateway.channels._wire import MAX_FIELD, json_fields, latest_hop
from gateway.messages import MAX_USSD_STRING, Inbound, Reply, SessionEnd
from gateway.settings import Settings

ECHOED = ("USERID", "MSISDN")
# What render must send back, kept on the request: the adapter serves every request at once.
ECHO: web.RequestKey[dict[str, object]] = web.RequestKey("okryu.nalo.echo", dict)


class Nalo:
    slug = "nalo"
    method = "POST"

    async def parse(self, request: web.Request, settings: Settings) -> Inbound | SessionEnd:
        data = await json_fields(request)
        data.ident("USERID")  # only echoed, but a reply without it is lost
        msisdn = data.phone("MSISDN", settings.default_region)
        session_ref = data.session_ref("SESSIONID")
        hop = latest_hop(
            self.slug,
            session_ref,
            msisdn,
            settings.service_code,
            data.input("USERDATA", MAX_USSD_STRING),
            new_session=data.flag("MSGTYPE"),
            network=data.text("NETWORK", MAX_FIELD, default=""),
        )
        request[ECHO] = {name: data.raw(name) for name in ECHOED}
        return hop

    def render(self, request: web.Request, reply: Reply | None) -> web.Response:
        echo = request[ECHO]
        text, more = ("", False) if reply is None else (reply.text, not reply.end)
        return web.json_response({**echo, "MSG": text, "MSGTYPE": more})
