"""Africa's Talking USSD callbacks (PROTOCOLS.md §1).

Request, form-encoded, on the first dial and after every answer::

    POST /ussd/africastalking
    sessionId=ATUid_5f2a&serviceCode=*123#&phoneNumber=+8501912345678&networkCode=99999&text=1*2

``text`` holds every input of the session so far joined with ``*`` ("" on the first hop).
Reply, ``text/plain``: ``CON <screen>`` to wait for input, ``END <screen>`` to close.

Resellers copy this contract under other field names, so the parsing lives in
:mod:`gateway.channels.atcompat`; Africa's Talking is that adapter with AT's own names.
"""

from __future__ import annotations

from aiohttp import web

from gateway.channels._wire import MAX_FIELD, form_fields
from gateway.channels.atcompat import MAX_TEXT, AtCompatible
from gateway.dial import split_dial
from gateway.messages import BadRequest, SessionEnd
from gateway.settings import Settings

# Success: reached its end; Incomplete: cut while a menu waited (timeout or cancel);
# Failed: our answer was an error or too late.
END_STATUS = {"Success": "completed", "Incomplete": "abandoned", "Failed": "failed"}


class AfricasTalking(AtCompatible):
    """Africa's Talking itself: POST, AT's own field names."""

    def __init__(self) -> None:
        super().__init__("africastalking")

    async def parse_end(self, request: web.Request, settings: Settings) -> SessionEnd:
        """AT's end-of-session notification (PROTOCOLS.md §1.4), posted to ``/events``::

        sessionId=ATUid_5f2a&serviceCode=*123#&phoneNumber=+8501912345678&status=Incomplete
        &hopsCount=6&durationInMillis=41234&input=1*1*2&lastAppResponse=CON ...
        """
        data = await form_fields(request)
        status = data.ident("status")
        if status not in END_STATUS:
            raise BadRequest(f"status must be one of {', '.join(END_STATUS)}")
        base, _ = split_dial(data.ident("serviceCode"), settings.service_codes)
        return SessionEnd(
            channel=self.slug,
            session_ref=data.session_ref("sessionId"),
            msisdn=data.phone("phoneNumber", settings.default_region),
            service_code=base,
            status=END_STATUS[status],
            hops=data.number("hopsCount"),
            duration_ms=data.number("durationInMillis"),
            last_screen=data.text("lastAppResponse", MAX_TEXT, default=""),
            error=data.text("errorMessage", MAX_FIELD, default=""),
        )
