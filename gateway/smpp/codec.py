"""The SMPP 3.4 codec: PDUs, the fields of submit_sm and deliver_sm, text split into parts.

A PDU is a 16-octet header (command_length, command_id, command_status, sequence_number,
each a big-endian 32-bit integer) and a body of C-strings, octets and TLVs. The submit_sm
the provider sends for ``send("+821012345678", "Order OK-4F2A placed")``::

    00000046 00000004 00000000 00000002     length 70, submit_sm, status 0, sequence 2
    00 05 00 4f4b52595500                   service_type "", source TON 5 NPI 0 "OKRYU"
    01 01 38323130313233343536373800        destination TON 1 NPI 1 "821012345678"
    00 00 00 00 00 01 00 00 00              esm_class, protocol_id, priority, no schedule,
                                            no validity, registered_delivery 1, replace 0,
                                            data_coding 0 (GSM-7, one septet per octet), 0
    14 4f72646572204f4b2d34463241...        sm_length 20, short_message

and the SMSC answers ``submit_sm_resp`` with the message id that its receipts quote later, in
a deliver_sm with esm_class 0x04 and ``id:<id> ... stat:DELIVRD err:000 text:...``.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

from gateway.errors import GatewayError
from menus.screens import measure

# command_id values (SMPP 3.4 §5.1.2.1); a response is its request's id with the top bit set.
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
DATA_SM = 0x00000103
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

DATA_CODING_DEFAULT = 0x00  # the SMSC default alphabet: GSM-7, one septet per octet
DATA_CODING_UCS2 = 0x08
ESM_CLASS_UDHI = 0x40

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
# USSD over SMPP (PROTOCOLS.md §6.5): the operation, and the TLVs that name a dialogue.
TLV_USER_MESSAGE_REFERENCE = 0x0204
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_USSD_SERVICE_OP = 0x0501
TLV_ITS_SESSION_INFO = 0x1383

_MAX_PDU = 64 * 1024
# Octets of user data per SMS: alone, or beside the 6-octet concatenation header
# (05 00 03 ref total seq). For GSM-7 an octet here is one unpacked septet.
_SINGLE = {"gsm7": 160, "ucs2": 140}
_PART = {"gsm7": 153, "ucs2": 134}
DIGITS = re.compile(r"[0-9]{1,20}")  # an address of digits only: international, TON 1


class SmppError(GatewayError):
    """Something on the SMPP link went wrong: a malformed PDU or a lost connection."""


class BadLength(SmppError):
    """A header whose command_length no PDU can have: the stream cannot be read on."""

    def __init__(self, length: int, sequence: int) -> None:
        super().__init__(f"command_length {length} out of range")
        self.sequence = sequence


def status_name(status: int) -> str:
    """``0x00000058 ESME_RTHROTTLED``: a command_status as logs and errors show it."""
    return f"0x{status:08X} {STATUS_NAMES.get(status, 'unknown status')}"


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
        raise BadLength(length, sequence)
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
    service_type: str = ""

    @property
    def text_octets(self) -> bytes:
        """The user data: ``short_message``, or the ``message_payload`` TLV when that is empty."""
        return self.short_message or self.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")


def decode_deliver_sm(body: bytes) -> DeliverSm:
    """Decode a deliver_sm body (the same layout as submit_sm)."""
    read = BodyReader(body)
    service_type = read.cstring()
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
    tlvs = read.tlvs()
    return DeliverSm(source, destination, esm_class, data_coding, short_message, tlvs, service_type)


def decode_data_sm(body: bytes) -> DeliverSm:
    """Decode a data_sm body: the addresses, esm_class and data_coding, the text in TLVs."""
    read = BodyReader(body)
    service_type = read.cstring()
    read.octets(2)  # source TON, NPI
    source = read.cstring()
    read.octets(2)  # destination TON, NPI
    destination = read.cstring()
    esm_class = read.octet()
    read.octet()  # registered_delivery
    data_coding = read.octet()
    tlvs = read.tlvs()
    return DeliverSm(source, destination, esm_class, data_coding, b"", tlvs, service_type)


def tlv(tag: int, value: bytes) -> bytes:
    """One optional parameter: tag, length and value."""
    return struct.pack(">HH", tag, len(value)) + value


def _addressing(service_type: str, source: tuple[int, int, str], destination: str) -> bytes:
    """The head data_sm and submit_sm share: service_type, the source address (TON, NPI,
    digits) and an international (TON 1, NPI 1) destination."""
    source_ton, source_npi, source_addr = source
    return b"".join(
        [
            cstring(service_type),
            bytes([source_ton, source_npi]),
            cstring(source_addr),
            bytes([1, 1]),
            cstring(destination),
        ]
    )


def data_sm_body(
    *,
    source: tuple[int, int, str],
    destination: str,
    data_coding: int,
    tlvs: bytes,
    service_type: str = "",
    esm_class: int = 0,
) -> bytes:
    """A data_sm body to an international ``destination``; the text goes in ``tlvs``."""
    return b"".join(
        [
            _addressing(service_type, source, destination),
            bytes([esm_class, 0, data_coding]),  # esm_class, registered_delivery, data_coding
            tlvs,
        ]
    )


def decode_text(data_coding: int, octets: bytes) -> str:
    """User data as text: UCS-2 (0x08, and the USSD scheme 0x48), Latin-1 (0x03), else GSM-7
    one septet an octet (0x00 SMSC default, 0x0F USSD "language unspecified", 0x01 IA5)."""
    if data_coding in (DATA_CODING_UCS2, 0x48):
        return octets.decode("utf-16-be", "replace")
    if data_coding == 0x03:
        return octets.decode("latin-1")
    return octets.decode("gsm03.38", "replace")


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


def encode_screen(text: str) -> tuple[int, bytes]:
    """A USSD screen as one piece of user data: (data_coding, octets), GSM-7 one septet an
    octet or UCS-2, the encoding ``menus.screens.measure`` picks (and budgets count in)."""
    if measure(text).encoding == "gsm7":
        return DATA_CODING_DEFAULT, text.encode("gsm03.38")
    return DATA_CODING_UCS2, text.encode("utf-16-be", "surrogatepass")


def concatenation_header(reference: int, total: int, sequence: int) -> bytes:
    """The UDH that numbers a part: ``05 00 03 <ref> <total> <seq>`` (IEI 0, 8-bit ref)."""
    return bytes([0x05, 0x00, 0x03, reference & 0xFF, total, sequence])


def source_address(sender: str) -> tuple[int, int, str]:
    """(TON, NPI, address) for a sender: a number is international, anything else alphanumeric."""
    digits = sender.removeprefix("+")
    if DIGITS.fullmatch(digits):
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
    tlvs: bytes = b"",
) -> bytes:
    """A submit_sm body to an international (TON 1, NPI 1) ``destination`` of digits."""
    return b"".join(
        [
            _addressing(service_type, source, destination),
            bytes([esm_class, 0, 0]),  # esm_class, protocol_id, priority_flag
            cstring(""),  # schedule_delivery_time: now
            cstring(""),  # validity_period: the SMSC default
            bytes([registered_delivery, 0, data_coding, 0, len(short_message)]),
            short_message,
            tlvs,
        ]
    )
