"""USSD dialogues (and SMS) from the operator's own USSD centre, over one SMPP bind.

The centre opens a dialogue with a PSSR indication and sends each answer as a USSR confirm;
the gateway shows a screen and waits with a USSR request, or ends with a PSSR response
(``ussd_service_op``, PROTOCOLS.md §6.5). Profile ``deliver_sm`` (the Eyeline kind): the
centre sends deliver_sm, the gateway answers with submit_sm; profile ``data_sm``: data_sm both
ways. A dialogue is named by ``user_message_reference`` or by ``its_session_info``, echoed on
every answer. The dial ``*123*1#`` of +850 191 234 5678, dialogue 7, profile deliver_sm::

    deliver_sm  service_type "USSD", source 1/1 "8501912345678", destination "*123#",
                data_coding 0x0F, short_message "*123*1#",
                TLV 0x0501 ussd_service_op 01 (PSSR indication), TLV 0x0204 0007
    submit_sm   service_type "USSD", source "*123#", destination 1/1 "8501912345678",
                data_coding 0x00, short_message "Catalogue\\n1. Food...",
                TLV 0x0501 02 (USSR request: wait for an answer), TLV 0x0204 0007

and the answer "2" comes back as a deliver_sm with ``ussd_service_op`` 18 (USSR confirm).
The centre's own endings (PROTOCOLS.md §6.5's vendor values: 65 hang-up, 66 failure, 67
reject, 129 release indication, or an ``its_session_info`` end flag) close the session as an
HTTP aggregator's end notice does. A deliver_sm that is neither USSD nor a receipt is an SMS:
its command runs as over HTTP (``gateway.callbacks.receive_sms``).

Each MO is acknowledged at once (deliver_sm_resp); the hop runs beside the bind through the
same path as an HTTP callback (``gateway.callbacks.answer_hop``: replay, compare-and-set,
deadline, resume), and its screen goes back as a request of its own, in the bind's window.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web

from gateway.callbacks import SMPP_CHANNEL, Outages, answer_hop, receive_sms
from gateway.channels._wire import clean_input, latest_hop
from gateway.dial import split_dial
from gateway.messages import MAX_USSD_STRING, BadRequest, Inbound, Reply, SessionEnd
from gateway.numbers import mask, normalise_msisdn
from gateway.settings import Settings
from gateway.smpp.codec import (
    DATA_SM,
    DIGITS,
    ESM_CLASS_UDHI,
    ESME_RINVSRCADR,
    ESME_ROK,
    ESME_RX_T_APPN,
    SUBMIT_SM,
    TLV_ITS_SESSION_INFO,
    TLV_MESSAGE_PAYLOAD,
    TLV_USER_MESSAGE_REFERENCE,
    TLV_USSD_SERVICE_OP,
    DeliverSm,
    SmppError,
    data_sm_body,
    decode_text,
    encode_screen,
    status_name,
    submit_sm_body,
    tlv,
)
from gateway.smpp.provider import SmppProvider
from store.models import SMS_BODY_WIDTH

log = logging.getLogger("okryu.smpp.ussd")

# ussd_service_op values (SMPP 3.4 §5.3.2.44, and the vendor ones of PROTOCOLS.md §6.5).
PSSR_INDICATION = 1  # mobile -> app: a dialogue opens (the dial string)
USSR_REQUEST = 2  # app -> mobile: a screen that waits for an answer
PSSR_RESPONSE = 17  # app -> mobile: the last screen
USSR_CONFIRM = 18  # mobile -> app: the answer to a USSR request
USSN_CONFIRM = 19  # mobile -> app: a notification acknowledged, the dialogue closes
HANGUP = 65
FAILURE = 66
REJECT = 67
USSREL_INDICATION = 129
# How each of the centre's endings reads as a session end (as AT's and Hubtel's statuses do).
ENDINGS = {
    HANGUP: "abandoned",
    FAILURE: "failed",
    REJECT: "failed",
    USSREL_INDICATION: "released",
    USSN_CONFIRM: "released",
}
ESME_RMISSINGOPTPARAM = 0xC3  # the dialogue's TLV is missing: nothing to answer it on
SEND_TIMEOUT = 10.0  # seconds a screen may wait for the window, the bind or a throttle
MAX_DIALOGUES = 100_000  # dialogues remembered; a centre forgets older ones long before


@dataclass(frozen=True, slots=True)
class Dialogue:
    """Which dialogue of the centre a message belongs to, as its TLV says."""

    number: int  # user_message_reference, or its_session_info's session number
    sequence: int | None = None  # its_session_info: the dialogue unit (octet 2, bits 7..1)
    ends: bool = False  # its_session_info: the end-of-session flag (octet 2, bit 0)

    def tlv(self, tag: int, *, end: bool) -> bytes:
        """The TLV that names this dialogue on an answer: the same number (and unit)."""
        if tag == TLV_USER_MESSAGE_REFERENCE:
            return tlv(tag, self.number.to_bytes(2, "big"))
        unit = ((self.sequence or 0) + 1) & 0x7F  # the answer is the next dialogue unit
        return tlv(tag, bytes([self.number & 0xFF, unit << 1 | int(end)]))


def read_dialogue(message: DeliverSm, tag: int) -> Dialogue | None:
    """The dialogue named by TLV ``tag`` in ``message``, or None when it is absent or torn."""
    value = message.tlvs.get(tag)
    if tag == TLV_USER_MESSAGE_REFERENCE:
        return Dialogue(int.from_bytes(value, "big")) if value and len(value) <= 2 else None
    if value is None or len(value) != 2:
        return None
    return Dialogue(value[0], value[1] >> 1, bool(value[1] & 1))


def is_ussd(message: DeliverSm) -> bool:
    """A USSD message has the operation TLV (or, without one, the USSD service type)."""
    return TLV_USSD_SERVICE_OP in message.tlvs or message.service_type.upper() == "USSD"


def text_of(message: DeliverSm) -> str:
    """The user data as text, a concatenation header (if any) left out."""
    octets = message.text_octets
    if message.esm_class & ESM_CLASS_UDHI and octets:
        octets = octets[octets[0] + 1 :]
    return decode_text(message.data_coding, octets)


def subscriber(source_addr: str, region: str) -> str:
    """The E.164 number of a message's source (digits, international or national)."""
    digits = source_addr.strip().removeprefix("+")
    return normalise_msisdn(("+" + digits) if len(digits) > 10 else digits, region)


class UssdOverSmpp:
    """The ``smpp`` channel: MOs from one bind turned into hops and SMS, screens sent back.

    ``attach`` makes a bind's mobile-originated messages this channel's. Dialogues are
    remembered here (the centre's number to the gateway's session id, minted when a dialogue
    opens, so a number the centre reuses never resumes someone's old session).
    """

    def __init__(self, app: web.Application, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.profile = settings.ussd_smpp_profile
        self.tag = (
            TLV_ITS_SESSION_INFO
            if settings.ussd_smpp_dialogue == "its_session_info"
            else TLV_USER_MESSAGE_REFERENCE
        )
        self.outages = Outages()
        self._binding: SmppProvider | None = None
        self._dialogues: OrderedDict[tuple[str, int], _Open] = OrderedDict()
        self._hops: set[asyncio.Task[None]] = set()

    def attach(self, binding: SmppProvider, *, ussd: bool) -> None:
        """Take ``binding``'s mobile-originated messages: SMS always, USSD when ``ussd``."""
        if ussd:
            self._binding = binding
        binding.on_mobile = self.receive if ussd else self.receive_sms

    async def settle(self) -> None:
        """Wait for the hops (and endings) already received to be answered (and recorded)."""
        while self._hops:
            await asyncio.wait(list(self._hops))

    async def close(self) -> None:
        """Let the hops in flight finish (each bounded by the deadline), then stop."""
        if self._hops:
            await asyncio.wait(self._hops, timeout=self.settings.hop_deadline + SEND_TIMEOUT)
        for task in list(self._hops):
            task.cancel()
        await asyncio.gather(*self._hops, return_exceptions=True)

    # --- what comes in --------------------------------------------------------------------

    async def receive(self, message: DeliverSm) -> int:
        """One MO: a USSD hop (started, acknowledged at once) or an SMS (kept, then acked)."""
        if not is_ussd(message):
            return await self.receive_sms(message)
        try:
            hop = self.parse(message)
        except BadRequest as error:
            log.warning("smpp: a USSD message refused: %s", error.reason)
            return ESME_RINVSRCADR
        if hop is None:
            log.warning("smpp: a USSD message without its %s TLV", self.settings.ussd_smpp_dialogue)
            return ESME_RMISSINGOPTPARAM
        inbound, dialogue = hop
        task = asyncio.create_task(self._run(inbound, dialogue, message.destination_addr))
        self._hops.add(task)
        task.add_done_callback(self._hops.discard)
        return ESME_ROK

    async def receive_sms(self, message: DeliverSm) -> int:
        """An SMS: its command answered as over HTTP; acked once kept (else sent again)."""
        try:
            msisdn = subscriber(message.source_addr, self.settings.default_region)
        except BadRequest as error:
            log.warning("smpp: an SMS refused: %s", error.reason)
            return ESME_RINVSRCADR
        text = clean_input(text_of(message))[:SMS_BODY_WIDTH]
        to = message.destination_addr[:20]
        try:
            await receive_sms(self.app, msisdn=msisdn, to=to, text=text, provider_message_id=None)
        except Exception:
            log.exception(
                "smpp: an SMS from %s could not be kept; the SMSC will resend", mask(msisdn)
            )
            return ESME_RX_T_APPN
        return ESME_ROK

    def parse(self, message: DeliverSm) -> tuple[Inbound | SessionEnd, Dialogue] | None:
        """The hop or the end a USSD MO is, and its dialogue; None without the dialogue TLV.

        Raises :class:`BadRequest` for a source that is no phone number.
        """
        dialogue = read_dialogue(message, self.tag)
        if dialogue is None:
            return None
        settings = self.settings
        msisdn = subscriber(message.source_addr, settings.default_region)
        op_value = message.tlvs.get(TLV_USSD_SERVICE_OP, b"")
        op = op_value[0] if op_value else USSR_CONFIRM
        text = clean_input(text_of(message))[:MAX_USSD_STRING]
        key = (msisdn, dialogue.number)
        opened = self._dialogues.get(key)
        if op == PSSR_INDICATION:
            base, _ = split_dial(message.destination_addr or text, settings.service_codes)
            if not base or base not in settings.service_codes:
                base, _ = split_dial(text, settings.service_codes)
            if opened is None or opened.answered or opened.dial != text:
                # A new dialogue (a number the centre used before gets a new session id);
                # the same opening sent again (its resp was lost) keeps its id.
                opened = _Open(f"{dialogue.number}.{secrets.token_hex(4)}", base, text)
            self._remember(key, opened)
            ref = opened.ref
        else:
            if opened is None:
                # Opened before this process started: a session id of its own, which the
                # hop takes for a new session (home, or the offer to resume).
                base = split_dial(message.destination_addr, settings.service_codes)[0]
                opened = _Open(str(dialogue.number), base or settings.service_code, "")
                self._remember(key, opened)
            ref = opened.ref
        if op in ENDINGS or dialogue.ends:
            self._dialogues.pop(key, None)
            status = ENDINGS.get(op, "released")
            return SessionEnd(SMPP_CHANNEL, ref, msisdn, opened.code, status=status), dialogue
        opened.answered = opened.answered or op != PSSR_INDICATION
        sequence = None if dialogue.sequence is None else dialogue.sequence // 2 + 1
        inbound = latest_hop(
            SMPP_CHANNEL,
            ref,
            msisdn,
            opened.code,
            text,
            new_session=op == PSSR_INDICATION,
            sequence=sequence,
        )
        return inbound, dialogue

    def _remember(self, key: tuple[str, int], opened: _Open) -> None:
        self._dialogues[key] = opened
        self._dialogues.move_to_end(key)
        while len(self._dialogues) > MAX_DIALOGUES:
            self._dialogues.popitem(last=False)

    # --- what goes out --------------------------------------------------------------------

    async def _run(self, hop: Inbound | SessionEnd, dialogue: Dialogue, code: str) -> None:
        reply = await answer_hop(self.app, SMPP_CHANNEL, hop, self.outages)
        if reply is None:
            return  # an ending, recorded
        if reply.end:
            self._dialogues.pop((hop.msisdn, dialogue.number), None)
        await self.send(hop.msisdn, dialogue, reply, code)

    async def send(self, msisdn: str, dialogue: Dialogue, reply: Reply, code: str) -> None:
        """Send ``reply`` on ``dialogue``: a USSR request, or a PSSR response that ends it."""
        binding = self._binding
        if binding is None:
            return
        command, body = self.render(msisdn, dialogue, reply, code)
        try:
            response = await binding.submit(command, body, SEND_TIMEOUT)
        except (SmppError, TimeoutError) as error:
            log.warning("smpp: a screen for %s was not sent: %s", mask(msisdn), error or "timeout")
            return
        if response.status != ESME_ROK:
            # Most often the centre gave up on the dialogue (the subscriber hung up, or its
            # timer ran out): it says so with an ending of its own.
            log.info(
                "smpp: the USSD centre refused a screen for %s: %s",
                mask(msisdn),
                status_name(response.status),
            )

    def render(self, msisdn: str, dialogue: Dialogue, reply: Reply, code: str) -> tuple[int, bytes]:
        """The command and body that carry ``reply`` in this channel's profile."""
        op = PSSR_RESPONSE if reply.end else USSR_REQUEST
        data_coding, octets = encode_screen(reply.text)
        tlvs = tlv(TLV_USSD_SERVICE_OP, bytes([op])) + dialogue.tlv(self.tag, end=reply.end)
        source = (0, 0, code if code.isascii() and "\x00" not in code else "")
        destination = msisdn.removeprefix("+")
        assert DIGITS.fullmatch(destination)
        if self.profile == "data_sm":
            body = data_sm_body(
                source=source,
                destination=destination,
                data_coding=data_coding,
                tlvs=tlv(TLV_MESSAGE_PAYLOAD, octets) + tlvs,
                service_type="USSD",
            )
            return DATA_SM, body
        short_message, payload = (octets, b"") if len(octets) <= 254 else (b"", octets)
        body = submit_sm_body(
            source=source,
            destination=destination,
            data_coding=data_coding,
            short_message=short_message,
            registered_delivery=0,
            service_type="USSD",
            tlvs=(tlv(TLV_MESSAGE_PAYLOAD, payload) if payload else b"") + tlvs,
        )
        return SUBMIT_SM, body


@dataclass(slots=True)
class _Open:
    """A dialogue the centre opened: the gateway's session id for it, its code and dial."""

    ref: str
    code: str
    dial: str
    answered: bool = False  # an answer came: a PSSR indication now opens a new dialogue


# The app's channel, named here rather than in gateway/keys.py: this module runs hops through
# gateway.callbacks, which reads keys, so keys may not import it back.
USSD_SMPP = web.AppKey("ussd_smpp", UssdOverSmpp)
