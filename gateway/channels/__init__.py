"""The channel registry: every aggregator dialect the gateway speaks, served at /ussd/<slug>."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web

from gateway.channels import africastalking, arkesel, hollatags, hubtel, nalo
from gateway.channels.atcompat import AtCompatible
from gateway.messages import Inbound, Reply, SessionEnd
from gateway.settings import Settings, SettingsError


class Channel(Protocol):
    """One aggregator's wire format. One instance serves every request: no per-request state."""

    slug: str
    method: str  # "POST" or "GET"

    async def parse(self, request: web.Request, settings: Settings) -> Inbound | SessionEnd:
        """The hop or the end-of-session notice, or :class:`gateway.messages.BadRequest`."""
        ...

    def render(self, request: web.Request, reply: Reply | None) -> web.Response:
        """``reply`` in the aggregator's format; ``None`` acknowledges a notice.

        ``request`` is the one ``parse`` read: formats that echo the request's ids take them
        from what ``parse`` kept on it.
        """
        ...


CHANNELS: Mapping[str, Channel] = {
    channel.slug: channel
    for channel in (
        africastalking.AfricasTalking(),
        hubtel.Hubtel(),
        arkesel.Arkesel(),
        nalo.Nalo(),
        hollatags.HollaTags(),
    )
}


def load_channels(path: str | None) -> dict[str, Channel]:
    """The built-in channels plus those the TOML file at ``path`` configures.

    The file holds one ``[atcompat.<slug>]`` table per reseller that copies Africa's Talking
    (see :mod:`gateway.channels.atcompat`). A file that cannot be used is a
    :class:`SettingsError` naming ``OKRYU_CHANNELS_FILE``, the file and what is wrong.
    """
    channels: dict[str, Channel] = dict(CHANNELS)
    if not path:
        return channels
    try:
        channels.update(_resellers(path))
    except SettingsError as error:
        raise SettingsError(f"OKRYU_CHANNELS_FILE={path}: {error}") from None
    return channels


def _resellers(path: str) -> dict[str, Channel]:
    try:
        with open(path, "rb") as file:
            config = tomllib.load(file)
    except OSError as error:
        raise SettingsError(f"cannot read it: {error.strerror}") from None
    except UnicodeDecodeError as error:  # TOML is UTF-8; tomllib lets the decoder's error out
        byte = error.object[error.start]
        raise SettingsError(f"not UTF-8 (byte {byte:#04x} at offset {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"not valid TOML: {error}") from None
    unknown = set(config) - {"atcompat"}
    if unknown:
        raise SettingsError(f"unknown tables {sorted(unknown)}; known: atcompat")
    resellers = config.get("atcompat", {})
    if not isinstance(resellers, dict):
        raise SettingsError("atcompat must hold one table per reseller")
    channels: dict[str, Channel] = {}
    for slug, table in resellers.items():
        if not isinstance(table, dict):
            raise SettingsError(f"atcompat.{slug} must be a table, [atcompat.{slug}]")
        if slug in CHANNELS:
            raise SettingsError(f"[atcompat.{slug}] takes the name of a built-in channel")
        channels[slug] = AtCompatible.from_config(slug, table)
    return channels
