"""SMPP 3.4 provider: one long-lived transceiver bind to an SMSC, sends and delivery receipts.

A PDU is a 16-octet header (command_length, command_id, command_status, sequence_number,
each a big-endian 32-bit integer) and a body of C-strings, octets and TLVs. The submit_sm
this provider sends for ``send("+821012345678", "Order OK-4F2A placed")``::

    00000046 00000004 00000000 00000002     length 70, submit_sm, status 0, sequence 2
    00 05 00 4f4b52595500                   service_type "", source TON 5 NPI 0 "OKRYU"
    01 01 38323130313233343536373800        destination TON 1 NPI 1 "821012345678"
    00 00 00 00 00 01 00 00 00              esm_class, protocol_id, priority, no schedule,
                                            no validity, registered_delivery 1, replace 0,
                                            data_coding 0 (GSM-7, one septet per octet), 0
    14 4f72646572204f4b2d34463241...        sm_length 20, short_message

and the SMSC answers ``submit_sm_resp`` with the message id that its receipts quote later, in
a deliver_sm with esm_class 0x04 and ``id:<id> ... stat:DELIVRD err:000 text:...``.

Why this library
----------------
None: a small hand-written codec over asyncio streams, after trying the three candidates
against what the outbox needs (a send that awaits the SMSC's verdict, exact GSM-7/UCS-2
segmentation, a configurable keep-alive, receipts). ``aiosmpplib`` 0.7.4 (asyncio) queues
messages in a broker and reports outcomes through hooks, so every send must be matched to its
response by hand; worse, its UDH splitter counts characters rather than septets and looks for
an ESC character that a Python string never holds: ``"€" * 100`` (200 septets) goes out as a
single 200-septet part, and a € at position 153 makes a 154-septet part. ``smpplib`` 2.2.4 is
synchronous (a thread beside the event loop) and its splitter cuts between ESC and the
character it escapes (``"a" * 152 + "€"`` gives a first part ending in 0x1B; its own source
has a FIXME saying so). ``smpp34`` 1.5.0 (Rust core) worked for the basics in a trial: a
transceiver bind, raw UDH + UCS-2 payloads, ESME_RTHROTTLED as a status, deliver_sm with
TLVs, a ``Disconnected`` event on a dropped socket. But its Python client fixes the
enquire_link interval and the response timeout at 30 s (measured; the constructor takes
neither), reports a response timeout as ESME_RSYSERR, a ``Client`` connects once only,
and its Python server can neither check a password nor drop a connection on demand, so the
test SMSC needed its own PDU handling anyway. That left a native dependency covering only the
easy part, and the codec, about 150 lines, is what the SMPP 3.4 spec lays out field by field.

Delivery is at least once, as for every provider: an SMSC that accepts a part but whose answer
is lost with the connection gets that part again on the retry. A message split into parts is
resumed, not restarted: when part 2 of 3 fails, the retry sends parts 2 and 3 with the same
concatenation reference, so the handset still sees one message. Every part asks for a
receipt, and every part's id goes back to the outbox with the outcome of the send, failed
or not, so each receipt finds its message (``outbox_receipts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

from gateway.errors import GatewayError
from gateway.numbers import mask
from gateway.sms import SendResult
from menus.screens import measure
from store import outbox
from store.models import utcnow

if TYPE_CHECKING:
    from gateway.metrics import Metrics
    from gateway.settings import Settings
    from store.db import Database

logger = logging.getLogger("okryu.smpp")

# command_id values (SMPP 3.4 §5.1.2.1); a response is its request's id with the top bit set.
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
GENERIC_NACK = 0x80000000
RESPONSE = 0x80000000

# command_status values (§5.1.3) this module acts on or names.
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RINVSRCADR = 0x0A
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RSUBMITFAIL = 0x45
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64
ESME_RX_P_APPN = 0x65
ESME_RX_R_APPN = 0x66

STATUS_NAMES: Mapping[int, str] = {
    ESME_ROK: "ESME_ROK",
    ESME_RINVMSGLEN: "ESME_RINVMSGLEN",
    ESME_RINVCMDLEN: "ESME_RINVCMDLEN",
    ESME_RINVCMDID: "ESME_RINVCMDID",
    ESME_RINVBNDSTS: "ESME_RINVBNDSTS",
    ESME_RALYBND: "ESME_RALYBND",
    ESME_RSYSERR: "ESME_RSYSERR",
    ESME_RINVSRCADR: "ESME_RINVSRCADR",
    ESME_RINVDSTADR: "ESME_RINVDSTADR",
    ESME_RBINDFAIL: "ESME_RBINDFAIL",
    ESME_RINVPASWD: "ESME_RINVPASWD",
    ESME_RINVSYSID: "ESME_RINVSYSID",
    ESME_RMSGQFUL: "ESME_RMSGQFUL",
    ESME_RSUBMITFAIL: "ESME_RSUBMITFAIL",
    ESME_RTHROTTLED: "ESME_RTHROTTLED",
    ESME_RX_T_APPN: "ESME_RX_T_APPN",
    ESME_RX_P_APPN: "ESME_RX_P_APPN",
    ESME_RX_R_APPN: "ESME_RX_R_APPN",
}
# The SMSC is overloaded: pause, then send again.
_THROTTLING = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
# Sending the same message again cannot help. Configuration errors (a bad source address,
# a refused system_id) stay retryable, so the queue survives until an operator fixes them.
_PERMANENT = frozenset({ESME_RINVMSGLEN, ESME_RINVDSTADR, ESME_RX_P_APPN, ESME_RX_R_APPN})

DATA_CODING_DEFAULT = 0x00  # the SMSC default alphabet: GSM-7, one septet per octet
DATA_CODING_UCS2 = 0x08
ESM_CLASS_UDHI = 0x40
_ESM_TYPE_MASK = 0x3C  # message type, bits 5-2
_ESM_RECEIPT = 0x04  # SMSC delivery receipt
_ESM_INTERMEDIATE = 0x20  # intermediate delivery notification

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427

_INTERFACE_VERSION = 0x34
_MAX_PDU = 64 * 1024
# Octets of user data per SMS: alone, or beside the 6-octet concatenation header
# (05 00 03 ref total seq). For GSM-7 an octet here is one unpacked septet.
_SINGLE = {"gsm7": 160, "ucs2": 140}
_PART = {"gsm7": 153, "ucs2": 134}
_MAX_ERROR = 300
# After a reconnect attempt is due, the time to connect and bind before sends can go out.
_BIND_TIME = 1.0

# Receipt states, as the text's stat: field and the message_state TLV name them.
_STAT_STATES: Mapping[str, str] = {
    "ENROUTE": "enroute",
    "DELIVRD": "delivered",
    "DELIVERED": "delivered",
    "EXPIRED": "expired",
    "DELETED": "deleted",
    "UNDELIV": "undeliverable",
    "UNDELIVERABLE": "undeliverable",
    "ACCEPTD": "accepted",
    "ACCEPTED": "accepted",
    "UNKNOWN": "unknown",
    "REJECTD": "rejected",
    "REJECTED": "rejected",
    "FAILED": "failed",
}
_MESSAGE_STATES: Mapping[int, str] = {
    1: "enroute",
    2: "delivered",
    3: "expired",
    4: "deleted",
    5: "undeliverable",
    6: "accepted",
    7: "unknown",
    8: "rejected",
}
_RECEIPT_ID = re.compile(rb"(?:^|\s)id:(\S+)", re.IGNORECASE)
_RECEIPT_STAT = re.compile(rb"(?:^|\s)stat:(\S+)", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]{1,20}")

ReceiptHandler = Callable[[str, str], Awaitable[None]]


class SmppError(GatewayError):
    """Something on the SMPP link went wrong: a malformed PDU or a lost connection."""


class LinkClosed(SmppError):
    """The connection ended before the SMSC answered."""


class RetryReceipt(GatewayError):
    """Raised by a receipt handler that cannot record a receipt yet (e.g. an unknown id).

    The provider answers the deliver_sm with ESME_RX_T_APPN, and the SMSC delivers it again.
    """


def status_name(status: int) -> str:
    """``0x00000058 ESME_RTHROTTLED``: a command_status as logs and errors show it."""
    return f"0x{status:08X} {STATUS_NAMES.get(status, 'unknown status')}"


# --- PDUs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pdu:
    """One SMPP PDU: the header fields and the raw body."""

    command_id: int
    sequence: int
    status: int = ESME_ROK
    body: bytes = b""

    def encode(self) -> bytes:
        header = struct.pack(
            ">IIII", 16 + len(self.body), self.command_id, self.status, self.sequence
        )
        return header + self.body


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """Read one whole PDU; raises ``asyncio.IncompleteReadError`` at the end of the stream."""
    header = await reader.readexactly(16)
    length, command_id, status, sequence = struct.unpack(">IIII", header)
    if not 16 <= length <= _MAX_PDU:
        raise SmppError(f"command_length {length} out of range")
    body = await reader.readexactly(length - 16)
    return Pdu(command_id, sequence, status, body)


def cstring(value: str) -> bytes:
    """A C-Octet String: ASCII text and a NUL."""
    return value.encode("ascii") + b"\x00"


class BodyReader:
    """Reads a PDU body field by field."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def cstring(self) -> str:
        end = self._data.find(b"\x00", self._at)
        if end < 0:
            raise SmppError("C-Octet String without its NUL")
        value = self._data[self._at : end].decode("latin-1")
        self._at = end + 1
        return value

    def octet(self) -> int:
        if self._at >= len(self._data):
            raise SmppError("PDU body ends early")
        value = self._data[self._at]
        self._at += 1
        return value

    def octets(self, count: int) -> bytes:
        if self._at + count > len(self._data):
            raise SmppError("PDU body ends early")
        value = self._data[self._at : self._at + count]
        self._at += count
        return value

    def tlvs(self) -> dict[int, bytes]:
        """The optional parameters left in the body, by tag."""
        found: dict[int, bytes] = {}
        while self._at + 4 <= len(self._data):
            tag, length = struct.unpack_from(">HH", self._data, self._at)
            self._at += 4
            found[tag] = self.octets(length)
        return found


@dataclass(frozen=True, slots=True)
class DeliverSm:
    """The fields of a deliver_sm that this provider reads."""

    source_addr: str
    destination_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: Mapping[int, bytes] = field(default_factory=dict)


def decode_deliver_sm(body: bytes) -> DeliverSm:
    """Decode a deliver_sm body (the same layout as submit_sm)."""
    read = BodyReader(body)
    read.cstring()  # service_type
    read.octets(2)  # source TON, NPI
    source = read.cstring()
    read.octets(2)  # destination TON, NPI
    destination = read.cstring()
    esm_class = read.octet()
    read.octets(2)  # protocol_id, priority_flag
    read.cstring()  # schedule_delivery_time
    read.cstring()  # validity_period
    read.octets(2)  # registered_delivery, replace_if_present_flag
    data_coding = read.octet()
    read.octet()  # sm_default_msg_id
    short_message = read.octets(read.octet())
    return DeliverSm(source, destination, esm_class, data_coding, short_message, read.tlvs())


# --- receipts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt: the submit_sm_resp message id it is about and the normalised state."""

    message_id: str
    state: str  # delivered | failed | expired | deleted | undeliverable | rejected | enroute ...


def parse_receipt(message: DeliverSm) -> Receipt | None:
    """The receipt a deliver_sm carries, or None for a mobile-originated message.

    The TLVs (``receipted_message_id``, ``message_state``) win over the text, which SMSCs
    format loosely; a deliver_sm is a receipt if its esm_class says so (message type 0x04, or
    0x20 for an intermediate notification), if it has the TLV, or if its text reads like one.
    """
    kind = message.esm_class & _ESM_TYPE_MASK
    text = (
        message.short_message.decode("utf-16-be", "replace")
        if message.data_coding == DATA_CODING_UCS2
        else message.short_message.decode("latin-1")
    ).encode("latin-1", "replace")
    id_match = _RECEIPT_ID.search(text)
    stat_match = _RECEIPT_STAT.search(text)
    tlv_id = message.tlvs.get(TLV_RECEIPTED_MESSAGE_ID)
    is_receipt = (
        kind in (_ESM_RECEIPT, _ESM_INTERMEDIATE)
        or tlv_id is not None
        or (id_match is not None and stat_match is not None)
    )
    if not is_receipt:
        return None
    if tlv_id is not None:
        message_id = tlv_id.rstrip(b"\x00").decode("latin-1")
    elif id_match is not None:
        message_id = id_match.group(1).decode("latin-1")
    else:
        return None
    tlv_state = message.tlvs.get(TLV_MESSAGE_STATE)
    if tlv_state and tlv_state[0] in _MESSAGE_STATES:
        state = _MESSAGE_STATES[tlv_state[0]]
    elif stat_match is not None:
        stat = stat_match.group(1).decode("latin-1").upper()
        state = _STAT_STATES.get(stat, stat.lower())
    else:
        state = "unknown"
    return Receipt(message_id, state)


def outbox_receipts(
    db: Database, metrics: Metrics | None = None, clock: Callable[[], datetime] = utcnow
) -> ReceiptHandler:
    """The ``on_receipt`` that records each receipt in the outbox, and drops none it can use.

    A receipt whose id no part has yet may belong to a send not recorded yet (its row is
    still ``sending``): the SMSC is asked to deliver it again. Once nothing is being sent, an
    unknown id stays unknown (another system's message, or one sent by a worker that died
    before recording it): it is acknowledged. Receipts recorded are counted by state.
    """

    async def on_receipt(message_id: str, state: str) -> None:
        outcome = await outbox.record_receipt(db, message_id, state, clock())
        if outcome == "unknown":
            if await outbox.sending_now(db):
                raise RetryReceipt(message_id)
            # Nothing is being sent now: if ours was, it has just been recorded.
            outcome = await outbox.record_receipt(db, message_id, state, clock())
        if outcome == "recorded" and metrics is not None:
            metrics.sms_receipts.labels(state).inc()
        elif outcome == "unknown":
            logger.info("smpp: acknowledged a receipt for unknown message id %s", message_id)

    return on_receipt


# --- message encoding ---------------------------------------------------------------------


class MessageTooLong(GatewayError, ValueError):
    """The text needs more than 255 parts, the most one concatenation header can number."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """A text as the SMSC gets it: its data_coding and the user data of each part."""

    data_coding: int
    parts: tuple[bytes, ...]  # without the concatenation header


def encode_text(text: str) -> Encoded:
    """Encode ``text`` as GSM-7 (one septet per octet) or UCS-2, split into SMS parts.

    The encoding is the one ``menus.screens.measure`` picks, so the gateway's count of parts
    and the SMSC's agree. Parts are cut between characters: an escaped GSM character (``€``,
    ``{``: ESC + code) and a UTF-16 surrogate pair always stay whole.
    """
    encoding = measure(text).encoding
    codec = "gsm03.38" if encoding == "gsm7" else "utf-16-be"
    whole = text.encode(codec)
    data_coding = DATA_CODING_DEFAULT if encoding == "gsm7" else DATA_CODING_UCS2
    if len(whole) <= _SINGLE[encoding]:
        return Encoded(data_coding, (whole,))
    limit = _PART[encoding]
    parts: list[bytes] = []
    current = bytearray()
    for char in text:
        encoded = char.encode(codec)
        if len(current) + len(encoded) > limit:
            parts.append(bytes(current))
            current.clear()
        current += encoded
    parts.append(bytes(current))
    if len(parts) > 255:
        raise MessageTooLong(f"{len(parts)} parts, at most 255 fit one concatenation header")
    return Encoded(data_coding, tuple(parts))


def concatenation_header(reference: int, total: int, sequence: int) -> bytes:
    """The UDH that numbers a part: ``05 00 03 <ref> <total> <seq>`` (IEI 0, 8-bit ref)."""
    return bytes([0x05, 0x00, 0x03, reference & 0xFF, total, sequence])


def source_address(sender: str) -> tuple[int, int, str]:
    """(TON, NPI, address) for a sender: a number is international, anything else alphanumeric."""
    digits = sender.removeprefix("+")
    if _DIGITS.fullmatch(digits):
        return 1, 1, digits
    return 5, 0, sender


def submit_sm_body(
    *,
    source: tuple[int, int, str],
    destination: str,
    data_coding: int,
    short_message: bytes,
    esm_class: int = 0,
    registered_delivery: int = 1,
    service_type: str = "",
) -> bytes:
    """A submit_sm body to an international (TON 1, NPI 1) ``destination`` of digits."""
    source_ton, source_npi, source_addr = source
    return b"".join(
        [
            cstring(service_type),
            bytes([source_ton, source_npi]),
            cstring(source_addr),
            bytes([1, 1]),
            cstring(destination),
            bytes([esm_class, 0, 0]),  # esm_class, protocol_id, priority_flag
            cstring(""),  # schedule_delivery_time: now
            cstring(""),  # validity_period: the SMSC default
            bytes([registered_delivery, 0, data_coding, 0, len(short_message)]),
            short_message,
        ]
    )


# --- the link -----------------------------------------------------------------------------


class _Link:
    """One TCP connection: writes PDUs, matches responses to requests, hands requests on."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_request: Callable[[_Link, Pdu], Awaitable[bool]],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_request = on_request
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._sequence = 0
        self._closed = asyncio.Event()
        self._reading = asyncio.create_task(self._read_loop())

    @property
    def open(self) -> bool:
        return not self._closed.is_set() and not self._writer.is_closing()

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def reply(
        self, request: Pdu, command_id: int, status: int = ESME_ROK, body: bytes = b""
    ) -> None:
        """Answer ``request``; a reply on a closed connection is dropped (the peer resends)."""
        if self.open:
            self._writer.write(Pdu(command_id, request.sequence, status, body).encode())

    async def request(self, command_id: int, body: bytes, timeout: float) -> Pdu:
        """Send a request and wait for its response (or generic_nack) for ``timeout`` seconds."""
        if not self.open:
            raise LinkClosed("not connected")
        sequence = self._next_sequence()
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = future
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(Pdu(command_id, sequence, ESME_ROK, body).encode())
                await self._writer.drain()
                return await future
        except ConnectionError as exc:
            raise LinkClosed(f"{type(exc).__name__}: {exc}") from None
        finally:
            self._pending.pop(sequence, None)

    async def wait_closed(self) -> None:
        """Return when the connection ended: closed by the peer, by unbind or by ``close()``."""
        await self._closed.wait()

    async def close(self) -> None:
        """Close the connection (again, harmlessly) and fail the requests still waiting."""
        self._mark_closed()
        self._reading.cancel()
        await asyncio.gather(self._reading, return_exceptions=True)
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    def _mark_closed(self) -> None:
        self._closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkClosed("connection lost"))

    async def _read_loop(self) -> None:
        try:
            while True:
                pdu = await read_pdu(self._reader)
                if pdu.command_id & RESPONSE:  # a response, or generic_nack
                    future = self._pending.get(pdu.sequence)
                    if future is not None and not future.done():
                        future.set_result(pdu)
                    continue
                if not await self._on_request(self, pdu):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, SmppError) as exc:
            logger.debug("smpp link closed: %s", type(exc).__name__)
        finally:
            self._mark_closed()


# --- the provider -------------------------------------------------------------------------


@dataclass
class _Progress:
    """How far a split message got: its concatenation reference and the ids of parts sent."""

    reference: int
    ids: list[str] = field(default_factory=list)


class SmppProvider:
    """Sends SMS over one SMPP transceiver bind, kept alive and re-established on its own.

    ``start()`` binds in the background and keeps the bind: enquire_link every
    ``enquire_interval`` seconds, reconnecting with capped exponential backoff when the
    connection drops. ``send()`` never raises: unbound, throttled or refused, it answers a
    ``SendResult`` for the dispatcher to retry or give up. Receipts go to ``on_receipt``.
    ``clock`` and ``sleep`` measure and wait for every delay here except the SMSC's response
    and connect timeouts, so tests can run a minute of outage in no time.
    ``send_timeout`` (the response timeout) bounds a whole ``send()``, every part included:
    the outbox lease is derived from it.
    """

    name = "smpp"

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        sender: str = "OKRYU",
        enquire_interval: float = 30.0,
        on_receipt: ReceiptHandler | None = None,
        response_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        window: int = 10,
        reconnect_base: float = 1.0,
        reconnect_cap: float = 60.0,
        throttle_base: float = 1.0,
        throttle_cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: random.Random | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.system_id = system_id
        self._password = password
        self.system_type = system_type
        self.source = source_address(sender)
        self.enquire_interval = enquire_interval
        self.on_receipt = on_receipt
        self._response_timeout = response_timeout
        self.send_timeout = response_timeout
        self._connect_timeout = connect_timeout
        self._window = asyncio.Semaphore(window)
        self._reconnect_base = reconnect_base
        self._reconnect_cap = reconnect_cap
        self._throttle_base = throttle_base
        self._throttle_cap = throttle_cap
        self._clock = clock
        self._sleep = sleep
        self._rand = rand or random.Random()
        self._reference = self._rand.randrange(256)
        self._link: _Link | None = None
        self._runner: asyncio.Task[None] | None = None
        self._receipts: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._paused_until = float("-inf")
        self._next_connect = float("-inf")  # when the next connect attempt is due
        self._throttles = 0  # consecutive throttled submits: the pause doubles with each
        self._partial: OrderedDict[tuple[str, str], _Progress] = OrderedDict()
        self.attempts = 0  # connection attempts finished, bound or not
        self.reconnecting = False  # waiting out the backoff before the next attempt
        self._closing = False

    @classmethod
    def from_settings(
        cls, settings: Settings, on_receipt: ReceiptHandler | None = None
    ) -> SmppProvider:
        """A provider for the ``OKRYU_SMPP_*`` settings, sending as ``OKRYU_SMS_SENDER``."""
        return cls(
            settings.smpp_host,
            settings.smpp_port,
            settings.smpp_system_id,
            settings.smpp_password,
            system_type=settings.smpp_system_type,
            sender=settings.sms_sender,
            enquire_interval=settings.smpp_enquire_interval,
            on_receipt=on_receipt,
        )

    def __repr__(self) -> str:
        # Spelled out so that no repr of this object can leak the password into a log.
        return f"SmppProvider(host={self.host!r}, port={self.port}, system_id={self.system_id!r})"

    @property
    def bound(self) -> bool:
        """Whether a transceiver bind is up now."""
        return self._link is not None and self._link.open

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, checked at each bind, unbind and connect attempt."""
        while not condition():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def start(self) -> None:
        """Start binding in the background; returns once the first attempt has finished."""
        if self._runner is not None:
            return
        self._closing = False
        self._runner = asyncio.create_task(self._keep_bound())
        await self.wait_until(lambda: self.attempts > 0 or self._runner is None)

    async def close(self) -> None:
        """Unbind politely, stop reconnecting and wait for every task to end."""
        runner, self._runner = self._runner, None
        self._closing = True
        link = self._link
        if link is not None and link.open:
            with contextlib.suppress(SmppError, TimeoutError):
                await link.request(UNBIND, b"", min(self._response_timeout, 2.0))
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        for task in list(self._receipts):
            task.cancel()
        await asyncio.gather(*self._receipts, return_exceptions=True)
        self._notify()

    def reconnect_delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed binds: exponential, capped, jittered."""
        ceiling = min(self._reconnect_cap, self._reconnect_base * 2.0 ** max(failures - 1, 0))
        return ceiling / 2 + self._rand.uniform(0, ceiling / 2)

    async def _keep_bound(self) -> None:
        failures = 0
        while True:
            link = await self._connect()
            self.attempts += 1
            if link is not None:
                failures = 0
                self._link = link
                # Due times are fixed now, not when the task first runs: a clock that
                # moves before then still gets its keep-alive.
                enquiring = asyncio.create_task(
                    self._enquire(link, self._clock() + self.enquire_interval)
                )
                self._notify()
                try:
                    await link.wait_closed()
                finally:
                    self._link = None
                    enquiring.cancel()
                    await asyncio.gather(enquiring, return_exceptions=True)
                    await link.close()
                if self._closing:
                    return  # our own unbind ended it
                logger.warning("smpp: connection to %s:%d lost", self.host, self.port)
            failures += 1
            delay = self.reconnect_delay(failures)
            logger.info("smpp: reconnecting in %.1fs", delay)
            self.reconnecting = True
            self._next_connect = self._clock() + delay
            self._notify()
            try:
                await self._sleep(delay)
            finally:
                self.reconnecting = False
                self._notify()

    async def _connect(self) -> _Link | None:
        """Connect and bind as a transceiver; None (logged) when either fails."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            logger.warning("smpp: cannot connect to %s:%d: %s", self.host, self.port, exc)
            return None
        link = _Link(reader, writer, self._on_request)
        try:
            return await self._bind(link)
        except BaseException:
            await link.close()  # cancelled mid-bind: leave no socket open
            raise

    async def _bind(self, link: _Link) -> _Link | None:
        body = b"".join(
            [
                cstring(self.system_id),
                cstring(self._password),
                cstring(self.system_type),
                bytes([_INTERFACE_VERSION, 0, 0]),  # interface_version, addr_ton, addr_npi
                cstring(""),  # address_range
            ]
        )
        try:
            response = await link.request(BIND_TRANSCEIVER, body, self._response_timeout)
        except (SmppError, TimeoutError) as exc:
            logger.warning("smpp: bind to %s:%d failed: %s", self.host, self.port, exc or "timeout")
            await link.close()
            return None
        if response.status != ESME_ROK:
            logger.error(
                "smpp: bind as %r refused by %s:%d: %s, check system_id and password",
                self.system_id,
                self.host,
                self.port,
                status_name(response.status),
            )
            await link.close()
            return None
        logger.info("smpp: bound as transceiver to %s:%d", self.host, self.port)
        return link

    async def _enquire(self, link: _Link, due: float) -> None:
        """Keep the bind alive; close the link when the SMSC stops answering."""
        while True:
            await self._sleep(max(0.0, due - self._clock()))
            due = self._clock() + self.enquire_interval
            try:
                await link.request(ENQUIRE_LINK, b"", self._response_timeout)
            except (SmppError, TimeoutError):
                logger.warning("smpp: no enquire_link_resp, dropping the connection")
                await link.close()
                return

    async def _on_request(self, link: _Link, pdu: Pdu) -> bool:
        """Answer a request from the SMSC; False ends the connection."""
        if pdu.command_id == ENQUIRE_LINK:
            link.reply(pdu, ENQUIRE_LINK | RESPONSE)
        elif pdu.command_id == DELIVER_SM:
            task = asyncio.create_task(self._deliver(link, pdu))
            self._receipts.add(task)
            task.add_done_callback(self._receipts.discard)
        elif pdu.command_id == UNBIND:
            link.reply(pdu, UNBIND | RESPONSE)
            logger.info("smpp: the SMSC unbound")
            return False
        else:
            link.reply(pdu, GENERIC_NACK, ESME_RINVCMDID)
        return True

    async def _deliver(self, link: _Link, pdu: Pdu) -> None:
        """Hand a receipt to ``on_receipt``, then acknowledge it (or ask for it again)."""
        status = ESME_ROK
        try:
            receipt = parse_receipt(decode_deliver_sm(pdu.body))
        except SmppError as exc:
            logger.warning("smpp: malformed deliver_sm: %s", exc)
            link.reply(pdu, DELIVER_SM | RESPONSE, ESME_RSYSERR, b"\x00")
            return
        if receipt is None:
            logger.info("smpp: ignoring a mobile-originated deliver_sm")
        elif self.on_receipt is not None:
            try:
                await self.on_receipt(receipt.message_id, receipt.state)
            except RetryReceipt:
                status = ESME_RX_T_APPN
            except Exception:
                logger.exception("smpp: receipt handler failed for %s", receipt.message_id)
                status = ESME_RX_T_APPN
        link.reply(pdu, DELIVER_SM | RESPONSE, status, b"\x00")

    # --- sending --------------------------------------------------------------------------

    async def send(self, to: str, body: str) -> SendResult:
        """Submit ``body`` to the E.164 number ``to``; the first part's id and every part's.

        The first part's id is the message's (``message_id``): the handset shows the message
        only when every part, the first included, arrived. ``parts`` lists every part's id,
        on a failure those accepted before it, for their receipts to find the message.
        Throttled, paused or unbound, it answers ``retry_after`` without trying.
        """
        destination = to.removeprefix("+")
        if not _DIGITS.fullmatch(destination):
            return SendResult(ok=False, permanent=True, error=f"invalid number {mask(to)}")
        try:
            encoded = encode_text(body)
        except MessageTooLong as exc:
            return SendResult(ok=False, permanent=True, error=f"message too long: {exc}")
        now = self._clock()
        remaining = self._paused_until - now
        if remaining > 0:
            return _wait(f"throttled by the SMSC, pausing {remaining:.1f}s more", remaining)
        link = self._link
        if link is None or not link.open:
            return _wait(
                f"not bound to the SMSC at {self.host}:{self.port}",
                max(self._next_connect - now, 0.0) + _BIND_TIME,
            )
        key = (destination, body)
        progress = self._partial.pop(key, None) or _Progress(self._next_reference())
        total = len(encoded.parts)
        failure: SendResult | None = None
        try:
            async with asyncio.timeout(self.send_timeout):
                for index in range(len(progress.ids), total):
                    failure = await self._submit(link, destination, encoded, index, progress)
                    if failure is not None:
                        break
        except TimeoutError:
            where = f" (part {len(progress.ids) + 1} of {total})" if total > 1 else ""
            failure = _retry(f"no submit_sm_resp within {self.send_timeout:g}s{where}")
        if failure is not None:
            if progress.ids and not failure.permanent:
                self._remember(key, progress)
            return replace(failure, parts=tuple(progress.ids))
        self._throttles = 0
        return SendResult(ok=True, message_id=progress.ids[0], parts=tuple(progress.ids))

    async def _submit(
        self, link: _Link, destination: str, encoded: Encoded, index: int, progress: _Progress
    ) -> SendResult | None:
        """Submit part ``index``; None when accepted (its id appended), else the failure."""
        total = len(encoded.parts)
        if total == 1:
            short_message, esm_class = encoded.parts[0], 0
        else:
            header = concatenation_header(progress.reference, total, index + 1)
            short_message, esm_class = header + encoded.parts[index], ESM_CLASS_UDHI
        body = submit_sm_body(
            source=self.source,
            destination=destination,
            data_coding=encoded.data_coding,
            short_message=short_message,
            esm_class=esm_class,
        )
        where = f" (part {index + 1} of {total})" if total > 1 else ""
        try:
            async with self._window:
                response = await link.request(SUBMIT_SM, body, self._response_timeout)
        except TimeoutError:
            return _retry(f"no submit_sm_resp within {self._response_timeout:g}s{where}")
        except SmppError as exc:
            return _retry(f"connection lost: {exc}{where}")
        if response.command_id == GENERIC_NACK:
            return _retry(f"SMSC answered generic_nack {status_name(response.status)}{where}")
        if response.status in _THROTTLING:
            pause = self._pause()
            return _wait(
                f"SMSC throttled: {status_name(response.status)}{where}, pausing {pause:.1f}s",
                pause,
            )
        if response.status != ESME_ROK:
            error = f"SMSC refused: {status_name(response.status)}{where}"
            if response.status == ESME_RINVBNDSTS:
                await link.close()  # the SMSC forgot our bind: bind again
            if response.status in _PERMANENT:
                return SendResult(ok=False, permanent=True, error=error)
            return _retry(error)
        try:
            message_id = BodyReader(response.body).cstring()
        except SmppError:
            message_id = ""
        if not message_id:
            return _retry(f"submit_sm_resp without a message_id{where}")
        progress.ids.append(message_id)
        return None

    def _pause(self) -> float:
        """Stop submitting for a while, twice as long as last time while throttling goes on."""
        self._throttles += 1
        pause = min(self._throttle_cap, self._throttle_base * 2.0 ** (self._throttles - 1))
        self._paused_until = max(self._paused_until, self._clock() + pause)
        return pause

    def _next_reference(self) -> int:
        self._reference = (self._reference + 1) % 256
        return self._reference

    def _remember(self, key: tuple[str, str], progress: _Progress) -> None:
        self._partial[key] = progress
        while len(self._partial) > 256:  # messages the dispatcher gave up on
            self._partial.popitem(last=False)


def _retry(error: str) -> SendResult:
    return SendResult(ok=False, error=error[:_MAX_ERROR])


def _wait(error: str, seconds: float) -> SendResult:
    """Not tried (throttled, paused, unbound): ask again in ``seconds``, costing no attempt."""
    return SendResult(ok=False, error=error[:_MAX_ERROR], retry_after=seconds)
