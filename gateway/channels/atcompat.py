"""Resellers that copy Africa's Talking's USSD contract under other names (PROTOCOLS.md §2.5).

Crossgate, Bonga, MobileSasa and others keep AT's meaning (the whole path in ``text``, a
``CON ``/``END `` plain-text reply) but rename the fields, or call back with GET. Each is one
``AtCompatible``, configured in the TOML file named by ``OKRYU_CHANNELS_FILE``::

    [atcompat.crossgate]
    method = "GET"  # POST (the default) sends the same fields as a form body

    [atcompat.crossgate.fields]  # AT's name = the reseller's; a field left out keeps AT's
    sessionId = "session_id"
    phoneNumber = "msisdn"
    serviceCode = "service_code"
    text = "ussd_string"

Request, with that configuration::

    GET /ussd/crossgate?session_id=cg-81f2&service_code=*123%23&msisdn=8501912345678&ussd_string=1*2

Reply, ``text/plain``::

    CON Pick a size
    1. Small

``networkCode`` is optional on the wire, as it is for AT.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

from gateway.channels._wire import MAX_FIELD, form_fields, query_fields
from gateway.dial import split_dial
from gateway.messages import Inbound, Reply, SessionEnd
from gateway.settings import Settings, SettingsError

MAX_TEXT = 8000  # the whole path of a long session (AT repeats every input on every hop)
AT_FIELDS: Mapping[str, str] = {
    "sessionId": "sessionId",
    "serviceCode": "serviceCode",
    "phoneNumber": "phoneNumber",
    "text": "text",
    "networkCode": "networkCode",
}
METHODS = ("GET", "POST")
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")  # it becomes a URL path segment


class AtCompatible:
    """Africa's Talking's contract under a reseller's field names and HTTP method."""

    def __init__(
        self, slug: str, method: str = "POST", fields: Mapping[str, str] | None = None
    ) -> None:
        self.slug = slug
        self.method = method
        self.fields: Mapping[str, str] = {**AT_FIELDS, **(fields or {})}

    @classmethod
    def from_config(cls, slug: str, table: Mapping[str, object]) -> AtCompatible:
        """The channel one ``[atcompat.<slug>]`` table describes, or :class:`SettingsError`."""
        where = f"[atcompat.{slug}]"
        if not SLUG.fullmatch(slug):
            raise SettingsError(f"{where}: the name must be lower-case letters, digits, - or _")
        unknown = set(table) - {"method", "fields"}
        if unknown:
            raise SettingsError(f"{where}: unknown keys {sorted(unknown)}; known: method, fields")
        method = table.get("method", "POST")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise SettingsError(f"{where}: method must be GET or POST, not {method!r}")
        fields = table.get("fields", {})
        if not isinstance(fields, Mapping):
            raise SettingsError(f"{where}: fields must be a table, like {{ text = 'ussd_string' }}")
        names: dict[str, str] = {}
        for key, name in fields.items():
            if key not in AT_FIELDS:
                raise SettingsError(
                    f"{where}: unknown field {key!r}; known: {', '.join(AT_FIELDS)}"
                )
            if not isinstance(name, str) or not name.strip():
                raise SettingsError(f"{where}: the name of {key} must be non-empty text")
            names[key] = name.strip()
        channel = cls(slug, method.upper(), names)
        if len(set(channel.fields.values())) != len(AT_FIELDS):
            raise SettingsError(f"{where}: two fields share one name: {dict(channel.fields)}")
        return channel

    async def parse(self, request: web.Request, settings: Settings) -> Inbound | SessionEnd:
        data = query_fields(request) if self.method == "GET" else await form_fields(request)
        names = self.fields
        session_ref = data.session_ref(names["sessionId"])
        dialled = data.ident(names["serviceCode"])
        text = data.input(names["text"], MAX_TEXT)
        network = data.text(names["networkCode"], MAX_FIELD, default="")
        # A shortcut dial (*123*1*2#) may arrive as extra digits in the service code; they
        # come before whatever the subscriber typed since.
        base, shortcut = split_dial(dialled, settings.service_codes)
        return Inbound(
            channel=self.slug,
            session_ref=session_ref,
            msisdn=data.phone(names["phoneNumber"], settings.default_region),
            service_code=base,
            inputs=shortcut + (tuple(text.split("*")) if text else ()),
            # AT's first hop carries no text: a hop with text of a session never seen is
            # not an opening one (a late hop, or one whose session was lost).
            new_session=not text,
            network=network,
        )

    def render(self, request: web.Request, reply: Reply | None) -> web.Response:
        if reply is None:  # AT answers its end-of-session notification with a plain 200
            return web.Response(text="OK", content_type="text/plain", charset="utf-8")
        prefix = "END " if reply.end else "CON "
        return web.Response(text=prefix + reply.text, content_type="text/plain", charset="utf-8")
