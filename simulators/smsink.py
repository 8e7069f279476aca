"""An SMS sink that plays Africa's Talking's send API, for tests and demos.

    POST /version1/messaging      apiKey: <key>
    username=sandbox&to=%2B254711000111&message=Hello&from=OKRYU

    {"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
      "Recipients": [{"statusCode": 101, "number": "+254711000111", "status": "Success",
                      "cost": "KES 0.8000", "messageId": "ATXid_1"}]}}

``GET /messages`` lists what was accepted. ``fail_next`` and ``reject_next`` inject failures.
Run standalone with ``python -m simulators.smsink --port 8025 --api-key KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

DEFAULT_API_KEY = "sink-api-key"
_COST = "KES 0.8000"


@dataclass(frozen=True)
class SinkMessage:
    """One message the sink accepted."""

    id: str
    to: str
    message: str
    sender: str | None
    username: str
    at: datetime


@dataclass(frozen=True)
class _Rejection:
    status_code: int
    status: str


class SmsSink:
    """The sink's state: accepted messages and the failures still to inject."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api_key = api_key
        self.messages: list[SinkMessage] = []
        self.requests = 0  # every POST, including refused ones
        self.request_headers: list[dict[str, str]] = []  # each POST's headers, in order
        self._clock = clock
        self._ids = itertools.count(1)
        self._failures: list[int] = []
        self._rejections: list[_Rejection] = []
        self._arrived = asyncio.Condition()
        self.app = create_app(self)

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answer the next ``n`` requests with HTTP ``status`` and no JSON."""
        self._failures.extend([status] * n)

    def reject_next(
        self, n: int = 1, status_code: int = 403, status: str = "InvalidPhoneNumber"
    ) -> None:
        """Answer the next ``n`` requests with a recipient-level failure."""
        self._rejections.extend([_Rejection(status_code, status)] * n)

    def take_failure(self) -> int | None:
        """The HTTP status to fail this request with, if one is pending."""
        return self._failures.pop(0) if self._failures else None

    def take_rejection(self) -> tuple[int, str] | None:
        """The (statusCode, status) to reject this request's recipients with, if pending."""
        if not self._rejections:
            return None
        rejection = self._rejections.pop(0)
        return rejection.status_code, rejection.status

    def accept(self, to: str, message: str, sender: str | None, username: str) -> SinkMessage:
        """Record one message and give it a fresh ``ATXid_<n>``."""
        sms = SinkMessage(f"ATXid_{next(self._ids)}", to, message, sender, username, self._clock())
        self.messages.append(sms)
        return sms

    async def notify_arrival(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[SinkMessage]:
        """Wait (on arrivals, not on a timer) until ``count`` messages were accepted."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.messages) >= count), timeout
            )
        return list(self.messages)


SINK = web.AppKey("sms_sink", SmsSink)


def create_app(sink: SmsSink) -> web.Application:
    """The sink's HTTP face."""
    app = web.Application()
    app[SINK] = sink
    app.router.add_post("/version1/messaging", send)
    app.router.add_get("/messages", messages)
    return app


async def send(request: web.Request) -> web.Response:
    """AT's send endpoint: checks the key, records each recipient, answers AT's JSON."""
    sink = request.app[SINK]
    sink.requests += 1
    sink.request_headers.append(dict(request.headers))
    if request.headers.get("apiKey") != sink.api_key:
        return web.Response(status=401, text="The supplied authentication is invalid")
    failure = sink.take_failure()
    if failure is not None:
        return web.Response(status=failure, text="Internal Server Error")
    form = await request.post()
    fields: dict[str, str] = {}
    for name in ("username", "to", "message"):
        value = form.get(name)
        if not isinstance(value, str) or not value:
            return web.Response(status=400, text=f"Request is missing required form field '{name}'")
        fields[name] = value
    sender = form.get("from")
    rejection = sink.take_rejection()
    recipients: list[dict[str, Any]] = []
    for number in (n.strip() for n in fields["to"].split(",")):
        if rejection is not None:
            code, status = rejection
            recipients.append(
                {
                    "statusCode": code,
                    "number": number,
                    "status": status,
                    "cost": "0",
                    "messageId": "None",
                }
            )
            continue
        sms = sink.accept(
            number,
            fields["message"],
            sender if isinstance(sender, str) else None,
            fields["username"],
        )
        recipients.append(
            {
                "statusCode": 101,
                "number": number,
                "status": "Success",
                "cost": _COST,
                "messageId": sms.id,
            }
        )
    await sink.notify_arrival()
    sent = sum(1 for r in recipients if r["statusCode"] == 101)
    summary = f"Sent to {sent}/{len(recipients)} Total Cost: {_COST if sent else '0'}"
    return web.json_response({"SMSMessageData": {"Message": summary, "Recipients": recipients}})


async def messages(request: web.Request) -> web.Response:
    """Everything accepted so far, oldest first."""
    sink = request.app[SINK]
    return web.json_response(
        {
            "messages": [
                {
                    "id": m.id,
                    "to": m.to,
                    "message": m.message,
                    "from": m.sender,
                    "username": m.username,
                    "at": m.at.isoformat(),
                }
                for m in sink.messages
            ]
        }
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a sink until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args(argv)
    web.run_app(SmsSink(args.api_key).app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
