"""The neutral shapes every channel adapter translates to and from."""

from __future__ import annotations

from dataclasses import dataclass


class BadRequest(Exception):
    """The caller sent something the gateway cannot use; answered with a 4xx and ``reason``."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class Inbound:
    """One USSD hop, whatever aggregator it came from."""

    channel: str
    session_ref: str  # the aggregator's session id
    msisdn: str  # E.164
    service_code: str
    path: tuple[str, ...]  # every input of this aggregator session so far, oldest first
    network: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    end: bool
