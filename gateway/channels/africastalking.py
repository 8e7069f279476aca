"""Africa's Talking USSD callbacks (PROTOCOLS.md §1).

Request, form-encoded, on the first dial and after every answer::

    POST /ussd/africastalking
    sessionId=ATUid_5f2a&serviceCode=*123#&phoneNumber=+8501912345678&networkCode=99999&text=1*2

``text`` holds every input of the session so far joined with ``*`` ("" on the first hop).
Reply, ``text/plain``: ``CON <screen>`` to wait for input, ``END <screen>`` to close.
"""

from __future__ import annotations

from aiohttp import web

from gateway.dial import split_dial
from gateway.messages import BadRequest, Inbound, Reply
from gateway.numbers import normalise_msisdn
from gateway.settings import Settings

MAX_FIELD = 200
MAX_TEXT = 2000


class AfricasTalking:
    slug = "africastalking"
    method = "POST"

    async def parse(self, request: web.Request, settings: Settings) -> Inbound:
        if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raise BadRequest(
                "expected a form-encoded body (application/x-www-form-urlencoded)", 415
            )
        try:
            form = await request.post()
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body is not a readable form") from None
        fields: dict[str, str] = {}
        for name in ("sessionId", "serviceCode", "phoneNumber", "text"):
            value = form.get(name)
            if value is None:
                raise BadRequest(f"missing field {name}")
            if not isinstance(value, str):
                raise BadRequest(f"field {name} must be text")
            if len(value) > (MAX_TEXT if name == "text" else MAX_FIELD):
                raise BadRequest(f"field {name} is too long")
            fields[name] = value
        if not fields["sessionId"].strip():
            raise BadRequest("sessionId is empty")
        if not fields["serviceCode"].strip():
            raise BadRequest("serviceCode is empty")
        network = form.get("networkCode", "")
        text = fields["text"]
        # A shortcut dial (*123*1*2#) may arrive as extra digits in serviceCode; they come
        # before whatever the subscriber typed since.
        base, shortcut = split_dial(fields["serviceCode"], settings.service_codes)
        return Inbound(
            channel=self.slug,
            session_ref=fields["sessionId"].strip(),
            msisdn=normalise_msisdn(fields["phoneNumber"], settings.default_region),
            service_code=base,
            inputs=shortcut + (tuple(text.split("*")) if text else ()),
            network=network if isinstance(network, str) else "",
        )

    def render(self, reply: Reply) -> web.Response:
        prefix = "END " if reply.end else "CON "
        return web.Response(text=prefix + reply.text, content_type="text/plain", charset="utf-8")
