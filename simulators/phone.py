"""A headless handset: dials a USSD code over HTTP exactly as an aggregator would.

Each aggregator dialect is one ``Dialect``: how a hop becomes an HTTP request and how the
answer becomes a ``Display``. Africa's Talking sends the whole path on every hop::

    POST /ussd/africastalking
    sessionId=ATUid_3f..&serviceCode=*123%23&phoneNumber=%2B254711000111&networkCode=99999&text=1*2

    CON Pick a size
    1. Small
    2. Large

``at_compatible()`` makes the same dialect under a reseller's field names and method. Hubtel,
Arkesel, Nalo and HollaTags send only the newest answer, with their own flag for the hop that
opens a session, whose message is the whole dial string (``*123*1#``); they answer in JSON.
They take the number without its ``+``.

The phone also reads the gateway's development SMS inbox (``GET /dev/sms``).
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

import aiohttp
from yarl import URL

from simulators.errors import SimulatorError

DEFAULT_PHONE = "+8501912345678"  # the number a handset dials as when none is given


class PhoneError(SimulatorError):
    """The handset cannot do what was asked (no session, gateway unreachable...)."""


@dataclass(frozen=True)
class Display:
    """What the handset shows after a hop: the text without ``CON ``/``END ``."""

    text: str
    end: bool
    status: int
    raw: str = ""
    well_formed: bool = True  # the body is in the dialect's format

    @property
    def ok(self) -> bool:
        """Whether the gateway answered 200 in the dialect's format."""
        return self.status == 200 and self.raw != "" and self.well_formed


@dataclass(frozen=True)
class Sms:
    """One message in the development inbox."""

    id: int
    body: str
    at: datetime


@dataclass(frozen=True)
class Hop:
    """One request of a USSD dialogue, in neutral terms."""

    session_id: str
    service_code: str
    msisdn: str
    network_code: str
    inputs: tuple[str, ...]  # every answer so far in this session, oldest first


@dataclass(frozen=True)
class HttpRequest:
    """The HTTP request a dialect makes of a hop."""

    method: str = "POST"
    params: dict[str, str] | None = None  # the query string
    form: dict[str, str] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dialect:
    """How one aggregator talks: new session ids, hop -> request, response -> screen."""

    name: str
    new_session_id: Callable[[], str]
    encode: Callable[[Hop], HttpRequest]
    decode: Callable[[int, str], Display]


_AT_REPLY = re.compile(r"^(CON|END)(?: |$)")
_AT_FIELDS = ("sessionId", "serviceCode", "phoneNumber", "networkCode", "text")


def _at_session_id() -> str:
    return f"ATUid_{uuid.uuid4().hex}"


def _hex_session_id() -> str:
    return uuid.uuid4().hex


def _numeric_session_id() -> str:
    return str(uuid.uuid4().int % 10**17)


def at_compatible(
    name: str, method: str = "POST", fields: Mapping[str, str] | None = None
) -> Dialect:
    """Africa's Talking's dialect under other field names (AT's name -> theirs) and method.

    ``at_compatible("africastalking")`` is Africa's Talking itself.
    """
    names = {field: field for field in _AT_FIELDS} | dict(fields or {})
    method = method.upper()

    def encode(hop: Hop) -> HttpRequest:
        # The whole path on every hop: "" first, then "1", then "1*2"...
        values = {
            names["sessionId"]: hop.session_id,
            names["serviceCode"]: hop.service_code,
            names["phoneNumber"]: hop.msisdn,
            names["networkCode"]: hop.network_code,
            names["text"]: "*".join(hop.inputs),
        }
        if method == "GET":
            return HttpRequest(method="GET", params=values)
        return HttpRequest(method=method, form=values)

    return Dialect(name, _at_session_id, encode, _at_decode)


def _at_decode(status: int, body: str) -> Display:
    match = _AT_REPLY.match(body) if status == 200 else None
    if match is None:
        # AT ends the session on an HTTP error or a body without CON/END.
        return _broken(status, body)
    return Display(text=body[4:], end=match.group(1) == "END", status=status, raw=body)


def _broken(status: int, body: str) -> Display:
    """An HTTP error or a body out of format: the handset shows it and the session is over."""
    return Display(text=body.strip(), end=True, status=status, raw=body, well_formed=False)


def _json_screen(
    status: int, body: str, text_key: str, more: Callable[[dict[str, Any]], bool | None]
) -> Display:
    """A JSON answer: the screen text under ``text_key``, ``more(answer)`` True to continue.

    ``more`` returns None when the answer does not say, which makes it out of format.
    """
    try:
        data = json.loads(body) if status == 200 else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get(text_key), str):
        return _broken(status, body)
    going_on = more(data)
    if going_on is None:
        return _broken(status, body)
    return Display(text=data[text_key], end=not going_on, status=status, raw=body)


def _digits(msisdn: str) -> str:
    return msisdn.removeprefix("+")


def _latest(hop: Hop) -> str:
    """The newest answer, or on the opening hop the whole dial string."""
    return hop.inputs[-1] if hop.inputs else hop.service_code


def _hubtel_encode(hop: Hop) -> HttpRequest:
    return HttpRequest(
        json={
            "SessionId": hop.session_id,
            # Hubtel sends the code registered with it ("123"); a handset cannot know which
            # prefix that is, so it sends the whole dialled code, which resolves the same.
            "ServiceCode": hop.service_code.strip("*#"),
            "Type": "Response" if hop.inputs else "Initiation",
            "Message": _latest(hop),
            "Operator": hop.network_code,
            "Platform": "USSD",
            "Mobile": _digits(hop.msisdn),
            "Sequence": len(hop.inputs) + 1,
        }
    )


def _hubtel_decode(status: int, body: str) -> Display:
    kinds = {"Response": True, "Release": False}
    return _json_screen(status, body, "Message", lambda data: kinds.get(str(data.get("Type"))))


def _arkesel_encode(hop: Hop) -> HttpRequest:
    return HttpRequest(
        json={
            "sessionID": hop.session_id,
            "userID": "OKRYU",
            "newSession": not hop.inputs,
            "msisdn": _digits(hop.msisdn),
            "userData": _latest(hop),
            "network": hop.network_code,
        }
    )


def _arkesel_decode(status: int, body: str) -> Display:
    return _json_screen(status, body, "message", lambda data: _flag(data.get("continueSession")))


def _nalo_encode(hop: Hop) -> HttpRequest:
    return HttpRequest(
        json={
            "USERID": "OKRYU",
            "MSISDN": _digits(hop.msisdn),
            "USERDATA": _latest(hop),
            "MSGTYPE": not hop.inputs,
            "NETWORK": hop.network_code,
            "SESSIONID": hop.session_id,
        }
    )


def _nalo_decode(status: int, body: str) -> Display:
    return _json_screen(status, body, "MSG", lambda data: _flag(data.get("MSGTYPE")))


def _hollatags_encode(hop: Hop) -> HttpRequest:
    return HttpRequest(
        method="GET",
        params={
            "session_id": hop.session_id,
            "session_operation": "continue" if hop.inputs else "begin",
            "session_msg": _latest(hop),
            "session_msisdn": _digits(hop.msisdn),
            "session_from": hop.service_code,
            "session_type": "1",
            "session_mno": hop.network_code,
        },
    )


def _hollatags_decode(status: int, body: str) -> Display:
    operations = {"continue": True, "end": False}
    return _json_screen(
        status, body, "session_msg", lambda data: operations.get(str(data.get("session_operation")))
    )


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        at_compatible("africastalking"),
        Dialect("hubtel", _hex_session_id, _hubtel_encode, _hubtel_decode),
        Dialect("arkesel", _hex_session_id, _arkesel_encode, _arkesel_decode),
        Dialect("nalo", _numeric_session_id, _nalo_encode, _nalo_decode),
        Dialect("hollatags", _numeric_session_id, _hollatags_encode, _hollatags_decode),
    )
}


class Phone:
    """A handset with one number, one USSD dialogue at a time, and an SMS inbox."""

    def __init__(
        self,
        url: str,
        msisdn: str,
        *,
        dialect: str | Dialect = "africastalking",
        session: aiohttp.ClientSession | None = None,
        network_code: str = "99999",
        inbox_url: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        if isinstance(dialect, str) and dialect not in DIALECTS:
            raise PhoneError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
        self.url = url
        self.msisdn = msisdn
        self.dialect = DIALECTS[dialect] if isinstance(dialect, str) else dialect
        self.network_code = network_code
        # AT gives up on an application after about 15 s (PROTOCOLS.md §1.3).
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        # The development inbox lives on the gateway that serves the USSD callback.
        self.inbox_url = inbox_url or str(URL(url).with_path("/dev/sms"))
        self._session = session
        self._owns_session = session is None
        self._hop: Hop | None = None
        self._ended = True
        self._last_sms_id = 0

    @property
    def in_session(self) -> bool:
        """Whether a dialogue is open and waiting for an answer."""
        return not self._ended

    async def dial(self, service_code: str) -> Display:
        """Start a new dialogue with ``service_code`` (e.g. ``*123#``)."""
        self._hop = Hop(
            self.dialect.new_session_id(), service_code, self.msisdn, self.network_code, ()
        )
        return await self._exchange(self._hop)

    @property
    def last_hop(self) -> Hop | None:
        """The hop this handset sent last, or None before the first dial."""
        return self._hop

    def next_hop(self, answer: str) -> Hop:
        """The hop that answering the open screen with ``answer`` sends."""
        if self._hop is None:
            raise PhoneError("no USSD session: dial a code first")
        if self._ended:
            raise PhoneError("the USSD session has ended: dial again")
        return Hop(
            self._hop.session_id,
            self._hop.service_code,
            self.msisdn,
            self.network_code,
            (*self._hop.inputs, answer),
        )

    async def send(self, answer: str) -> Display:
        """Answer the open screen."""
        self._hop = self.next_hop(answer)
        return await self._exchange(self._hop)

    async def resend(self, hop: Hop) -> Display:
        """Send ``hop`` again, as an aggregator's retry or a late delivery does.

        The answer goes to the aggregator, not to the handset: the dialogue is unchanged.
        """
        return await self._request(hop)

    def hang_up(self) -> None:
        """Drop the dialogue locally, as pressing Cancel on a handset does."""
        self._ended = True

    async def inbox(self, after: int | None = None) -> list[Sms]:
        """New SMS since the last call (or since id ``after``), oldest first."""
        since = self._last_sms_id if after is None else after
        params = {"to": self.msisdn, "after": str(since)}
        try:
            async with self._http().get(
                self.inbox_url, params=params, timeout=self.timeout
            ) as response:
                if response.status != 200:
                    text = await response.text()
                    raise PhoneError(f"SMS inbox answered HTTP {response.status}: {text[:100]}")
                data = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PhoneError(f"cannot read the SMS inbox at {self.inbox_url}: {exc}") from exc
        try:
            messages = [
                Sms(int(m["id"]), str(m["body"]), datetime.fromisoformat(m["at"]))
                for m in data["messages"]
            ]
        except (TypeError, KeyError, ValueError) as exc:
            raise PhoneError(f"unexpected SMS inbox answer: {data!r:.200}") from exc
        if messages:
            self._last_sms_id = max(self._last_sms_id, *(m.id for m in messages))
        return messages

    async def close(self) -> None:
        """Close the HTTP session if the phone opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def _exchange(self, hop: Hop) -> Display:
        try:
            screen = await self._request(hop)
        except PhoneError:
            self._ended = True
            raise
        self._ended = screen.end
        return screen

    async def _request(self, hop: Hop) -> Display:
        """One HTTP request of ``hop`` in the dialect, and its answer as a screen."""
        request = self.dialect.encode(hop)
        try:
            async with self._http().request(
                request.method,
                self.url,
                params=request.params,
                data=request.form,
                json=request.json,
                headers=request.headers,
                timeout=self.timeout,
            ) as response:
                screen = self.dialect.decode(response.status, await response.text())
        except TimeoutError as exc:
            raise PhoneError(f"no answer from {self.url} within {self.timeout.total:g}s") from exc
        except aiohttp.ClientError as exc:
            raise PhoneError(f"cannot reach {self.url}: {exc}") from exc
        return screen


class Handset(Protocol):
    """What a subscriber holds: a ``Phone``, or a ``Network`` (or a recording) in front of one.

    The terminal, the scenario runner and the shoppers drive this, never ``Phone`` itself,
    so each of them can cross a simulated network.
    """

    @property
    def in_session(self) -> bool: ...

    async def dial(self, service_code: str) -> Display: ...

    async def send(self, answer: str) -> Display: ...

    def hang_up(self) -> None: ...


def draw_screen(screen: Display, width: int = 24) -> str:
    """Draw ``screen`` as a handset would: wrapped to ``width`` columns inside a box."""
    rows = [row for line in screen.text.split("\n") for row in wrap(line, width)]
    rows.append("")
    rows.append(_footer(screen, width))
    border = "+" + "-" * (width + 2) + "+"
    body = [f"| {row}{' ' * (width - display_width(row))} |" for row in rows]
    return "\n".join([border, *body, border])


def _footer(screen: Display, width: int) -> str:
    if not screen.ok:
        left, right = f"[HTTP {screen.status}]", "[OK]"
    elif screen.end:
        left, right = "", "[OK]"
    else:
        left, right = "[Send]", "[Cancel]"
    return left + " " * max(width - display_width(left) - display_width(right), 1) + right


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: East Asian wide characters (Hangul) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap(line: str, width: int) -> list[str]:
    """Split one line into rows of at most ``width`` columns, breaking at spaces if possible."""
    rows: list[str] = []
    row = ""
    for word in line.split(" "):
        candidate = f"{row} {word}" if row else word
        if display_width(candidate) <= width:
            row = candidate
            continue
        if row:
            rows.append(row)
        row = ""
        for ch in word:  # a word longer than a row is cut wherever it must be
            if display_width(row + ch) > width:
                rows.append(row)
                row = ""
            row += ch
    rows.append(row)
    return rows
