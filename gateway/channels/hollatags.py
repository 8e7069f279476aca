"""HollaTags USSD (PROTOCOLS.md §2.2, from the vendor's docs).

Request, GET with query parameters, on the dial, after every answer and when the session
ends; ``session_msg`` is the whole dial string on ``begin`` and only the latest answer on
``continue``::

    GET /ussd/hollatags?session_id=4410021&session_operation=begin&session_msg=*123*1%23
        &session_msisdn=8501912345678&session_from=*123%23&session_type=1&session_mno=MTN

Reply, JSON; ``session_type`` 1 asks for an answer, 4 shows the text and ends::

    {"session_operation": "continue", "session_type": 1, "session_id": "4410021",
     "session_msg": "Pick a size\\r\\n1. Small"}

HollaTags' own example separates lines with ``\\r\\n``; the text is sent as the menus wrote it.
"""

from __future__ import annotations

from aiohttp import web

from gateway.channels._wire import MAX_FIELD, latest_hop, query_fields
from gateway.dial import split_dial
from gateway.messages import MAX_USSD_STRING, BadRequest, Inbound, Reply, SessionEnd
from gateway.settings import Settings

OPERATIONS = ("begin", "continue", "end")
ASK, NOTIFY_AND_END = 1, 4  # session_type values
# What render must send back, kept on the request: the adapter serves every request at once.
SESSION_ID: web.RequestKey[str] = web.RequestKey("okryu.hollatags.session_id", str)


class HollaTags:
    slug = "hollatags"
    method = "GET"

    async def parse(self, request: web.Request, settings: Settings) -> Inbound | SessionEnd:
        data = query_fields(request)
        session_ref = data.session_ref("session_id")
        operation = data.ident("session_operation").lower()
        if operation not in OPERATIONS:
            raise BadRequest("field session_operation must be begin, continue or end")
        msisdn = data.phone("session_msisdn", settings.default_region)
        base, _ = split_dial(data.ident("session_from"), settings.service_codes)
        request[SESSION_ID] = session_ref
        if operation == "end":  # HollaTags does not say whether the subscriber or network ended
            return SessionEnd(self.slug, session_ref, msisdn, base, status="released")
        return latest_hop(
            self.slug,
            session_ref,
            msisdn,
            base,
            data.input("session_msg", MAX_USSD_STRING),
            new_session=operation == "begin",
            network=data.text("session_mno", MAX_FIELD, default=""),
        )

    def render(self, request: web.Request, reply: Reply | None) -> web.Response:
        more = reply is not None and not reply.end
        return web.json_response(
            {
                "session_operation": "continue" if more else "end",
                "session_type": ASK if more else NOTIFY_AND_END,
                "session_id": request[SESSION_ID],
                "session_msg": "" if reply is None else reply.text,
            }
        )
