"""An SMS sink that plays Africa's Talking's send API, for tests and demos.

    POST /version1/messaging      apiKey: <key>
    username=sandbox&to=%2B254711000111&message=Hello&from=OKRYU

    {"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
      "Recipients": [{"statusCode": 101, "number": "+254711000111", "status": "Success",
                      "cost": "KES 0.8000", "messageId": "ATXid_1"}]}}

``GET /messages`` lists what was accepted. ``fail_next``, ``refuse_next`` and ``reject_next``
inject failures. With ``dlr_url`` set, ``report`` posts AT's delivery report of a message there
(form-encoded: ``id``, ``status``, ``phoneNumber``, ``networkCode``, ``retryCount``, and
``failureReason`` for a failure), and ``report_before_answer`` posts the next one's before its
send is answered, as AT's report can overtake its own answer.
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

import aiohttp
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
class SinkReport:
    """One delivery report the sink posted, and what the gateway answered."""

    id: str
    status: str
    answer: int  # the HTTP status of the gateway's answer


@dataclass(frozen=True)
class _Rejection:
    status_code: int
    status: str


@dataclass(frozen=True)
class _Failure:
    status: int
    body: str


class SmsSink:
    """The sink's state: accepted messages and the failures still to inject."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        id_prefix: str = "ATXid_",
        dlr_url: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.messages: list[SinkMessage] = []
        self.requests = 0  # every POST, including refused ones
        self.request_headers: list[dict[str, str]] = []  # each POST's headers, in order
        self.reports: list[SinkReport] = []  # every delivery report posted, in order
        self.id_prefix = id_prefix  # message ids are this and a serial number
        self.dlr_url = dlr_url  # where delivery reports go (AT's callback URL)
        self._clock = clock
        self._ids = itertools.count(1)
        self._failures: list[_Failure] = []
        self._refusals: list[str] = []
        self._rejections: list[_Rejection] = []
        self._early_reports: list[str] = []
        self._arrived = asyncio.Condition()
        self.app = create_app(self)

    def fail_next(self, n: int = 1, status: int = 500, body: str = "Internal Server Error") -> None:
        """Answer the next ``n`` requests with HTTP ``status`` and ``body`` as plain text."""
        self._failures.extend([_Failure(status, body)] * n)

    def refuse_next(self, n: int = 1, message: str = "InvalidSenderId") -> None:
        """Accept no recipient of the next ``n`` requests, saying why in ``Message``.

        AT answers so, an empty ``Recipients``, when it takes nobody (a bad sender id).
        """
        self._refusals.extend([message] * n)

    def report_before_answer(self, n: int = 1, status: str = "Success") -> None:
        """Post the delivery report of each of the next ``n`` accepted messages before the
        send that it answers is answered: the report overtakes the answer."""
        self._early_reports.extend([status] * n)

    def reject_next(
        self, n: int = 1, status_code: int = 403, status: str = "InvalidPhoneNumber"
    ) -> None:
        """Answer the next ``n`` requests with a recipient-level failure."""
        self._rejections.extend([_Rejection(status_code, status)] * n)

    def take_failure(self) -> tuple[int, str] | None:
        """The HTTP status and body to fail this request with, if one is pending."""
        if not self._failures:
            return None
        failure = self._failures.pop(0)
        return failure.status, failure.body

    def take_refusal(self) -> str | None:
        """The ``Message`` to accept no recipient of this request with, if one is pending."""
        return self._refusals.pop(0) if self._refusals else None

    def take_early_report(self) -> str | None:
        """The status to report this request's message with before answering, if pending."""
        return self._early_reports.pop(0) if self._early_reports else None

    def take_rejection(self) -> tuple[int, str] | None:
        """The (statusCode, status) to reject this request's recipients with, if pending."""
        if not self._rejections:
            return None
        rejection = self._rejections.pop(0)
        return rejection.status_code, rejection.status

    def accept(self, to: str, message: str, sender: str | None, username: str) -> SinkMessage:
        """Record one message and give it a fresh id, ``ATXid_<n>`` by default."""
        sms = SinkMessage(
            f"{self.id_prefix}{next(self._ids)}", to, message, sender, username, self._clock()
        )
        self.messages.append(sms)
        return sms

    async def report(self, message_id: str, status: str = "Success") -> int:
        """Post AT's delivery report of ``message_id`` to ``dlr_url``; the HTTP status answered.

        ``status`` is AT's word: ``Success``, ``Failed``, ``Rejected`` (final), ``Sent``,
        ``Submitted``, ``Buffered`` (on the way).
        """
        if self.dlr_url is None:
            raise RuntimeError("the sink has no dlr_url to post delivery reports to")
        number = next((m.to for m in self.messages if m.id == message_id), "")
        form = {
            "id": message_id,
            "status": status,
            "phoneNumber": number,
            "networkCode": "99999",
            "retryCount": "0",
        }
        if status in ("Failed", "Rejected"):
            form["failureReason"] = "DeliveryFailure"
        async with aiohttp.ClientSession() as session, session.post(self.dlr_url, data=form) as r:
            answer = r.status
        self.reports.append(SinkReport(message_id, status, answer))
        return answer

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
        http_status, body = failure
        return web.Response(status=http_status, text=body)
    form = await request.post()
    fields: dict[str, str] = {}
    for name in ("username", "to", "message"):
        value = form.get(name)
        if not isinstance(value, str) or not value:
            return web.Response(status=400, text=f"Request is missing required form field '{name}'")
        fields[name] = value
    sender = form.get("from")
    refusal = sink.take_refusal()
    if refusal is not None:
        return web.json_response({"SMSMessageData": {"Message": refusal, "Recipients": []}})
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
    early = sink.take_early_report()
    if early is not None:
        for recipient in recipients:
            if recipient["statusCode"] == 101:
                await sink.report(recipient["messageId"], early)
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
