from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from simulators.phone import Display, Phone, PhoneError, draw_screen, wrap
from tests.simulators.conftest import MENU, EchoState

MSISDN = "+254711000111"


def url(server: TestServer, path: str = "/ussd/africastalking") -> str:
    return str(server.make_url(path))


async def test_phone_dial_posts_at_fields_with_empty_text(
    echo_server: TestServer, echo_state: EchoState
) -> None:
    async with Phone(url(echo_server), MSISDN) as phone:
        await phone.dial("*123#")
    [form] = echo_state.requests
    assert form["sessionId"].startswith("ATUid_")
    assert {k: v for k, v in form.items() if k != "sessionId"} == {
        "serviceCode": "*123#",
        "phoneNumber": MSISDN,
        "networkCode": "99999",
        "text": "",
    }


async def test_phone_screen_strips_prefix_and_keeps_raw(echo_server: TestServer) -> None:
    async with Phone(url(echo_server), MSISDN) as phone:
        screen = await phone.dial("*123#")
    assert screen == Display(text="Echo service\n1. Echo\n2. Bye", end=False, status=200, raw=MENU)
    assert screen.ok


async def test_phone_send_accumulates_text_in_one_session(
    echo_server: TestServer, echo_state: EchoState
) -> None:
    async with Phone(url(echo_server), MSISDN) as phone:
        await phone.dial("*123#")
        await phone.send("1")
        screen = await phone.send("hello")
    assert [r["text"] for r in echo_state.requests] == ["", "1", "1*hello"]
    assert len({r["sessionId"] for r in echo_state.requests}) == 1
    assert screen.end and screen.text == "You said hello"


async def test_phone_dial_again_starts_a_new_session(
    echo_server: TestServer, echo_state: EchoState
) -> None:
    async with Phone(url(echo_server), MSISDN) as phone:
        await phone.dial("*123#")
        await phone.send("1")
        await phone.dial("*123*2#")
    first, _, third = echo_state.requests
    assert third["sessionId"] != first["sessionId"]
    assert (third["serviceCode"], third["text"]) == ("*123*2#", "")


async def test_phone_send_after_end_raises_phone_error(echo_server: TestServer) -> None:
    async with Phone(url(echo_server), MSISDN) as phone:
        await phone.dial("*123#")
        await phone.send("2")
        with pytest.raises(PhoneError, match="ended"):
            await phone.send("1")


async def test_phone_send_before_dial_raises_phone_error(echo_server: TestServer) -> None:
    async with Phone(url(echo_server), MSISDN) as phone:
        with pytest.raises(PhoneError, match="dial"):
            await phone.send("1")


async def test_phone_hang_up_ends_the_session(echo_server: TestServer) -> None:
    async with Phone(url(echo_server), MSISDN) as phone:
        await phone.dial("*123#")
        phone.hang_up()
        assert not phone.in_session
        with pytest.raises(PhoneError):
            await phone.send("1")


async def test_phone_http_error_ends_session_with_status(echo_server: TestServer) -> None:
    async with Phone(url(echo_server, "/broken"), MSISDN) as phone:
        screen = await phone.dial("*123#")
        assert not phone.in_session
    assert (screen.end, screen.status, screen.ok) == (True, 500, False)


async def test_phone_body_without_prefix_ends_session_not_ok(echo_server: TestServer) -> None:
    async with Phone(url(echo_server, "/garbled"), MSISDN) as phone:
        screen = await phone.dial("*123#")
    assert (screen.end, screen.status, screen.ok) == (True, 200, False)
    assert screen.text == "hello without a prefix"


async def test_phone_unreachable_gateway_raises_phone_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with Phone(f"http://127.0.0.1:{port}/ussd/africastalking", MSISDN) as phone:
        with pytest.raises(PhoneError, match="cannot reach"):
            await phone.dial("*123#")


async def test_phone_inbox_returns_only_new_messages(
    echo_server: TestServer, echo_state: EchoState
) -> None:
    echo_state.add_sms(MSISDN, "first")
    echo_state.add_sms("+254722000222", "someone else's")
    async with Phone(url(echo_server), MSISDN) as phone:
        assert [m.body for m in await phone.inbox()] == ["first"]
        assert await phone.inbox() == []
        echo_state.add_sms(MSISDN, "second")
        [second] = await phone.inbox()
        assert (second.id, second.body) == (3, "second")
        assert [m.body for m in await phone.inbox(after=0)] == ["first", "second"]


async def test_phone_inbox_sends_the_plus_of_the_number(
    echo_server: TestServer, echo_state: EchoState
) -> None:
    async with Phone(url(echo_server), MSISDN) as phone:
        await phone.inbox()
    assert echo_state.inbox_queries == [{"to": MSISDN, "after": "0"}]


async def test_phone_inbox_missing_raises_phone_error(echo_server: TestServer) -> None:
    inbox = url(echo_server, "/no/such/inbox")
    async with Phone(url(echo_server), MSISDN, inbox_url=inbox) as phone:
        with pytest.raises(PhoneError, match="HTTP 404"):
            await phone.inbox()


async def test_phone_close_leaves_a_callers_session_open(echo_server: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with Phone(url(echo_server), MSISDN, session=session) as phone:
            await phone.dial("*123#")
        assert not session.closed


def test_phone_unknown_dialect_raises_phone_error() -> None:
    with pytest.raises(PhoneError, match="unknown dialect"):
        Phone("http://127.0.0.1/ussd", MSISDN, dialect="smoke-signals")


def test_draw_screen_wraps_inside_a_box() -> None:
    screen = Display(
        "Welcome to the Okryu shop of fine goods\n1. Shop", end=False, status=200, raw="CON x"
    )
    assert draw_screen(screen, width=20) == "\n".join(
        [
            "+----------------------+",
            "| Welcome to the Okryu |",
            "| shop of fine goods   |",
            "| 1. Shop              |",
            "|                      |",
            "| [Send]      [Cancel] |",
            "+----------------------+",
        ]
    )


def test_draw_screen_marks_final_screen_with_ok() -> None:
    drawn = draw_screen(Display("Bye", end=True, status=200, raw="END Bye"), width=10)
    assert drawn.splitlines()[-2] == "|       [OK] |"


def test_wrap_counts_hangul_as_two_columns() -> None:
    assert wrap("주문 완료 감사합니다", 10) == ["주문 완료", "감사합니다"]


def test_wrap_cuts_a_word_longer_than_a_row() -> None:
    assert wrap("ABCDEFGHIJ", 4) == ["ABCD", "EFGH", "IJ"]
