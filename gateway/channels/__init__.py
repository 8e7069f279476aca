"""The channel registry: every aggregator dialect the gateway speaks, served at /ussd/<slug>."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aiohttp import web

from gateway.channels import africastalking
from gateway.messages import Inbound, Reply
from gateway.settings import Settings


class Channel(Protocol):
    slug: str
    method: str

    async def parse(self, request: web.Request, settings: Settings) -> Inbound:
        """The hop, or :class:`gateway.messages.BadRequest` with a reason."""
        ...

    def render(self, reply: Reply) -> web.Response: ...


CHANNELS: Mapping[str, Channel] = {
    channel.slug: channel for channel in (africastalking.AfricasTalking(),)
}
