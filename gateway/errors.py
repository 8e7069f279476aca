"""The gateway's one exception root.

Every error the gateway raises on purpose derives from :class:`GatewayError`. Their messages
are written by us for operators and callers: reasons, field names, order codes, settings,
protocol faults; never a phone number, address, PIN, SMS body or secret. That is why the logs
show a ``GatewayError``'s message and withhold every other exception's (``gateway.logs``).
"""

from __future__ import annotations


class GatewayError(Exception):
    """An error of the gateway's own, with a message fit to log or show."""
