"""Every channel adapter through the one harness: the same cases, each aggregator's wire."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.channels import CHANNELS, Channel, load_channels
from gateway.messages import Inbound, SessionEnd
from gateway.settings import SettingsError
from simulators.phone import DIALECTS, Dialect, Phone, at_compatible
from tests.channels import harness
from tests.channels.harness import (
    DIGITS,
    DROP,
    MSISDN,
    Call,
    Case,
    ClientFactory,
    Echo,
    NotApplicable,
    ServerFactory,
    Table,
    get,
    post_form,
    post_json,
)

FIXTURES = Path(__file__).parent / "fixtures"
RESELLERS = load_channels(str(FIXTURES / "atcompat" / "channels.toml"))
NOT_SENT = "the aggregator sends no notice when a session ends (PROTOCOLS.md §2)"
NO_BODY = "a GET carries no body"
METHOD_NOT_ALLOWED: dict[str, Any] = {
    "status": 405,
    "content_type": "text/plain",
    "body": "405: Method Not Allowed",
}


def refused(reason: str, status: int = 400) -> dict[str, Any]:
    """What a case that ``parse`` refuses expects: the status and the reason as text."""
    return {"parsed": None, "status": status, "content_type": "text/plain", "body": reason}


def plain(body: str) -> dict[str, Any]:
    return {"content_type": "text/plain", "body": body}


TOO_LONG_NUMBER = "4930123456789012"  # "possible" to phonenumbers, past E.164's 15 digits
NESTED = Call(raw=b"[" * 200_000)
NOT_JSON = "a form or a query string has no nesting"


def hostile(
    call: Callable[..., Call],
    *,
    session: str,
    phone: str,
    typed: tuple[str, str],
    parsed: Inbound,
    answer: Callable[[str], dict[str, Any]],
    json_body: bool,
) -> list[Case | NotApplicable]:
    """The hostile cases every table runs. ``call(**changes)`` makes a continuing hop;
    ``typed`` is (field, value) carrying "a\x00b" as typed input, read as ``parsed``."""
    field, value = typed
    echo = f"Echo: {parsed.inputs!r}"
    return [
        Case(
            "session id too long",
            call(**{session: "s" * 101}),
            **refused(f"field {session} is too long (at most 100 characters)"),
        ),
        Case(
            "control byte in an id",
            call(**{session: "s\x00"}),
            **refused(f"field {session} holds a control character or invalid text"),
        ),
        Case(
            "phone number too long",
            call(**{phone: TOO_LONG_NUMBER}),
            **refused("phone number is longer than E.164 allows (15 digits)"),
        ),
        Case("control byte in the input", call(**{field: value}), parsed, **answer(echo)),
        Case("nested too deeply", NESTED, **refused("the body is nested too deeply"))
        if json_body
        else NotApplicable("nested too deeply", NOT_JSON),
    ]


# --- Africa's Talking: form POST, the whole path in text, CON/END -------------------------------

AT_HOP = {
    "sessionId": "ATUid_1",
    "serviceCode": "*123#",
    "phoneNumber": MSISDN,
    "networkCode": "99999",
    "text": "",
}
AT = Inbound("africastalking", "ATUid_1", MSISDN, "*123#", (), new_session=True, network="99999")

AFRICASTALKING: Table = [
    Case("new session", post_form(AT_HOP), AT, **plain("CON Echo: ()")),
    Case(
        "continue",
        post_form(AT_HOP, text="1*2"),
        dataclasses.replace(AT, inputs=("1", "2"), new_session=False),
        **plain("CON Echo: ('1', '2')"),
    ),
    Case(
        "shortcut dial",
        post_form(AT_HOP, serviceCode="*123*1*2#", text="3"),
        dataclasses.replace(AT, inputs=("1", "2", "3"), new_session=False),
        **plain("CON Echo: ('1', '2', '3')"),
    ),
    NotApplicable("user ends", "AT reports ends on its separate notification URL (§1.4)"),
    NotApplicable("network timeout notice", "AT reports ends on its notification URL (§1.4)"),
    Case(
        "missing field", post_form(AT_HOP, phoneNumber=DROP), **refused("missing field phoneNumber")
    ),
    Case(
        "bad phone number",
        post_form(AT_HOP, phoneNumber="12"),
        **refused("phone number is not a possible number"),
    ),
    Case(
        "final screen rendering",
        post_form(AT_HOP, text="1"),
        dataclasses.replace(AT, inputs=("1",), new_session=False),
        end=True,
        **plain("END Echo: ('1',)"),
    ),
    Case(
        "wrong content type",
        post_json(AT_HOP),
        **refused("expected a form-encoded body (application/x-www-form-urlencoded)", 415),
    ),
    Case("wrong method", get(AT_HOP), None, **METHOD_NOT_ALLOWED),
    Case("blank session id", post_form(AT_HOP, sessionId=" "), **refused("sessionId is empty")),
    *hostile(
        lambda **changes: post_form(AT_HOP, **{"text": "1", **changes}),
        session="sessionId",
        phone="phoneNumber",
        typed=("text", "1*a\x00b"),
        parsed=dataclasses.replace(AT, inputs=("1", "a\ufffdb"), new_session=False),
        answer=lambda text: plain(f"CON {text}"),
        json_body=False,
    ),
]

# --- AT-compatible reseller: GET under its own names (fixtures/atcompat/channels.toml) -------

CROSSGATE_HOP = {
    "session_id": "cg-1",
    "service_code": "*123#",
    "msisdn": DIGITS,
    "ussd_string": "",
}
CROSSGATE = Inbound("crossgate", "cg-1", MSISDN, "*123#", (), new_session=True)

ATCOMPAT: Table = [
    Case("new session", get(CROSSGATE_HOP), CROSSGATE, **plain("CON Echo: ()")),
    Case(
        "continue",
        get(CROSSGATE_HOP, ussd_string="1*2"),
        dataclasses.replace(CROSSGATE, inputs=("1", "2"), new_session=False),
        **plain("CON Echo: ('1', '2')"),
    ),
    Case(
        "shortcut dial",
        get(CROSSGATE_HOP, service_code="*123*1*2#"),
        dataclasses.replace(CROSSGATE, inputs=("1", "2")),
        **plain("CON Echo: ('1', '2')"),
    ),
    NotApplicable("user ends", "AT's contract ends sessions by a separate notification (§1.4)"),
    NotApplicable("network timeout notice", "AT's contract has no timeout notice on the hop URL"),
    Case(
        "missing field",
        get(CROSSGATE_HOP, ussd_string=DROP),
        **refused("missing field ussd_string"),
    ),
    Case(
        "bad phone number",
        get(CROSSGATE_HOP, msisdn="12"),
        **refused("phone number is not a possible number"),
    ),
    Case(
        "final screen rendering",
        get(CROSSGATE_HOP, ussd_string="1"),
        dataclasses.replace(CROSSGATE, inputs=("1",), new_session=False),
        end=True,
        **plain("END Echo: ('1',)"),
    ),
    NotApplicable("wrong content type", NO_BODY),
    Case("wrong method", post_form(CROSSGATE_HOP), None, **METHOD_NOT_ALLOWED),
    *hostile(
        lambda **changes: get(CROSSGATE_HOP, **{"ussd_string": "1", **changes}),
        session="session_id",
        phone="msisdn",
        typed=("ussd_string", "a\x7fb"),
        parsed=dataclasses.replace(CROSSGATE, inputs=("a\ufffdb",), new_session=False),
        answer=lambda text: plain(f"CON {text}"),
        json_body=False,
    ),
]

# --- Hubtel: JSON POST, the latest answer, Type says what happened ---------------------------

HUBTEL_HOP = {
    "SessionId": "hub-1",
    "ServiceCode": "123",
    "Type": "Initiation",
    "Message": "*123#",
    "Operator": "mtn",
    "Platform": "USSD",
    "Mobile": DIGITS,
    "Sequence": 1,
}
HUBTEL = Inbound(
    "hubtel", "hub-1", MSISDN, "*123#", (), "latest", new_session=True, sequence=1, network="mtn"
)


def hubtel_screen(text: str, end: bool = False) -> dict[str, object]:
    return {
        "Type": "Release" if end else "Response",
        "Message": text,
        "Label": text,
        "DataType": "display" if end else "input",
        "FieldType": "text",
    }


HUBTEL_TABLE: Table = [
    Case("new session", post_json(HUBTEL_HOP), HUBTEL, body=hubtel_screen("Echo: ()")),
    Case(
        "continue",
        post_json(HUBTEL_HOP, Type="Response", Message="2", Sequence=2),
        dataclasses.replace(HUBTEL, inputs=("2",), new_session=False, sequence=2),
        body=hubtel_screen("Echo: ('2',)"),
    ),
    Case(
        "shortcut dial",
        post_json(HUBTEL_HOP, Message="*123*1*2#"),
        dataclasses.replace(HUBTEL, inputs=("1", "2")),
        body=hubtel_screen("Echo: ('1', '2')"),
    ),
    Case(
        "user ends",
        post_json(HUBTEL_HOP, Type="Release", Message="", Sequence=3),
        SessionEnd("hubtel", "hub-1", MSISDN, "*123#", status="released"),
        body={"Type": "Release", "Message": ""},
    ),
    Case(
        "network timeout notice",
        post_json(HUBTEL_HOP, Type="timeout", Message="", Sequence=3),  # the docs' lower case
        SessionEnd("hubtel", "hub-1", MSISDN, "*123#", status="abandoned"),
        body={"Type": "Release", "Message": ""},
    ),
    Case("missing field", post_json(HUBTEL_HOP, Mobile=DROP), **refused("missing field Mobile")),
    Case(
        "bad phone number",
        post_json(HUBTEL_HOP, Mobile="12"),
        **refused("phone number is not a possible number"),
    ),
    Case(
        "final screen rendering",
        post_json(HUBTEL_HOP, Type="Response", Message="2", Sequence=2),
        dataclasses.replace(HUBTEL, inputs=("2",), new_session=False, sequence=2),
        end=True,
        body=hubtel_screen("Echo: ('2',)", end=True),
    ),
    Case(
        "wrong content type",
        post_form(HUBTEL_HOP, Sequence="1"),
        **refused("expected a JSON body (application/json)", 415),
    ),
    Case("wrong method", get(HUBTEL_HOP, Sequence="1"), None, **METHOD_NOT_ALLOWED),
    Case(
        "opening message is not a dial string",
        post_json(HUBTEL_HOP, Message="", Sequence=DROP),
        dataclasses.replace(HUBTEL, sequence=None),
        body=hubtel_screen("Echo: ()"),
    ),
    Case(
        "type not for USSD",
        post_json(HUBTEL_HOP, Type="AddToCart"),
        **refused("field Type must be Initiation, Response, Release or Timeout, not 'AddToCart'"),
    ),
    Case(
        "sequence not a number",
        post_json(HUBTEL_HOP, Sequence="first"),
        **refused("field Sequence must be a whole number (0 to 2147483647)"),
    ),
    Case(
        "sequence in other digits",
        post_json(HUBTEL_HOP, Type="Response", Message="2", Sequence="²"),
        **refused("field Sequence must be a whole number (0 to 2147483647)"),
    ),
    *hostile(
        lambda **changes: post_json(
            HUBTEL_HOP, **{"Type": "Response", "Message": "2", "Sequence": 2, **changes}
        ),
        session="SessionId",
        phone="Mobile",
        typed=("Message", "a\ud800b"),  # a lone surrogate, as JSON's \ud800 escape
        parsed=dataclasses.replace(HUBTEL, inputs=("a\ufffdb",), new_session=False, sequence=2),
        answer=lambda text: {"body": hubtel_screen(text)},
        json_body=True,
    ),
]

# --- Arkesel: JSON POST, the latest answer, ids echoed ----------------------------------------

ARKESEL_HOP = {
    "sessionID": "ark-1",
    "userID": "OKRYU",
    "newSession": True,
    "msisdn": DIGITS,
    "userData": "*123#",
    "network": "MTN",
}
ARKESEL = Inbound(
    "arkesel", "ark-1", MSISDN, "*123#", (), "latest", new_session=True, network="MTN"
)


def arkesel_screen(text: str, end: bool = False) -> dict[str, object]:
    ids = {"sessionID": "ark-1", "userID": "OKRYU", "msisdn": DIGITS}
    return {**ids, "message": text, "continueSession": not end}


ARKESEL_TABLE: Table = [
    Case("new session", post_json(ARKESEL_HOP), ARKESEL, body=arkesel_screen("Echo: ()")),
    Case(
        "continue",
        post_json(ARKESEL_HOP, newSession=False, userData="2"),
        dataclasses.replace(ARKESEL, inputs=("2",), new_session=False),
        body=arkesel_screen("Echo: ('2',)"),
    ),
    Case(
        "shortcut dial",
        post_json(ARKESEL_HOP, userData="*123*1*2#"),
        dataclasses.replace(ARKESEL, inputs=("1", "2")),
        body=arkesel_screen("Echo: ('1', '2')"),
    ),
    NotApplicable("user ends", NOT_SENT),
    NotApplicable("network timeout notice", NOT_SENT),
    Case(
        "missing field", post_json(ARKESEL_HOP, userData=DROP), **refused("missing field userData")
    ),
    Case(
        "bad phone number",
        post_json(ARKESEL_HOP, msisdn="12"),
        **refused("phone number is not a possible number"),
    ),
    Case(
        "final screen rendering",
        post_json(ARKESEL_HOP, newSession=False, userData="2"),
        dataclasses.replace(ARKESEL, inputs=("2",), new_session=False),
        end=True,
        body=arkesel_screen("Echo: ('2',)", end=True),
    ),
    Case(
        "wrong content type",
        post_form(ARKESEL_HOP, newSession="true"),
        **refused("expected a JSON body (application/json)", 415),
    ),
    Case("wrong method", get(ARKESEL_HOP, newSession="true"), None, **METHOD_NOT_ALLOWED),
    Case(
        "session flag not a boolean",
        post_json(ARKESEL_HOP, newSession="yes"),
        **refused("field newSession must be true or false"),
    ),
    *hostile(
        lambda **changes: post_json(
            ARKESEL_HOP, **{"newSession": False, "userData": "2", **changes}
        ),
        session="sessionID",
        phone="msisdn",
        typed=("userData", "a\x00b"),
        parsed=dataclasses.replace(ARKESEL, inputs=("a\ufffdb",), new_session=False),
        answer=lambda text: {"body": arkesel_screen(text)},
        json_body=True,
    ),
]

# --- Nalo: JSON POST, the latest answer, USERID and MSISDN echoed -----------------------------

NALO_HOP = {
    "USERID": "NALOTest",
    "MSISDN": DIGITS,
    "USERDATA": "*123#",
    "MSGTYPE": True,
    "NETWORK": "MTN",
    "SESSIONID": "16590115252429751",
}
NALO = Inbound(
    "nalo", "16590115252429751", MSISDN, "*123#", (), "latest", new_session=True, network="MTN"
)


def nalo_screen(text: str, end: bool = False) -> dict[str, object]:
    return {"USERID": "NALOTest", "MSISDN": DIGITS, "MSG": text, "MSGTYPE": not end}


NALO_TABLE: Table = [
    Case("new session", post_json(NALO_HOP), NALO, body=nalo_screen("Echo: ()")),
    Case(
        "continue",
        post_json(NALO_HOP, MSGTYPE=False, USERDATA="2"),
        dataclasses.replace(NALO, inputs=("2",), new_session=False),
        body=nalo_screen("Echo: ('2',)"),
    ),
    Case(
        "shortcut dial",
        post_json(NALO_HOP, USERDATA="*123*1*2#"),
        dataclasses.replace(NALO, inputs=("1", "2")),
        body=nalo_screen("Echo: ('1', '2')"),
    ),
    NotApplicable("user ends", NOT_SENT),
    NotApplicable("network timeout notice", NOT_SENT),
    Case(
        "missing field", post_json(NALO_HOP, SESSIONID=DROP), **refused("missing field SESSIONID")
    ),
    Case(
        "bad phone number",
        post_json(NALO_HOP, MSISDN="12"),
        **refused("phone number is not a possible number"),
    ),
    Case(
        "final screen rendering",
        post_json(NALO_HOP, MSGTYPE=False, USERDATA="2"),
        dataclasses.replace(NALO, inputs=("2",), new_session=False),
        end=True,
        body=nalo_screen("Echo: ('2',)", end=True),
    ),
    Case(
        "wrong content type",
        post_form(NALO_HOP, MSGTYPE="true"),
        **refused("expected a JSON body (application/json)", 415),
    ),
    Case("wrong method", get(NALO_HOP, MSGTYPE="true"), None, **METHOD_NOT_ALLOWED),
    Case(
        "session flag as text",
        post_json(NALO_HOP, MSGTYPE="false", USERDATA="2"),
        dataclasses.replace(NALO, inputs=("2",), new_session=False),
        body=nalo_screen("Echo: ('2',)"),
    ),
    Case(
        "numbers sent as JSON numbers",
        post_json(NALO_HOP, MSISDN=int(DIGITS), SESSIONID=16590115252429751),
        NALO,
        body={**nalo_screen("Echo: ()"), "MSISDN": int(DIGITS)},  # echoed as it came
    ),
    *hostile(
        lambda **changes: post_json(NALO_HOP, **{"MSGTYPE": False, "USERDATA": "2", **changes}),
        session="SESSIONID",
        phone="MSISDN",
        typed=("USERDATA", "a\x1bb"),
        parsed=dataclasses.replace(NALO, inputs=("a\ufffdb",), new_session=False),
        answer=lambda text: {"body": nalo_screen(text)},
        json_body=True,
    ),
]

# --- HollaTags: GET, the latest answer, JSON reply with session_type --------------------------

HOLLATAGS_HOP = {
    "session_id": "4410021",
    "session_operation": "begin",
    "session_msg": "*123#",
    "session_msisdn": DIGITS,
    "session_from": "*123#",
    "session_type": "1",
    "session_mno": "MTN",
}
HOLLATAGS = Inbound(
    "hollatags", "4410021", MSISDN, "*123#", (), "latest", new_session=True, network="MTN"
)


def hollatags_screen(text: str, end: bool = False) -> dict[str, object]:
    return {
        "session_operation": "end" if end else "continue",
        "session_type": 4 if end else 1,
        "session_id": "4410021",
        "session_msg": text,
    }


HOLLATAGS_TABLE: Table = [
    Case("new session", get(HOLLATAGS_HOP), HOLLATAGS, body=hollatags_screen("Echo: ()")),
    Case(
        "continue",
        get(HOLLATAGS_HOP, session_operation="continue", session_msg="2"),
        dataclasses.replace(HOLLATAGS, inputs=("2",), new_session=False),
        body=hollatags_screen("Echo: ('2',)"),
    ),
    Case(
        "shortcut dial",
        get(HOLLATAGS_HOP, session_msg="*123*1*2#"),
        dataclasses.replace(HOLLATAGS, inputs=("1", "2")),
        body=hollatags_screen("Echo: ('1', '2')"),
    ),
    Case(
        "user ends",
        get(HOLLATAGS_HOP, session_operation="end", session_msg=DROP),
        SessionEnd("hollatags", "4410021", MSISDN, "*123#", status="released"),
        body=hollatags_screen("", end=True),
    ),
    NotApplicable("network timeout notice", "HollaTags sends the same end for every ending"),
    Case(
        "missing field",
        get(HOLLATAGS_HOP, session_msisdn=DROP),
        **refused("missing field session_msisdn"),
    ),
    Case(
        "bad phone number",
        get(HOLLATAGS_HOP, session_msisdn="12"),
        **refused("phone number is not a possible number"),
    ),
    Case(
        "final screen rendering",
        get(HOLLATAGS_HOP, session_operation="continue", session_msg="2"),
        dataclasses.replace(HOLLATAGS, inputs=("2",), new_session=False),
        end=True,
        body=hollatags_screen("Echo: ('2',)", end=True),
    ),
    NotApplicable("wrong content type", NO_BODY),
    Case("wrong method", post_form(HOLLATAGS_HOP), None, **METHOD_NOT_ALLOWED),
    Case(
        "unknown operation",
        get(HOLLATAGS_HOP, session_operation="pause"),
        **refused("field session_operation must be begin, continue or end"),
    ),
    *hostile(
        lambda **changes: get(
            HOLLATAGS_HOP, **{"session_operation": "continue", "session_msg": "2", **changes}
        ),
        session="session_id",
        phone="session_msisdn",
        typed=("session_msg", "a\x00b"),
        parsed=dataclasses.replace(HOLLATAGS, inputs=("a\ufffdb",), new_session=False),
        answer=lambda text: {"body": hollatags_screen(text)},
        json_body=False,
    ),
]

TABLES: dict[str, tuple[Channel, Table]] = {
    "africastalking": (CHANNELS["africastalking"], AFRICASTALKING),
    "atcompat": (RESELLERS["crossgate"], ATCOMPAT),
    "hubtel": (CHANNELS["hubtel"], HUBTEL_TABLE),
    "arkesel": (CHANNELS["arkesel"], ARKESEL_TABLE),
    "nalo": (CHANNELS["nalo"], NALO_TABLE),
    "hollatags": (CHANNELS["hollatags"], HOLLATAGS_TABLE),
}


@pytest.mark.parametrize(("channel", "case"), harness.cases(TABLES))
async def test_channel_case(aiohttp_client: ClientFactory, channel: Channel, case: Case) -> None:
    await harness.run(aiohttp_client, channel, case)


@pytest.mark.parametrize("name", TABLES)
def test_channel_table_names_every_standard_case(name: str) -> None:
    _, table = TABLES[name]
    assert harness.missing_labels(table) == []
    labels = [case.label for case in table]
    assert len(labels) == len(set(labels)), "a label used twice"


def test_channel_registry_serves_every_adapter_at_its_slug() -> None:
    assert set(CHANNELS) == {"africastalking", "hubtel", "arkesel", "nalo", "hollatags"}
    assert all(slug == channel.slug for slug, channel in CHANNELS.items())
    assert set(TABLES) == {*CHANNELS, "atcompat"}


# --- concurrency: one adapter object serves every request -------------------------------------


@pytest.mark.parametrize(
    ("slug", "make_call", "echoed"),
    [
        ("arkesel", lambda i: post_json(ARKESEL_HOP, sessionID=f"ark-{i}"), "sessionID"),
        ("nalo", lambda i: post_json(NALO_HOP, USERID=f"user-{i}"), "USERID"),
        ("hollatags", lambda i: get(HOLLATAGS_HOP, session_id=str(i)), "session_id"),
    ],
    ids=["arkesel", "nalo", "hollatags"],
)
async def test_channel_concurrent_requests_each_get_their_own_ids(
    aiohttp_client: ClientFactory, slug: str, make_call: Any, echoed: str
) -> None:
    channel = CHANNELS[slug]
    client = await aiohttp_client(harness.channel_app(channel, Echo()))
    calls: list[Call] = [make_call(i) for i in range(20)]
    answers = await asyncio.gather(*(harness.send(client, slug, call) for call in calls))
    sent = [(call.json or call.query or {})[echoed] for call in calls]
    assert [json.loads(body)[echoed] for _, _, body in answers] == sent


# --- the handset simulator speaks each dialect as the adapter reads it ------------------------


@pytest.mark.parametrize(
    ("channel", "dialect"),
    [
        *((CHANNELS[name], DIALECTS[name]) for name in CHANNELS),
        (
            RESELLERS["crossgate"],
            at_compatible(
                "crossgate",
                "GET",
                {
                    "sessionId": "session_id",
                    "phoneNumber": "msisdn",
                    "serviceCode": "service_code",
                    "text": "ussd_string",
                },
            ),
        ),
        (
            RESELLERS["bonga"],
            at_compatible("bonga", fields={"text": "input", "networkCode": "operator"}),
        ),
    ],
    ids=lambda value: getattr(value, "slug", None) or getattr(value, "name", ""),
)
async def test_channel_phone_round_trip_reads_as_the_phone_meant(
    aiohttp_server: ServerFactory, channel: Channel, dialect: Dialect
) -> None:
    echo = Echo()
    server = await aiohttp_server(harness.channel_app(channel, echo))
    async with Phone(
        str(server.make_url(f"/ussd/{channel.slug}")), MSISDN, dialect=dialect
    ) as phone:
        screens = [await phone.dial("*123*1*2#"), await phone.send("3")]
        echo.end = True
        screens.append(await phone.send("4"))
        assert not phone.in_session
    [ref] = {seen.session_ref for seen in echo.seen}
    assert ref
    if channel.slug in ("africastalking", "crossgate", "bonga"):
        meant = [
            Inbound(
                channel.slug, ref, MSISDN, "*123#", ("1", "2"), new_session=True, network="99999"
            ),
            Inbound(channel.slug, ref, MSISDN, "*123#", ("1", "2", "3"), network="99999"),
            Inbound(channel.slug, ref, MSISDN, "*123#", ("1", "2", "3", "4"), network="99999"),
        ]
    else:
        numbered = channel.slug == "hubtel"  # the only one that numbers its hops
        meant = [
            Inbound(
                channel.slug,
                ref,
                MSISDN,
                "*123#",
                inputs,
                "latest",
                new_session=hop == 1,
                sequence=hop if numbered else None,
                network="99999",
            )
            for hop, inputs in enumerate([("1", "2"), ("3",), ("4",)], start=1)
        ]
    assert echo.seen == meant
    assert [(screen.text, screen.end, screen.ok) for screen in screens] == [
        (f"Echo: {seen.inputs!r}", hop == 3, True) for hop, seen in enumerate(meant, start=1)
    ]


@pytest.mark.parametrize("name", ["hubtel", "arkesel", "nalo", "hollatags"])
@pytest.mark.parametrize(
    ("status", "body"),
    [(200, "not JSON"), (200, "[]"), (200, '{"unrelated": 1}'), (502, "Bad Gateway")],
)
def test_channel_phone_ends_on_an_answer_out_of_format(name: str, status: int, body: str) -> None:
    screen = DIALECTS[name].decode(status, body)
    assert (screen.text, screen.end, screen.ok) == (body, True, False)


# --- the channels file -------------------------------------------------------------------------


def test_load_channels_without_a_file_is_the_built_in_registry() -> None:
    assert load_channels(None) == dict(CHANNELS)
    assert load_channels("") == dict(CHANNELS)


def test_load_channels_adds_each_configured_reseller() -> None:
    assert set(RESELLERS) == {*CHANNELS, "crossgate", "bonga"}
    crossgate, bonga = RESELLERS["crossgate"], RESELLERS["bonga"]
    assert (crossgate.slug, crossgate.method, bonga.method) == ("crossgate", "GET", "POST")
    assert vars(crossgate)["fields"] == {
        "sessionId": "session_id",
        "serviceCode": "service_code",
        "phoneNumber": "msisdn",
        "text": "ussd_string",
        "networkCode": "networkCode",
    }


@pytest.mark.parametrize(
    ("toml", "reason"),
    [
        ("[atcompat.x\n", "not valid TOML"),
        ("[resellers.x]\n", "unknown tables ['resellers']; known: atcompat"),
        ("atcompat = 1\n", "atcompat must hold one table per reseller"),
        ("[atcompat]\nx = 1\n", "atcompat.x must be a table"),
        ("[atcompat.hubtel]\n", "[atcompat.hubtel] takes the name of a built-in channel"),
        ("[atcompat.Cross]\n", "[atcompat.Cross]: the name must be lower-case letters"),
        ("[atcompat.x]\nmethod = 'PUT'\n", "[atcompat.x]: method must be GET or POST, not 'PUT'"),
        ("[atcompat.x]\nmethods = 'GET'\n", "[atcompat.x]: unknown keys ['methods']"),
        ("[atcompat.x]\nfields = 'text'\n", "[atcompat.x]: fields must be a table"),
        ("[atcompat.x.fields]\nmsisdn = 'm'\n", "[atcompat.x]: unknown field 'msisdn'"),
        ("[atcompat.x.fields]\ntext = ' '\n", "[atcompat.x]: the name of text must be non-empty"),
        ("[atcompat.x.fields]\ntext = 'sessionId'\n", "[atcompat.x]: two fields share one name"),
    ],
)
def test_load_channels_bad_file_says_what_is_wrong(tmp_path: Path, toml: str, reason: str) -> None:
    path = tmp_path / "channels.toml"
    path.write_text(toml)
    with pytest.raises(SettingsError) as error:
        load_channels(str(path))
    assert str(error.value).startswith(f"OKRYU_CHANNELS_FILE={path}: ")
    assert reason in str(error.value)


def test_load_channels_missing_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(SettingsError, match="^OKRYU_CHANNELS_FILE=.*: cannot read it: "):
        load_channels(str(path))


def test_load_channels_file_not_utf8_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "channels.toml"
    path.write_bytes(b"[atcompat.x]\nmethod = '\xff'\n")
    with pytest.raises(SettingsError) as error:
        load_channels(str(path))
    assert str(error.value) == f"OKRYU_CHANNELS_FILE={path}: not UTF-8 (byte 0xff at offset 23)"
