"""Africa's Talking's send API, or a compatible aggregator's.

Form-encoded POST, headers ``apiKey`` and ``Accept``::

    POST /version1/messaging
    username=sandbox&to=%2B254711000111&message=Order+OK-4F2A+placed&from=OKRYU

    {"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
      "Recipients": [{"statusCode": 101, "number": "+254711000111", "status": "Success",
                      "cost": "KES 0.8000", "messageId": "ATXid_5c2b..."}]}}
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from gateway.sms.provider import SendResult, retry

# Per-recipient statusCode values (PROTOCOLS.md §3.1).
_ACCEPTED = frozenset({100, 101, 102})  # Processed, Sent, Queued
# Sending again cannot help: InvalidPhoneNumber, UnsupportedNumberType, UserInBlacklist.
_PERMANENT = frozenset({403, 404, 406})
# AT's status words (PROTOCOLS.md §3.1), the only text of an answer that is stored or logged.
_STATUS_WORDS = frozenset(
    {
        "Processed", "Sent", "Queued", "Success", "RiskHold", "InvalidSenderId",
        "InvalidPhoneNumber", "UnsupportedNumberType", "InsufficientBalance", "UserInBlacklist",
        "CouldNotRoute", "DoNotDisturbRejection", "DuplicateRequest", "InternalServerError",
        "GatewayError", "RejectedByGateway",
    }
)  # fmt: skip
_LARGEST_CODE = 999  # statusCodes are three digits; a longer "code" could be anything


class AfricasTalkingProvider:
    """Sends through Africa's Talking's (or a compatible aggregator's) messaging API."""

    name = "africastalking"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        username: str,
        api_key: str,
        sender: str | None,
        timeout: float = 10,
    ) -> None:
        self._session = session
        self._url = url
        self._username = username
        self._api_key = api_key
        self._sender = sender
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.send_timeout = timeout

    def __repr__(self) -> str:
        # Spelled out so that no repr of this object can leak the api key into a log.
        return f"AfricasTalkingProvider(url={self._url!r}, username={self._username!r})"

    async def send(self, to: str, body: str) -> SendResult:
        """POST one message; never raises for network or provider errors."""
        form = {"username": self._username, "to": to, "message": body}
        if self._sender:
            form["from"] = self._sender
        headers = {"apiKey": self._api_key, "Accept": "application/json"}
        try:
            async with self._session.post(
                self._url, data=form, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                text = await response.text()
        except TimeoutError:
            return retry(f"timed out after {self._timeout.total:g}s")
        except aiohttp.ClientError as exc:
            # The class says what failed; its text may quote the provider's reason phrase.
            return retry(f"connection error: {type(exc).__name__}")
        # An answer's text may echo the number or the message it was asked to send: only the
        # provider's structured fields (the HTTP status, statusCode, a known status word) are
        # kept, never its free text, in the outbox row or the log.
        if status >= 500:
            return retry(f"HTTP {status} from provider")
        if status >= 400:
            # Usually a bad username or api key: retry, so the queue survives until an
            # operator fixes the configuration, but say plainly what to fix.
            return retry(f"HTTP {status} from provider, check username and api key")
        return _parse_recipient(text)


def _parse_recipient(text: str) -> SendResult:
    """Read the single recipient's outcome from an AT JSON answer."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        return retry("non-JSON answer from provider")
    try:
        payload = data["SMSMessageData"]
        recipients = payload["Recipients"]
        if not recipients:
            # AT answers an empty list (with a reason in Message) when it accepted nobody.
            return retry(f"no recipient accepted{_word(payload.get('Message'), ': ')}")
        recipient = recipients[0]
        code = int(recipient["statusCode"])
        status = recipient.get("status")
        message_id = recipient.get("messageId")
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        return retry("unexpected JSON from provider")
    if not 0 <= code <= _LARGEST_CODE:
        return retry("unexpected JSON from provider")  # no statusCode of AT's, maybe a number
    if code in _ACCEPTED:
        # No messageId: sent all the same, under no id, so no receipt can find it.
        return SendResult(ok=True, message_id=str(message_id) if message_id else None)
    error = f"recipient status {code}{_word(status, ' ')}"
    if code in _PERMANENT:
        return SendResult(ok=False, permanent=True, error=error)
    return retry(error)


def _word(value: object, separator: str) -> str:
    """``value`` after ``separator`` if it is one of AT's status words, else nothing: a
    provider's text is kept only when it cannot be an echo of a number, address or body."""
    return f"{separator}{value}" if isinstance(value, str) and value in _STATUS_WORDS else ""
