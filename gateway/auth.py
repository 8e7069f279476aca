"""Callback authentication: a shared secret and an optional source-address allowlist.

Aggregators can be configured to send a secret, as a header (``X-Okryu-Secret``) or a query
parameter (``?secret=``); addresses outside the allowlist are refused whatever they send.
A refused callback gets 403 and is logged without its body (it may carry phone numbers).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

from aiohttp import web

SECRET_HEADER = "X-Okryu-Secret"
SECRET_PARAM = "secret"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class CallbackAuth:
    secret: str | None = field(default=None, repr=False)  # never in logs
    allow: tuple[Network, ...] = ()

    @property
    def is_open(self) -> bool:
        """Neither a secret nor an allowlist: anyone who reaches the endpoint may call it."""
        return self.secret is None and not self.allow

    def refusal(self, request: web.Request) -> str | None:
        """Why ``request`` is refused, or None when it may pass."""
        if self.allow:
            try:
                address = ipaddress.ip_address(request.remote or "")
            except ValueError:
                return "unknown source address"
            if not any(address in network for network in self.allow):
                return f"source address {address} is not allowed"
        if self.secret is not None:
            given = request.headers.get(SECRET_HEADER) or request.query.get(SECRET_PARAM) or ""
            # aiohttp decodes header bytes that are not UTF-8 as surrogates, which a plain
            # encode() refuses: pass them through, so any header compares (and fails).
            if not hmac.compare_digest(
                given.encode("utf-8", "surrogatepass"), self.secret.encode()
            ):
                return "missing or wrong secret"
        return None


# Headers a reverse proxy adds. An open channel is allowed only on a loopback listener, where
# nobody but this host can call it; a proxied request there came from anywhere.
PROXY_HEADERS = (
    "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP",
    "X-Client-IP", "True-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP", "Via",
)  # fmt: skip


def is_proxied(request: web.Request) -> bool:
    return any(name in request.headers for name in PROXY_HEADERS)


def parse_networks(value: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8 192.0.2.7"`` -> networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in value.split())
