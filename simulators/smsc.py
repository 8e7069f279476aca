"""An SMSC that speaks SMPP 3.4 over TCP, for tests and demos.

It answers binds (checking system_id and password), submit_sm (a fresh message id per part),
enquire_link and unbind, and sends delivery receipts as deliver_sm: esm_class 0x04, the
receipted_message_id (0x001E) and message_state (0x0427) TLVs, and the usual text::

    id:0000000A sub:001 dlvrd:001 submit date:2611281500 done date:2611281500
    stat:DELIVRD err:000 text:Order OK-4F2A placed          (one line on the wire)

Receipts go out at once or when ``deliver_receipts()`` says so. It keeps every accepted
part and reassembles concatenated ones (UDH IEI 0x00 or 0x08) into ``messages``. Like a
network, it refuses a part that would not fit one SMS (160 septets, 140 octets).
Failures on demand: ``throttle_next``, ``fail_next``, ``drop_next`` (the link falls at a
submit_sm, e.g. between the parts of a message), ``stall_next`` (a submit_sm never answered),
``disconnect``, ``stop``/``start``.
It decodes PDUs on its own, sharing no code with ``gateway.smpp``: each checks the other.
Run standalone with ``python -m simulators.smsc --port 2775 --system-id okryu --password secret``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

DEFAULT_SYSTEM_ID = "okryu"
DEFAULT_PASSWORD = "secret"

# command_id values.
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
GENERIC_NACK = 0x80000000
_RESP = 0x80000000
_BINDS = {BIND_RECEIVER: "rx", BIND_TRANSMITTER: "tx", BIND_TRANSCEIVER: "trx"}

# command_status values.
ROK = 0x00
RINVMSGLEN = 0x01
RINVCMDID = 0x03
RINVBNDSTS = 0x04
RALYBND = 0x05
RSYSERR = 0x08
RINVPASWD = 0x0E
RINVSYSID = 0x0F
RMSGQFUL = 0x14
RTHROTTLED = 0x58
# Verdicts, not statuses: close the connection instead of answering, or never answer.
_DROP = -1
_STALL = -2

MESSAGE_STATES = {
    "ENROUTE": 1,
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427

ReceiptMode = Literal["immediate", "manual"]


@dataclass(frozen=True)
class Part:
    """One accepted submit_sm, decoded."""

    message_id: str
    system_id: str
    source: str
    source_ton: int
    source_npi: int
    destination: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    udh: bytes  # empty without the UDHI flag
    payload: bytes  # the user data after the UDH
    text: str  # this part alone, decoded
    concat: tuple[int, int, int] | None  # (reference, total, sequence)
    at: datetime


@dataclass(frozen=True)
class Message:
    """A whole message: one part, or every part of a concatenated one, in order."""

    parts: tuple[Part, ...]

    @property
    def message_id(self) -> str:
        """The first part's id."""
        return self.parts[0].message_id

    @property
    def destination(self) -> str:
        return self.parts[0].destination

    @property
    def source(self) -> str:
        return self.parts[0].source

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts)

    @property
    def data_coding(self) -> int:
        return self.parts[0].data_coding

    @property
    def registered_delivery(self) -> int:
        return self.parts[0].registered_delivery


@dataclass(frozen=True)
class SentReceipt:
    """A receipt the simulator delivered, and the ESME's deliver_sm_resp status."""

    message_id: str
    stat: str
    status: int


@dataclass(eq=False)
class Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    mode: str | None = None  # rx | tx | trx once bound
    system_id: str = ""
    sequence: int = 0
    pending: dict[int, asyncio.Future[tuple[int, int]]] = field(default_factory=dict)

    def write(self, command_id: int, status: int, sequence: int, body: bytes = b"") -> None:
        if not self.writer.is_closing():
            header = struct.pack(">IIII", 16 + len(body), command_id, status, sequence)
            self.writer.write(header + body)

    async def request(self, command_id: int, body: bytes, timeout: float) -> tuple[int, int]:
        """Send a request to the ESME; (response command_id, command_status)."""
        self.sequence = sequence = self.sequence + 1
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self.pending[sequence] = future
        try:
            self.write(command_id, ROK, sequence, body)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self.pending.pop(sequence, None)


class Smsc:
    """The simulator's state: what was accepted, receipts to send, failures to inject."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        system_id: str = DEFAULT_SYSTEM_ID,
        password: str = DEFAULT_PASSWORD,
        receipts: ReceiptMode = "immediate",
        receipt_tlvs: bool = True,
        receipt_esm_class: int = 0x04,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.host = host
        self.port = port  # 0 until the first start() picks one
        self.system_id = system_id
        self.password = password
        self.receipt_mode: ReceiptMode = receipts
        self.receipt_tlvs = receipt_tlvs
        self.receipt_esm_class = receipt_esm_class
        self.parts: list[Part] = []
        self.messages: list[Message] = []
        self.binds: list[tuple[str, str, int]] = []  # (mode, system_id, status) per bind
        self.enquire_links = 0
        self.unbinds = 0
        self.refused: list[int] = []  # the status of each submit_sm refused
        self.receipts: list[SentReceipt] = []
        self.pending_receipts: list[Part] = []
        self._clock = clock
        self._ids = itertools.count(1)
        self._verdicts: list[int] = []
        self._incomplete: dict[tuple[str, str, int, int], dict[int, Part]] = {}
        self._server: asyncio.Server | None = None
        self._sessions: dict[Session, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (again) on ``port``; the first start on port 0 picks a free one."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection, as an SMSC going down does."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        await self.disconnect()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def disconnect(self) -> None:
        """Drop every connection now (the listener stays up)."""
        for session in list(self._sessions):
            session.writer.transport.abort()
        await asyncio.gather(*self._sessions.values(), return_exceptions=True)

    async def __aenter__(self) -> Smsc:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def sessions(self) -> int:
        """How many connections are bound now."""
        return sum(1 for session in self._sessions if session.mode is not None)

    # --- failure injection ------------------------------------------------------------

    def throttle_next(self, n: int = 1, *, after: int = 0) -> None:
        """Answer ESME_RTHROTTLED to ``n`` submit_sm, after accepting ``after`` first."""
        self.fail_next(n, RTHROTTLED, after=after)

    def fail_next(self, n: int = 1, status: int = RSYSERR, *, after: int = 0) -> None:
        """Answer ``status`` to ``n`` submit_sm, after accepting ``after`` first."""
        self._verdicts.extend([ROK] * after + [status] * n)

    def drop_next(self, *, after: int = 0) -> None:
        """Drop the connection at a submit_sm, unanswered, after accepting ``after`` first."""
        self._verdicts.extend([ROK] * after + [_DROP])

    def stall_next(self, *, after: int = 0) -> None:
        """Leave a submit_sm unanswered (and unrecorded), after accepting ``after`` first."""
        self._verdicts.extend([ROK] * after + [_STALL])

    # --- waiting ----------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = 5.0) -> None:
        """Wait (on the simulator's own events, not a timer) until ``predicate()`` holds."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- receipts ---------------------------------------------------------------------

    async def deliver_receipts(self, stat: str = "DELIVRD", err: str = "000") -> int:
        """Deliver every pending receipt with ``stat``; how many the ESME acknowledged.

        A receipt the ESME answers with an error, or that finds no receiver bound, stays
        pending, as an SMSC keeps a receipt until it is acknowledged.
        """
        pending, self.pending_receipts = self.pending_receipts, []
        delivered = 0
        for part in pending:
            if await self.send_receipt(part, stat, err):
                delivered += 1
            else:
                self.pending_receipts.append(part)
        return delivered

    async def send_receipt(self, part: Part | str, stat: str = "DELIVRD", err: str = "000") -> bool:
        """Send one receipt for ``part`` (or a part's message id); True when acknowledged."""
        if isinstance(part, str):
            [part] = [p for p in self.parts if p.message_id == part]
        session = self._receiver(part.system_id)
        if session is None:
            return False
        now = self._clock().strftime("%y%m%d%H%M")
        text = (
            f"id:{part.message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'}"
            f" submit date:{part.at.strftime('%y%m%d%H%M')} done date:{now}"
            f" stat:{stat} err:{err} text:{part.text[:20]}"
        ).encode("ascii", "replace")
        tlvs = b""
        if self.receipt_tlvs:
            receipted = part.message_id.encode("ascii") + b"\x00"
            tlvs = tlv(TLV_RECEIPTED_MESSAGE_ID, receipted) + tlv(
                TLV_MESSAGE_STATE, bytes([MESSAGE_STATES.get(stat, 7)])
            )
        body = b"".join(
            [
                cstring(""),
                bytes([part.dest_ton, part.dest_npi]),
                cstring(part.destination),
                bytes([part.source_ton, part.source_npi]),
                cstring(part.source),
                bytes([self.receipt_esm_class, 0, 0]),
                cstring(""),
                cstring(""),
                bytes([0, 0, 0, 0, len(text)]),
                text,
                tlvs,
            ]
        )
        try:
            command_id, status = await session.request(DELIVER_SM, body, timeout=5.0)
        except (TimeoutError, ConnectionError):
            return False
        if command_id != DELIVER_SM | _RESP:
            status = status or RSYSERR
        self.receipts.append(SentReceipt(part.message_id, stat, status))
        await self._notify()
        return status == ROK

    async def enquire_link(self) -> list[int]:
        """Send enquire_link to every bound ESME; the statuses they answered."""
        statuses = []
        for session in [s for s in self._sessions if s.mode is not None]:
            with contextlib.suppress(TimeoutError, ConnectionError):
                statuses.append((await session.request(ENQUIRE_LINK, b"", timeout=5.0))[1])
        return statuses

    def _receiver(self, system_id: str) -> Session | None:
        for session in self._sessions:
            if session.system_id == system_id and session.mode in ("rx", "trx"):
                return session
        return None

    # --- the protocol -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._sessions[session] = task
        try:
            while True:
                header = await reader.readexactly(16)
                length, command_id, status, sequence = struct.unpack(">IIII", header)
                if not 16 <= length <= 64 * 1024:
                    break
                body = await reader.readexactly(length - 16)
                if command_id & _RESP:
                    future = session.pending.get(sequence)
                    if future is not None and not future.done():
                        future.set_result((command_id, status))
                    continue
                if not await self._handle(session, command_id, sequence, body):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            del self._sessions[session]
            for future in session.pending.values():
                if not future.done():
                    future.set_exception(ConnectionResetError("connection closed"))
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            await self._notify()

    async def _handle(self, session: Session, command_id: int, sequence: int, body: bytes) -> bool:
        """Answer one request; False closes the connection."""
        if command_id in _BINDS:
            self._bind(session, command_id, sequence, body)
        elif command_id == ENQUIRE_LINK:
            self.enquire_links += 1
            session.write(ENQUIRE_LINK | _RESP, ROK, sequence)
        elif command_id == UNBIND:
            self.unbinds += 1
            session.write(UNBIND | _RESP, ROK, sequence)
            await self._notify()
            return False
        elif command_id == SUBMIT_SM:
            if session.mode not in ("tx", "trx"):
                session.write(SUBMIT_SM | _RESP, RINVBNDSTS, sequence)
            else:
                self._submit(session, sequence, body)
        else:
            session.write(GENERIC_NACK, RINVCMDID, sequence)
        await self._notify()
        return True

    def _bind(self, session: Session, command_id: int, sequence: int, body: bytes) -> None:
        fields = Fields(body)
        system_id, password = fields.cstring(), fields.cstring()
        if session.mode is not None:
            status = RALYBND
        elif system_id != self.system_id:
            status = RINVSYSID
        elif password != self.password:
            status = RINVPASWD
        else:
            status = ROK
            session.mode, session.system_id = _BINDS[command_id], system_id
        self.binds.append((_BINDS[command_id], system_id, status))
        session.write(command_id | _RESP, status, sequence, cstring("OKRYUSIM"))

    def _submit(self, session: Session, sequence: int, body: bytes) -> None:
        verdict = self._verdicts.pop(0) if self._verdicts else ROK
        if verdict == _DROP:
            session.writer.transport.abort()
            return
        if verdict == _STALL:
            return
        try:
            part = self._decode_submit(session, body) if verdict == ROK else None
        except ValueError:
            verdict = RINVMSGLEN
            part = None
        if part is None:
            self.refused.append(verdict)
            session.write(SUBMIT_SM | _RESP, verdict, sequence)  # no body on an error
            return
        self.parts.append(part)
        session.write(SUBMIT_SM | _RESP, ROK, sequence, cstring(part.message_id))
        self._assemble(part)
        if part.registered_delivery & 0x03:
            if self.receipt_mode == "immediate":
                task = asyncio.create_task(self._receipt_now(part))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self.pending_receipts.append(part)

    async def _receipt_now(self, part: Part) -> None:
        if not await self.send_receipt(part):
            self.pending_receipts.append(part)

    def _decode_submit(self, session: Session, body: bytes) -> Part:
        """A submit_sm body as a Part; ValueError when it would not fit one SMS."""
        fields = Fields(body)
        fields.cstring()  # service_type
        source_ton, source_npi = fields.octet(), fields.octet()
        source = fields.cstring()
        dest_ton, dest_npi = fields.octet(), fields.octet()
        destination = fields.cstring()
        esm_class = fields.octet()
        fields.octets(2)  # protocol_id, priority_flag
        fields.cstring()  # schedule_delivery_time
        fields.cstring()  # validity_period
        registered_delivery = fields.octet()
        fields.octet()  # replace_if_present_flag
        data_coding = fields.octet()
        fields.octet()  # sm_default_msg_id
        short_message = fields.octets(fields.octet())
        udh, payload, concat = b"", short_message, None
        if esm_class & 0x40:
            udh, payload = (
                short_message[: short_message[0] + 1],
                short_message[short_message[0] + 1 :],
            )
            concat = _concatenation(udh)
        _check_size(data_coding, udh, payload)
        return Part(
            message_id=f"{next(self._ids):08X}",
            system_id=session.system_id,
            source=source,
            source_ton=source_ton,
            source_npi=source_npi,
            destination=destination,
            dest_ton=dest_ton,
            dest_npi=dest_npi,
            esm_class=esm_class,
            data_coding=data_coding,
            registered_delivery=registered_delivery,
            udh=udh,
            payload=payload,
            text=decode_text(data_coding, payload),
            concat=concat,
            at=self._clock(),
        )

    def _assemble(self, part: Part) -> None:
        if part.concat is None or part.concat[1] <= 1:
            self.messages.append(Message((part,)))
            return
        reference, total, seq = part.concat
        key = (part.source, part.destination, reference, total)
        parts = self._incomplete.setdefault(key, {})
        parts[seq] = part
        if len(parts) == total:
            del self._incomplete[key]
            self.messages.append(Message(tuple(parts[n] for n in sorted(parts))))


class Fields:
    """A PDU body read field by field; ValueError (IndexError) when it ends early."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def cstring(self) -> str:
        end = self._data.index(b"\x00", self._at)
        value, self._at = self._data[self._at : end].decode("latin-1"), end + 1
        return value

    def octet(self) -> int:
        value = self._data[self._at]
        self._at += 1
        return value

    def octets(self, count: int) -> bytes:
        value = self._data[self._at : self._at + count]
        if len(value) != count:
            raise ValueError("short_message runs past the PDU")
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


def cstring(value: str) -> bytes:
    return value.encode("ascii") + b"\x00"


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


def _concatenation(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, sequence) from a UDH's concatenation element, 8- or 16-bit ref."""
    at = 1
    while at + 1 < len(udh):
        iei, length = udh[at], udh[at + 1]
        data = udh[at + 2 : at + 2 + length]
        if iei == 0x00 and length == 3:
            return data[0], data[1], data[2]
        if iei == 0x08 and length == 4:
            return data[0] << 8 | data[1], data[2], data[3]
        at += 2 + length
    return None


def _check_size(data_coding: int, udh: bytes, payload: bytes) -> None:
    """Refuse what one SMS cannot carry: 160 septets or 140 octets, the UDH included."""
    if data_coding == 0x00:
        septets = len(payload) + math.ceil(len(udh) * 8 / 7)
        if septets > 160:
            raise ValueError(f"{septets} septets")
    elif len(udh) + len(payload) > 140 or (data_coding == 0x08 and len(payload) % 2):
        raise ValueError(f"{len(udh) + len(payload)} octets")


def decode_text(data_coding: int, payload: bytes) -> str:
    if data_coding == 0x00:
        return payload.decode("gsm03.38", "replace")
    if data_coding == 0x08:
        return payload.decode("utf-16-be", "replace")
    return payload.decode("latin-1")


async def _serve_forever(smsc: Smsc) -> None:
    await smsc.start()
    print(f"SMSC simulator listening on {smsc.host}:{smsc.port}", flush=True)
    printed = 0

    def more() -> bool:
        return len(smsc.messages) > printed

    try:
        while True:
            await smsc.wait_for(more, timeout=None)
            for message in smsc.messages[printed:]:
                print(f"{message.message_id} to {message.destination}: {message.text}", flush=True)
            printed = len(smsc.messages)
    finally:
        await smsc.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve an SMSC until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--system-id", default=DEFAULT_SYSTEM_ID)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--receipts", choices=["immediate", "manual"], default="immediate")
    args = parser.parse_args(argv)
    smsc = Smsc(
        args.host,
        args.port,
        system_id=args.system_id,
        password=args.password,
        receipts=args.receipts,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(smsc))


if __name__ == "__main__":
    main()
