"""The neutral shapes every channel adapter translates to and from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.errors import GatewayError

# The most characters one USSD string carries: 160 octets of 7-bit GSM (PROTOCOLS.md §5.1).
# The channels bound what a subscriber sends by it, and the web handset what it lets one type.
MAX_USSD_STRING = 182


class BadRequest(GatewayError):
    """The caller sent something the gateway cannot use; answered with a 4xx and ``reason``."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class Inbound:
    """One USSD hop, whatever aggregator it came from.

    Aggregators report input in one of two ways. Africa's Talking and its copies send the
    whole path on every hop (``mode="path"``: ``inputs`` is every answer so far). Hubtel,
    Arkesel, Nalo and HollaTags send only the latest answer (``mode="latest"``: ``inputs`` is
    that one answer, or the shortcut digits of a new dial); the gateway keeps the path.
    In both, a shortcut dial (``*123*1*2#``) arrives as its extra digits at the front of the
    first hop's inputs, and ``service_code`` is the base code (``*123#``).
    """

    channel: str
    session_ref: str  # the aggregator's session id
    msisdn: str  # E.164
    service_code: str  # the base code dialled, shortcut digits removed
    inputs: tuple[str, ...]
    mode: Literal["path", "latest"] = "path"
    new_session: bool = False  # the aggregator says this hop opens a session
    sequence: int | None = None  # the aggregator's hop number in the session, when it sends one
    network: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    end: bool
    screen: str = ""  # the screen (journey state) shown, for metrics and funnels


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """The aggregator says a session is over (AT's end notification, Hubtel's Release/Timeout)."""

    channel: str
    session_ref: str
    msisdn: str
    service_code: str
    # "completed" (reached an END), "abandoned" (cut while waiting), "failed", "released"
    status: str
    hops: int | None = None
    duration_ms: int | None = None
    last_screen: str = ""
    error: str = ""
