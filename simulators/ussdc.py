"""An operator's USSD centre that speaks SMPP 3.4 to the application, for tests and demos.

It is the SMSC simulator (``simulators/smsc.py``: binds, enquire_link, SMS and receipts,
failures on demand) plus USSD dialogues, in either vendor profile (PROTOCOLS.md §6.5):

- ``deliver_sm``: a dialogue opens with a deliver_sm whose ``ussd_service_op`` is 1 (PSSR
  indication, the dial string), each answer is a deliver_sm with 18 (USSR confirm); the
  application answers each with a submit_sm, 2 (USSR request: a screen that waits) or 17
  (PSSR response: the last screen).
- ``data_sm``: the same operations, carried by data_sm both ways (text in message_payload).

A dialogue is named by ``user_message_reference`` (a 16-bit number) or ``its_session_info``
(session number, dialogue unit, end flag); the application must echo it, and a screen for a
dialogue the centre does not hold (ended, given up on, or misnamed) is refused.

Handsets reach it over HTTP (``handset_app()``), and the ``smpp`` dialect (``SMPP``) speaks
that, so ``Phone``, the network simulator, the scenarios and the load runner drive a gateway
over SMPP as they drive it over an aggregator. ``POST /ussd``::

    {"sessionId": "3c7a", "msisdn": "+8501912345678", "serviceCode": "*123#",
     "type": "begin", "message": "*123*1#", "sequence": 1}
    -> {"type": "continue", "message": "Catalogue\\n1. Food..."}   (or "end")

A hop the centre already forwarded (the network's retry, sent again or at the same time, or an
earlier hop arriving late) is answered from the centre's own memory, as a USSD centre keeping
the dialogue's state does; a hop of a dialogue that is over gets ``410``. ``GET /dev/sms`` is
the handset's SMS inbox: the SMS the application submitted over the same bind.

Faults on demand, besides the SMSC's (``disconnect``, ``stop``/``start``, throttling):
``time_out`` (the dialogue's timer runs out: a hang-up goes to the application),
``give_up_next`` (the centre stops waiting for the application's next screen, answers the
handset with a timeout and refuses the screen when it comes). ``send_sms`` sends an SMS to
the application. Run standalone with ``python -m simulators.ussdc`` (SMPP on 2776, handsets
on http://127.0.0.1:8776/ussd).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from aiohttp import web

from simulators.errors import SimulatorError
from simulators.phone import Dialect, Display, Hop, HttpRequest
from simulators.smsc import (
    _RESP,
    DELIVER_SM,
    RINVBNDSTS,
    RINVMSGLEN,
    ROK,
    SUBMIT_SM,
    Fields,
    Session,
    Smsc,
    cstring,
    decode_text,
    tlv,
)

DATA_SM = 0x00000103
RSUBMITFAIL = 0x45  # a screen for a dialogue the centre does not hold
RX_T_APPN = 0x64
TLV_USER_MESSAGE_REFERENCE = 0x0204
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_USSD_SERVICE_OP = 0x0501
TLV_ITS_SESSION_INFO = 0x1383
PSSR_INDICATION, USSR_REQUEST, PSSR_RESPONSE, USSR_CONFIRM = 1, 2, 17, 18
HANGUP, FAILURE = 65, 66
# One USSD string: 160 octets, 182 GSM-7 characters or 80 UCS-2 (PROTOCOLS.md §5.1).
MAX_GSM7, MAX_UCS2 = 182, 80
DEFAULT_PORT, DEFAULT_HTTP_PORT = 2776, 8776
ACK_TIMEOUT = 15.0  # seconds the centre waits for the application's deliver_sm_resp

Profile = Literal["deliver_sm", "data_sm"]
DialogueTlv = Literal["user_message_reference", "its_session_info"]


@dataclass(frozen=True)
class Screen:
    """What the application sent on a dialogue: the text, and whether it ends it."""

    text: str
    end: bool


class _Refused(SimulatorError):
    """A handset hop the centre cannot carry: the HTTP status and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(eq=False)
class Dialogue:
    """One dialogue the centre holds: its number, its hops forwarded and their screens."""

    number: int
    msisdn: str  # digits, as on the wire
    code: str
    system_id: str
    forwarded: int = 0  # hops sent to the application (1: the dial)
    last: str = ""  # what the last hop forwarded said
    screens: dict[int, asyncio.Future[Screen]] = field(default_factory=dict)  # by hop
    closed: str = ""  # why the centre holds it no more: "ended", "timed out", "gave up"
    give_up: bool = False  # the centre gave up on the hop forwarded last


class UssdCentre(Smsc):
    """The SMSC simulator with USSD dialogues over the same bind."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        profile: Profile = "deliver_sm",
        dialogue: DialogueTlv = "user_message_reference",
        answer_timeout: float = 15.0,
        **smsc: Any,
    ) -> None:
        super().__init__(host, port, **smsc)
        self.profile: Profile = profile
        self.dialogue_tlv: DialogueTlv = dialogue
        self.answer_timeout = answer_timeout  # the centre's wait for a screen, seconds
        self.dialogues: dict[str, Dialogue] = {}  # by the handset's session id
        self.screens: list[tuple[int, int, Screen]] = []  # (dialogue, hop, screen) accepted
        self.refused_screens: list[tuple[int, str]] = []  # (dialogue number, why)
        self.mo_statuses: list[int] = []  # the application's answer to each MO
        self._numbers = 0
        self._giving_up = False
        self._limit = 1 << 16 if dialogue == "user_message_reference" else 1 << 8

    # --- handsets -----------------------------------------------------------------------

    async def hop(
        self, session_id: str, msisdn: str, code: str, message: str, sequence: int
    ) -> Screen:
        """Carry hop ``sequence`` (1: the dial) of a handset's dialogue; the screen it gets.

        Raises ``_Refused`` (with an HTTP status) when no screen can come.
        """
        digits = msisdn.removeprefix("+")
        dialogue = self.dialogues.get(session_id)
        if dialogue is None:
            if sequence != 1:
                raise _Refused(410, "no such dialogue")
            system_id = self._bound_system_id()
            dialogue = Dialogue(self._number(digits), digits, code, system_id)
            self.dialogues[session_id] = dialogue
        if sequence <= dialogue.forwarded:  # the network's retry, or a hop arriving late
            return await self._screen_of(dialogue, sequence)
        if dialogue.closed:
            raise _Refused(410, f"the dialogue is over ({dialogue.closed})")
        dialogue.forwarded, dialogue.last = sequence, message
        future = dialogue.screens[sequence] = asyncio.get_running_loop().create_future()
        op = PSSR_INDICATION if sequence == 1 else USSR_CONFIRM
        dialogue.give_up, self._giving_up = self._giving_up, False
        await self._send_mo(dialogue, op, message, sequence)
        if dialogue.give_up:  # whatever the application sends now comes too late
            await self._give_up(dialogue, future)
        return await self._screen_of(dialogue, sequence)

    async def _screen_of(self, dialogue: Dialogue, sequence: int) -> Screen:
        future = dialogue.screens.get(sequence)
        if future is None:
            raise _Refused(410, "no such hop")
        try:
            async with asyncio.timeout(self.answer_timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            await self._give_up(dialogue, future)
            raise _Refused(504, "the application did not answer in time") from None

    async def _give_up(self, dialogue: Dialogue, future: asyncio.Future[Screen]) -> None:
        """Stop waiting: the handset is told, the application gets a failure ending."""
        if dialogue.closed:
            return
        dialogue.closed = "gave up"
        if not future.done():
            future.set_exception(_Refused(504, "the USSD centre gave up waiting"))
            future.exception()  # retrieved: no "never retrieved" warning
        await self._send_mo(dialogue, FAILURE, "", dialogue.forwarded, end=True)

    def give_up_next(self) -> None:
        """The next hop forwarded: the centre gives up on its screen before it can come."""
        self._giving_up = True

    async def redeliver(self, session_id: str) -> int:
        """Send the dialogue's last MO again, as a centre does whose resp was lost; the
        application's deliver_sm_resp status. Its screen, a second one, is refused."""
        dialogue = self.dialogues[session_id]
        op = PSSR_INDICATION if dialogue.forwarded == 1 else USSR_CONFIRM
        await self._send_mo(dialogue, op, dialogue.last, dialogue.forwarded)
        return self.mo_statuses[-1]

    async def time_out(self, session_id: str) -> None:
        """The dialogue's timer runs out (the subscriber went quiet): a hang-up is sent."""
        dialogue = self.dialogues[session_id]
        if dialogue.closed:
            return
        dialogue.closed = "timed out"
        await self._send_mo(dialogue, HANGUP, "", dialogue.forwarded, end=True)

    async def send_sms(self, msisdn: str, text: str, to: str = "123") -> int:
        """An SMS from ``msisdn`` to the application; its deliver_sm_resp status."""
        encoded, data_coding = _encode(text)
        short_message, payload = (encoded, b"") if len(encoded) <= 254 else (b"", encoded)
        body = b"".join(
            [
                cstring(""),
                bytes([1, 1]),
                cstring(msisdn.removeprefix("+")),
                bytes([0, 0]),
                cstring(to),
                bytes([0, 0, 0]),
                cstring(""),
                cstring(""),
                bytes([0, 0, data_coding, 0, len(short_message)]),
                short_message,
                tlv(TLV_MESSAGE_PAYLOAD, payload) if payload else b"",
            ]
        )
        return await self._deliver(self._bound_system_id(), DELIVER_SM, body)

    def inbox(self, msisdn: str, after: int = 0) -> list[tuple[int, str]]:
        """The SMS the application submitted to ``msisdn``: (id, text), oldest first."""
        digits = msisdn.removeprefix("+")
        found = [
            (n, message.text)
            for n, message in enumerate(self.messages, start=1)
            if message.destination == digits
        ]
        return [(n, text) for n, text in found if n > after]

    # --- the wire -----------------------------------------------------------------------

    def _bound_system_id(self) -> str:
        for session in self._sessions:
            if session.mode in ("rx", "trx"):
                return session.system_id
        raise _Refused(503, "no application is bound to the USSD centre")

    def _number(self, msisdn: str) -> int:
        """A dialogue number no open dialogue of ``msisdn`` holds (a number names a dialogue
        together with the subscriber: its_session_info has 256 of them)."""
        taken = {d.number for d in self.dialogues.values() if not d.closed and d.msisdn == msisdn}
        for _ in range(self._limit):
            self._numbers = (self._numbers + 1) % self._limit
            if self._numbers not in taken:
                return self._numbers
        raise _Refused(503, "every dialogue number is in use")

    def _dialogue_tlv(self, dialogue: Dialogue, sequence: int, end: bool) -> bytes:
        if self.dialogue_tlv == "user_message_reference":
            return tlv(TLV_USER_MESSAGE_REFERENCE, dialogue.number.to_bytes(2, "big"))
        unit = (2 * (sequence - 1)) & 0x7F  # the MO of hop n is unit 2(n-1); its answer, +1
        return tlv(TLV_ITS_SESSION_INFO, bytes([dialogue.number, unit << 1 | int(end)]))

    async def _send_mo(
        self, dialogue: Dialogue, op: int, message: str, sequence: int, *, end: bool = False
    ) -> None:
        encoded, data_coding = _encode(message)
        if data_coding == 0x00:
            data_coding = 0x0F  # USSD's GSM-7, "language unspecified"
        tlvs = tlv(TLV_USSD_SERVICE_OP, bytes([op])) + self._dialogue_tlv(dialogue, sequence, end)
        source = [bytes([1, 1]), cstring(dialogue.msisdn), bytes([0, 0]), cstring(dialogue.code)]
        if self.profile == "data_sm":
            command = DATA_SM
            body = b"".join(
                [cstring("USSD"), *source, bytes([0, 0, data_coding])]
                + [tlv(TLV_MESSAGE_PAYLOAD, encoded), tlvs]
            )
        else:
            command = DELIVER_SM
            body = b"".join(
                [cstring("USSD"), *source, bytes([0, 0, 0]), cstring(""), cstring("")]
                + [bytes([0, 0, data_coding, 0, len(encoded)]), encoded, tlvs]
            )
        status = await self._deliver(dialogue.system_id, command, body)
        if status != ROK and not end:
            dialogue.closed = "refused"
            raise _Refused(502, f"the application refused the message: 0x{status:08X}")

    async def _deliver(self, system_id: str, command: int, body: bytes) -> int:
        session = self._receiver(system_id)
        if session is None:
            raise _Refused(503, "no application is bound to the USSD centre")
        try:
            _, status = await session.request(command, body, timeout=ACK_TIMEOUT)
        except (TimeoutError, ConnectionError):
            raise _Refused(502, "the application did not acknowledge the message") from None
        self.mo_statuses.append(status)
        await self._notify()
        return status

    async def _handle(self, session: Session, command_id: int, sequence: int, body: bytes) -> bool:
        if command_id == DATA_SM or (command_id == SUBMIT_SM and _is_ussd(command_id, body)):
            verdict = self._verdicts.pop(0) if self._verdicts else ROK
            if session.mode not in ("tx", "trx"):
                session.write(command_id | _RESP, RINVBNDSTS, sequence)
            elif verdict < 0:  # drop_next (the link falls), stall_next (never answered)
                if verdict == -1:
                    session.writer.transport.abort()
            elif verdict != ROK:  # throttle_next, fail_next: the screen is not taken
                self.refused.append(verdict)
                session.write(command_id | _RESP, verdict, sequence)
            else:
                status = self._screen(command_id, body)
                message_id = cstring(f"U{len(self.screens):07X}") if status == ROK else b""
                session.write(command_id | _RESP, status, sequence, message_id)
            await self._notify()
            return True
        return await super()._handle(session, command_id, sequence, body)

    def _screen(self, command_id: int, body: bytes) -> int:
        """Take a screen from the application: the status its response carries."""
        try:
            mt = _decode_mt(command_id, body)
        except (ValueError, IndexError):
            return RINVMSGLEN
        op = mt.tlvs.get(TLV_USSD_SERVICE_OP, b"\x00")[0]
        dialogue, hop, why = self._find(mt)
        if dialogue is None or why:
            self.refused_screens.append((dialogue.number if dialogue else -1, why))
            return RSUBMITFAIL
        text = decode_text(mt.data_coding, mt.text)
        if len(text) > (MAX_UCS2 if mt.data_coding == 0x08 else MAX_GSM7) or op not in (
            USSR_REQUEST,
            PSSR_RESPONSE,
        ):
            self.refused_screens.append((dialogue.number, "too long or not a screen"))
            return RINVMSGLEN
        screen = Screen(text, end=op == PSSR_RESPONSE)
        future = dialogue.screens[hop]
        if future.done():
            self.refused_screens.append((dialogue.number, "answered already"))
            return RSUBMITFAIL
        future.set_result(screen)
        self.screens.append((dialogue.number, hop, screen))
        if screen.end:
            dialogue.closed = "ended"
        return ROK

    def _find(self, mt: _Mt) -> tuple[Dialogue | None, int, str]:
        """The dialogue (and hop) a screen answers, or why it answers none."""
        if self.dialogue_tlv == "user_message_reference":
            value = mt.tlvs.get(TLV_USER_MESSAGE_REFERENCE)
            if value is None or len(value) != 2:
                return None, 0, "no user_message_reference"
            number, unit = int.from_bytes(value, "big"), None
        else:
            value = mt.tlvs.get(TLV_ITS_SESSION_INFO)
            if value is None or len(value) != 2:
                return None, 0, "no its_session_info"
            number, unit = value[0], value[1] >> 1
        # A number is free again once its dialogue is over (its_session_info has 256): the
        # subscriber's open dialogue of that number, else the last one that is over.
        named = [
            d for d in self.dialogues.values() if d.number == number and d.msisdn == mt.destination
        ]
        dialogue = next((d for d in named if not d.closed), named[-1] if named else None)
        if dialogue is None:
            return None, 0, "no such dialogue"
        if dialogue.closed or dialogue.give_up:
            return dialogue, 0, f"the dialogue is over ({dialogue.closed or 'gave up'})"
        hop = dialogue.forwarded
        if unit is not None and unit != (2 * (hop - 1) + 1) & 0x7F:
            return dialogue, 0, f"dialogue unit {unit} answers no hop"
        return dialogue, hop, ""

    # --- HTTP for handsets --------------------------------------------------------------

    def handset_app(self) -> web.Application:
        """``POST /ussd`` (a handset's hop) and ``GET /dev/sms`` (its SMS inbox)."""
        app = web.Application()
        app.router.add_post("/ussd", self._http_hop)
        app.router.add_get("/dev/sms", self._http_inbox)
        return app

    async def _http_hop(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.text())
            session_id, msisdn = str(data["sessionId"]), str(data["msisdn"])
            code, message = str(data["serviceCode"]), str(data["message"])
            sequence = int(data["sequence"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "a hop is a JSON object of six fields"}, status=400)
        if len(message) > MAX_GSM7:  # no handset sends more than one USSD string holds
            return web.json_response({"error": f"at most {MAX_GSM7} characters"}, status=400)
        try:
            screen = await self.hop(session_id, msisdn, code, message, sequence)
        except _Refused as refused:
            return web.json_response({"error": refused.reason}, status=refused.status)
        kind = "end" if screen.end else "continue"
        return web.json_response({"type": kind, "message": screen.text})

    async def _http_inbox(self, request: web.Request) -> web.Response:
        to = request.query.get("to", "")
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return web.json_response({"error": "after must be an integer"}, status=400)
        at = {n: m.parts[0].at for n, m in enumerate(self.messages, start=1)}
        messages = [
            {"id": n, "body": text, "at": at[n].isoformat()} for n, text in self.inbox(to, after)
        ]
        return web.json_response({"messages": messages})


@dataclass(frozen=True)
class _Mt:
    destination: str
    data_coding: int
    text: bytes
    tlvs: dict[int, bytes]


def _is_ussd(command_id: int, body: bytes) -> bool:
    try:
        mt = _decode_mt(command_id, body)
    except (ValueError, IndexError):
        return False
    return TLV_USSD_SERVICE_OP in mt.tlvs


def _decode_mt(command_id: int, body: bytes) -> _Mt:
    fields = Fields(body)
    fields.cstring()  # service_type
    fields.octets(2)
    fields.cstring()  # source
    fields.octets(2)
    destination = fields.cstring()
    if command_id == DATA_SM:
        fields.octets(2)  # esm_class, registered_delivery
        data_coding = fields.octet()
        tlvs = fields.tlvs()
        return _Mt(destination, data_coding, tlvs.get(TLV_MESSAGE_PAYLOAD, b""), tlvs)
    fields.octets(3)  # esm_class, protocol_id, priority_flag
    fields.cstring()
    fields.cstring()
    fields.octets(2)  # registered_delivery, replace_if_present
    data_coding = fields.octet()
    fields.octet()
    short_message = fields.octets(fields.octet())
    tlvs = fields.tlvs()
    return _Mt(destination, data_coding, short_message or tlvs.get(TLV_MESSAGE_PAYLOAD, b""), tlvs)


def _encode(text: str) -> tuple[bytes, int]:
    try:
        return text.encode("gsm03.38"), 0x00
    except ValueError:
        return text.encode("utf-16-be", "surrogatepass"), 0x08


# --- the handset's side: the ``smpp`` dialect -------------------------------------------------


def _encode_hop(hop: Hop) -> HttpRequest:
    return HttpRequest(
        json={
            "sessionId": hop.session_id,
            "msisdn": hop.msisdn,
            "serviceCode": hop.service_code,
            "type": "continue" if hop.inputs else "begin",
            "message": hop.inputs[-1] if hop.inputs else hop.service_code,
            "sequence": len(hop.inputs) + 1,
        }
    )


def _decode_screen(status: int, body: str) -> Display:
    try:
        data = json.loads(body) if status == 200 else None
    except ValueError:
        data = None
    kinds = {"continue": False, "end": True}
    if not isinstance(data, dict) or data.get("type") not in kinds:
        return Display(text=body.strip(), end=True, status=status, raw=body, well_formed=False)
    text = data.get("message")
    if not isinstance(text, str):
        return Display(text=body.strip(), end=True, status=status, raw=body, well_formed=False)
    return Display(text=text, end=kinds[data["type"]], status=status, raw=body)


# A handset on an operator's network whose USSD centre talks SMPP to the gateway: it posts
# to the centre's /ussd, not to the gateway.
SMPP = Dialect("smpp", lambda: uuid.uuid4().hex, _encode_hop, _decode_screen)
DEFAULT_HANDSET_URL = f"http://127.0.0.1:{DEFAULT_HTTP_PORT}/ussd"


async def _serve_forever(centre: UssdCentre, http_host: str, http_port: int) -> None:
    await centre.start()
    runner = web.AppRunner(centre.handset_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, http_host, http_port).start()
    print(
        f"USSD centre ({centre.profile}, {centre.dialogue_tlv}) listening for SMPP on"
        f" {centre.host}:{centre.port}, handsets on http://{http_host}:{http_port}/ussd",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await centre.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a USSD centre until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    parser.add_argument("--system-id", default="okryu")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--profile", choices=["deliver_sm", "data_sm"], default="deliver_sm")
    parser.add_argument(
        "--dialogue",
        choices=["user_message_reference", "its_session_info"],
        default="user_message_reference",
    )
    args = parser.parse_args(argv)
    centre = UssdCentre(
        args.host,
        args.port,
        profile=args.profile,
        dialogue=args.dialogue,
        system_id=args.system_id,
        password=args.password,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(centre, args.host, args.http_port))


if __name__ == "__main__":
    main()
