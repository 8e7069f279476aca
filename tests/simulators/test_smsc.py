"""The SMSC simulator, driven by raw SMPP PDUs over TCP (not by the gateway's provider)."""

from __future__ import annotations

import asyncio
import signal
import socket
import struct
import sys
from collections.abc import AsyncIterator

import pytest

from simulators.smsc import DEFAULT_PASSWORD, DEFAULT_SYSTEM_ID, Smsc

BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x01, 0x02, 0x09
SUBMIT_SM, DELIVER_SM, ENQUIRE_LINK = 0x04, 0x05, 0x15
GENERIC_NACK = 0x80000000


class Esme:
    """A bare ESME: writes PDUs by hand and reads what comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sequence = 0

    @classmethod
    async def connect(cls, port: int) -> Esme:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    def write(self, command_id: int, body: bytes = b"", sequence: int | None = None) -> int:
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        self.writer.write(struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body)
        return sequence

    async def read(self) -> tuple[int, int, int, bytes]:
        async with asyncio.timeout(5):
            length, command_id, status, sequence = struct.unpack(
                ">IIII", await self.reader.readexactly(16)
            )
            return command_id, status, sequence, await self.reader.readexactly(length - 16)

    async def call(self, command_id: int, body: bytes = b"") -> tuple[int, int, bytes]:
        sequence = self.write(command_id, body)
        answer_id, status, answer_sequence, answer = await self.read()
        assert answer_sequence == sequence
        return answer_id, status, answer

    async def bind(
        self,
        command_id: int = BIND_TRANSCEIVER,
        system_id: str = DEFAULT_SYSTEM_ID,
        password: str = DEFAULT_PASSWORD,
    ) -> int:
        body = f"{system_id}\0{password}\0\0".encode() + bytes([0x34, 0, 0]) + b"\0"
        answer_id, status, _ = await self.call(command_id, body)
        assert answer_id == command_id | 0x80000000
        return status

    async def submit(
        self, short_message: bytes, data_coding: int = 0, esm_class: int = 0, to: str = "8210"
    ) -> tuple[int, str]:
        body = (
            b"\0" + bytes([5, 0]) + b"OKRYU\0" + bytes([1, 1]) + to.encode() + b"\0"
            + bytes([esm_class, 0, 0]) + b"\0\0"
            + bytes([1, 0, data_coding, 0, len(short_message)]) + short_message
        )  # fmt: skip
        answer_id, status, answer = await self.call(SUBMIT_SM, body)
        assert answer_id == SUBMIT_SM | 0x80000000
        return status, answer.rstrip(b"\0").decode()


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    async with Smsc(receipts="manual") as simulator:
        yield simulator


@pytest.fixture
async def esme(smsc: Smsc) -> AsyncIterator[Esme]:
    client = await Esme.connect(smsc.port)
    yield client
    await client.close()


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        (DEFAULT_SYSTEM_ID, DEFAULT_PASSWORD, 0x00),
        ("someone", DEFAULT_PASSWORD, 0x0F),  # ESME_RINVSYSID
        (DEFAULT_SYSTEM_ID, "guess", 0x0E),  # ESME_RINVPASWD
    ],
)
async def test_smsc_bind_checks_credentials(
    smsc: Smsc, esme: Esme, system_id: str, password: str, status: int
) -> None:
    assert await esme.bind(BIND_TRANSCEIVER, system_id, password) == status
    assert smsc.binds == [("trx", system_id, status)]


async def test_smsc_refuses_a_second_bind_and_submits_before_a_bind(esme: Esme) -> None:
    assert (await esme.submit(b"hi"))[0] == 0x04  # ESME_RINVBNDSTS
    assert await esme.bind() == 0
    assert await esme.bind() == 0x05  # ESME_RALYBND


async def test_smsc_receiver_cannot_submit(esme: Esme) -> None:
    assert await esme.bind(BIND_RECEIVER) == 0
    assert (await esme.submit(b"hi"))[0] == 0x04


async def test_smsc_answers_unknown_commands_with_generic_nack(esme: Esme) -> None:
    assert await esme.call(0x00000099) == (GENERIC_NACK, 0x03, b"")  # ESME_RINVCMDID


async def test_smsc_answers_enquire_link(smsc: Smsc, esme: Esme) -> None:
    assert await esme.bind() == 0
    assert await esme.call(ENQUIRE_LINK) == (ENQUIRE_LINK | 0x80000000, 0, b"")
    assert smsc.enquire_links == 1


async def test_smsc_records_a_submit_and_answers_a_fresh_id(smsc: Smsc, esme: Esme) -> None:
    await esme.bind()
    first = await esme.submit("Hello @ €5".encode("gsm03.38"))
    second = await esme.submit("안녕".encode("utf-16-be"), data_coding=8)
    assert first[0] == second[0] == 0
    assert first[1] != second[1]
    assert [(m.message_id, m.text, m.data_coding) for m in smsc.messages] == [
        (first[1], "Hello @ €5", 0),
        (second[1], "안녕", 8),
    ]


async def test_smsc_reassembles_parts_in_order_with_either_reference(
    smsc: Smsc, esme: Esme
) -> None:
    await esme.bind()
    eight_bit = [bytes([5, 0, 3, 0xAB, 2, n]) for n in (2, 1)]
    sixteen_bit = [bytes([6, 8, 4, 0x12, 0x34, 2, n]) for n in (1, 2)]
    for udh, text in zip(eight_bit, ["world", "hello "], strict=True):
        await esme.submit(udh + text.encode("gsm03.38"), esm_class=0x40)
    for udh, text in zip(sixteen_bit, ["안녕", "하세요"], strict=True):
        await esme.submit(udh + text.encode("utf-16-be"), data_coding=8, esm_class=0x40)
    assert [m.text for m in smsc.messages] == ["hello world", "안녕하세요"]
    assert [p.concat for p in smsc.messages[1].parts] == [(0x1234, 2, 1), (0x1234, 2, 2)]


@pytest.mark.parametrize(
    ("short_message", "data_coding", "esm_class"),
    [
        (b"a" * 161, 0, 0),  # 161 septets
        (bytes([5, 0, 3, 1, 2, 1]) + b"a" * 154, 0, 0x40),  # 154 septets beside a UDH
        (bytes([5, 0, 3, 1, 2, 1]) + b"a" * 136, 8, 0x40),  # 142 octets
        (b"\x00a\x00", 8, 0),  # half a UCS-2 character
    ],
)
async def test_smsc_refuses_what_one_sms_cannot_carry(
    smsc: Smsc, esme: Esme, short_message: bytes, data_coding: int, esm_class: int
) -> None:
    await esme.bind()
    status, _ = await esme.submit(short_message, data_coding, esm_class)
    assert status == 0x01  # ESME_RINVMSGLEN
    assert smsc.parts == []


async def test_smsc_fits_exactly_153_septets_beside_a_udh(smsc: Smsc, esme: Esme) -> None:
    await esme.bind()
    status, _ = await esme.submit(bytes([5, 0, 3, 1, 2, 1]) + b"a" * 153, 0, 0x40)
    assert status == 0


async def test_smsc_injects_throttling_and_failures_in_order(smsc: Smsc, esme: Esme) -> None:
    await esme.bind()
    smsc.throttle_next(1, after=1)
    smsc.fail_next(1, 0x0B)
    statuses = [(await esme.submit(b"hi"))[0] for _ in range(4)]
    assert statuses == [0, 0x58, 0x0B, 0]
    assert smsc.refused == [0x58, 0x0B]
    assert len(smsc.parts) == 2


async def test_smsc_drop_next_closes_the_link_at_a_submit_unanswered(
    smsc: Smsc, esme: Esme
) -> None:
    await esme.bind()
    smsc.drop_next(after=1)
    assert (await esme.submit(b"part one"))[0] == 0
    esme.write(SUBMIT_SM, b"\0")  # the next submit_sm: no answer, the connection ends
    assert await esme.reader.read() == b""
    assert [p.text for p in smsc.parts] == ["part one"] and smsc.refused == []
    again = await Esme.connect(smsc.port)  # the SMSC itself stays up
    try:
        assert await again.bind() == 0
        assert (await again.submit(b"after"))[0] == 0
    finally:
        await again.close()


async def test_smsc_stall_next_leaves_a_submit_unanswered(smsc: Smsc, esme: Esme) -> None:
    await esme.bind()
    smsc.stall_next(after=1)
    assert (await esme.submit(b"one"))[0] == 0
    esme.write(SUBMIT_SM, b"\0")
    # The next submit's answer is the next PDU to arrive (Esme.call checks its sequence).
    assert (await esme.submit(b"three"))[0] == 0
    assert [p.text for p in smsc.parts] == ["one", "three"]


async def test_smsc_sends_receipts_with_text_and_tlvs(smsc: Smsc, esme: Esme) -> None:
    await esme.bind()
    _, message_id = await esme.submit(b"Order OK-4F2A placed")
    delivering = asyncio.create_task(smsc.deliver_receipts("DELIVRD"))
    command_id, _, sequence, body = await esme.read()
    assert command_id == DELIVER_SM
    assert body[body.index(b"OKRYU\0") + 6] == 0x04  # esm_class: SMSC delivery receipt
    assert f"id:{message_id} sub:001 dlvrd:001 submit date:".encode() in body
    assert b" stat:DELIVRD err:000 text:Order OK-4F2A placed" in body
    tlvs = struct.pack(">HH", 0x001E, len(message_id) + 1) + message_id.encode() + b"\0"
    assert body.endswith(tlvs + struct.pack(">HHB", 0x0427, 1, 2))
    esme.write(DELIVER_SM | 0x80000000, b"\0", sequence)
    assert await delivering == 1
    assert smsc.pending_receipts == []


async def test_smsc_keeps_a_receipt_for_a_transmitter_until_a_receiver_binds(
    smsc: Smsc, esme: Esme
) -> None:
    await esme.bind(BIND_TRANSMITTER)
    await esme.submit(b"hi")
    assert await smsc.deliver_receipts() == 0
    assert len(smsc.pending_receipts) == 1


async def test_smsc_disconnect_drops_connections_and_keeps_listening(
    smsc: Smsc, esme: Esme
) -> None:
    await esme.bind()
    await smsc.disconnect()
    assert await esme.reader.read() == b""
    again = await Esme.connect(smsc.port)
    try:
        assert await again.bind() == 0
    finally:
        await again.close()


async def test_smsc_stop_and_start_listen_on_the_same_port(smsc: Smsc, esme: Esme) -> None:
    await esme.bind()
    port = smsc.port
    await smsc.stop()
    assert await esme.reader.read() == b""
    with pytest.raises(OSError):
        await Esme.connect(port)
    await smsc.start()
    assert smsc.port == port
    again = await Esme.connect(port)
    try:
        assert await again.bind() == 0
    finally:
        await again.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_smsc_runs_standalone() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.smsc", "--port", str(port), "--password", "pw",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(10):
            assert (
                await process.stdout.readline()
                == f"SMSC simulator listening on 127.0.0.1:{port}\n".encode()
            )
        esme = await Esme.connect(port)
        try:
            assert await esme.bind(password="pw") == 0
            _, message_id = await esme.submit(b"hi", to="821012345678")
        finally:
            await esme.close()
        async with asyncio.timeout(10):
            assert await process.stdout.readline() == f"{message_id} to 821012345678: hi\n".encode()
    finally:
        process.send_signal(signal.SIGINT)
        assert await process.wait() == 0
