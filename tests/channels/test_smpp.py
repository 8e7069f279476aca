"""The smpp channel through the same standard cases as every HTTP adapter, in both profiles.

An HTTP adapter's case is a request; here it is the PDU a USSD centre sends (deliver_sm or
data_sm, encoded to bytes and decoded as the bind reads it), what the channel makes of it,
and for the final screen the exact PDU that goes back. Cases an SMPP wire cannot produce are
``NotApplicable`` with the reason, as in ``harness.py``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pytest
from aiohttp import web

from gateway.messages import BadRequest, Inbound, Reply, SessionEnd
from gateway.smpp.codec import (
    DATA_SM,
    SUBMIT_SM,
    TLV_ITS_SESSION_INFO,
    TLV_MESSAGE_PAYLOAD,
    TLV_USER_MESSAGE_REFERENCE,
    TLV_USSD_SERVICE_OP,
    data_sm_body,
    decode_data_sm,
    decode_deliver_sm,
    submit_sm_body,
    tlv,
)
from gateway.smpp.ussd import Dialogue, UssdOverSmpp
from tests.channels.harness import DIGITS, LABELS, MSISDN, SETTINGS, NotApplicable

TOO_LONG_NUMBER = "4930123456789012"
PROFILES = {"deliver_sm": "user_message_reference", "data_sm": "its_session_info"}
NO_HTTP = "a bind has no content types, methods or JSON: the PDU's own fields say it all"


@dataclass(frozen=True)
class Mo:
    """One message from the USSD centre."""

    op: int | None  # ussd_service_op; None: the TLV left out
    text: str = ""
    source: str = DIGITS
    number: int | None = 7  # the dialogue's; None: its TLV left out
    unit: int = 0  # its_session_info's dialogue unit
    end: bool = False  # its_session_info's end flag
    data_coding: int = 0x0F  # USSD's GSM-7 (an octet a septet: 0x00 is "@"), or 0x08 UCS-2


@dataclass(frozen=True)
class SmppCase:
    label: str
    mo: Mo
    parsed: Inbound | SessionEnd | str  # str: the refusal's reason, in part
    before: tuple[Mo, ...] = ()


def encode(profile: str, mo: Mo) -> bytes:
    """The PDU body the centre sends, in the profile's command."""
    tlvs = b"" if mo.op is None else tlv(TLV_USSD_SERVICE_OP, bytes([mo.op]))
    if mo.number is not None:
        if PROFILES[profile] == "user_message_reference":
            tlvs += tlv(TLV_USER_MESSAGE_REFERENCE, mo.number.to_bytes(2, "big"))
        else:
            tlvs += tlv(TLV_ITS_SESSION_INFO, bytes([mo.number, mo.unit << 1 | mo.end]))
    data = mo.text.encode("utf-16-be" if mo.data_coding == 0x08 else "gsm03.38")
    source = (1, 1, mo.source)
    if profile == "data_sm":
        return data_sm_body(
            source=source,
            destination="*123#",
            data_coding=mo.data_coding,
            tlvs=tlv(TLV_MESSAGE_PAYLOAD, data) + tlvs,
            service_type="USSD",
        )
    return submit_sm_body(  # a deliver_sm is laid out as a submit_sm
        source=source,
        destination="*123#",
        data_coding=mo.data_coding,
        short_message=data,
        registered_delivery=0,
        service_type="USSD",
        tlvs=tlvs,
    )


def channel(profile: str) -> UssdOverSmpp:
    settings = dataclasses.replace(
        SETTINGS,
        ussd_smpp_host="127.0.0.1",
        ussd_smpp_system_id="okryu",
        ussd_smpp_profile=profile,
        ussd_smpp_dialogue=PROFILES[profile],
    )
    return UssdOverSmpp(web.Application(), settings)


def parse(smpp: UssdOverSmpp, profile: str, mo: Mo) -> Inbound | SessionEnd | str:
    body = encode(profile, mo)
    message = decode_data_sm(body) if profile == "data_sm" else decode_deliver_sm(body)
    try:
        hop = smpp.parse(message)
    except BadRequest as error:
        return error.reason
    return "no dialogue TLV" if hop is None else hop[0]


def hop(inputs: tuple[str, ...], *, new: bool, sequence: int | None = None) -> Inbound:
    return Inbound("smpp", "", MSISDN, "*123#", inputs, "latest", new, sequence)


DIAL, ANSWER = 1, 18

TABLE = (
    SmppCase("new session", Mo(DIAL, "*123#"), hop((), new=True)),
    SmppCase("continue", Mo(ANSWER, "1", unit=2), hop(("1",), new=False), (Mo(DIAL, "*123#"),)),
    SmppCase("shortcut dial", Mo(DIAL, "*123*1*2#"), hop(("1", "2"), new=True)),
    SmppCase(
        "user ends",
        Mo(129, unit=2),
        SessionEnd("smpp", "", MSISDN, "*123#", "released"),
        (Mo(DIAL, "*123#"),),
    ),
    SmppCase(
        "network timeout notice",
        Mo(65, unit=2, end=True),
        SessionEnd("smpp", "", MSISDN, "*123#", "abandoned"),
        (Mo(DIAL, "*123#"),),
    ),
    SmppCase("missing field", Mo(DIAL, "*123#", number=None), "no dialogue TLV"),
    SmppCase("bad phone number", Mo(DIAL, "*123#", source="12"), "not a possible number"),
    SmppCase("control byte in an id", Mo(DIAL, "*123#", source="85019\x0112345678"), "phone"),
    SmppCase("phone number too long", Mo(DIAL, "*123#", source=TOO_LONG_NUMBER), "E.164"),
    SmppCase(
        "control byte in the input",
        Mo(ANSWER, "1\x00", unit=2, data_coding=0x08),
        hop(("1\ufffd",), new=False),
        (Mo(DIAL, "*123#"),),
    ),
)
NOT_APPLICABLE = (
    NotApplicable("final screen rendering", "run by test_smpp_final_screen_rendering"),
    NotApplicable("wrong content type", NO_HTTP),
    NotApplicable("wrong method", NO_HTTP),
    NotApplicable("nested too deeply", NO_HTTP),
    NotApplicable("session id too long", "a dialogue is named by a 16- or 8-bit number"),
)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("case", TABLE, ids=[case.label for case in TABLE])
def test_smpp_case(profile: str, case: SmppCase) -> None:
    smpp = channel(profile)
    for earlier in case.before:
        parse(smpp, profile, earlier)
    parsed = parse(smpp, profile, case.mo)
    if isinstance(case.parsed, str):
        assert isinstance(parsed, str) and case.parsed in parsed, parsed
        return
    assert not isinstance(parsed, str), parsed
    assert re.fullmatch(r"7(\.[0-9a-f]{8})?", parsed.session_ref), parsed.session_ref
    expected = case.parsed
    if isinstance(expected, Inbound) and PROFILES[profile] == "its_session_info":
        expected = dataclasses.replace(expected, sequence=case.mo.unit // 2 + 1)
    assert dataclasses.replace(parsed, session_ref="") == expected


def test_smpp_table_names_every_standard_case() -> None:
    named = {case.label for case in (*TABLE, *NOT_APPLICABLE)}
    assert sorted(set(LABELS) - named) == []


def test_smpp_a_dialogue_keeps_its_session_id_and_a_reused_number_gets_a_new_one() -> None:
    smpp = channel("deliver_sm")
    first = parse(smpp, "deliver_sm", Mo(DIAL, "*123#"))
    again = parse(smpp, "deliver_sm", Mo(DIAL, "*123#"))  # the resp was lost: sent again
    answer = parse(smpp, "deliver_sm", Mo(ANSWER, "1"))
    reused = parse(smpp, "deliver_sm", Mo(DIAL, "*123#"))  # a new dialogue, the same number
    refs = [hop.session_ref for hop in (first, again, answer, reused) if not isinstance(hop, str)]
    assert len(refs) == 4 and refs[0] == refs[1] == refs[2] != refs[3]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("end", [False, True])
def test_smpp_final_screen_rendering(profile: str, end: bool) -> None:
    smpp = channel(profile)
    dialogue = Dialogue(7, sequence=4 if PROFILES[profile] == "its_session_info" else None)
    command, body = smpp.render(MSISDN, dialogue, Reply("Thank you\n조선말", end), "*123#")
    message = decode_data_sm(body) if command == DATA_SM else decode_deliver_sm(body)
    assert command == (DATA_SM if profile == "data_sm" else SUBMIT_SM)
    assert (message.service_type, message.source_addr) == ("USSD", "*123#")
    assert message.destination_addr == DIGITS and message.data_coding == 0x08
    assert message.text_octets.decode("utf-16-be") == "Thank you\n조선말"
    assert message.tlvs[TLV_USSD_SERVICE_OP] == bytes([17 if end else 2])
    if PROFILES[profile] == "user_message_reference":
        assert message.tlvs[TLV_USER_MESSAGE_REFERENCE] == b"\x00\x07"
    else:  # the next dialogue unit, the end flag set on the last screen
        assert message.tlvs[TLV_ITS_SESSION_INFO] == bytes([7, 5 << 1 | end])
