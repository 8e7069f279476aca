from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp.test_utils import TestServer

from simulators.terminal import run_terminal
from tests.simulators.conftest import EchoState

MSISDN = "+254711000111"


class Transcript:
    """Collects what the terminal writes; lets a test wait until some text has appeared."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self._changed = asyncio.Event()

    def write(self, text: str) -> None:
        self.chunks.append(text)
        self._changed.set()

    @property
    def text(self) -> str:
        return "\n".join(self.chunks)

    async def wait_for(self, needle: str) -> None:
        async with asyncio.timeout(5):
            while needle not in self.text:
                self._changed.clear()
                await self._changed.wait()


async def play(server: TestServer, lines: list[str]) -> str:
    url = str(server.make_url("/ussd/africastalking"))
    transcript = Transcript()
    await run_terminal(url, MSISDN, "*123#", iter(lines), transcript.write, poll_sms=False)
    return transcript.text.replace(url, "URL")


async def test_terminal_plays_a_whole_session(echo_server: TestServer) -> None:
    assert await play(echo_server, ["", "1", "hello", "q", "never read"]) == "\n".join(
        [
            "Okryu handset +254711000111 -> URL",
            "Enter dials *123# (or type a code like *123*1#), then type an answer and press Enter.",
            "c cancels the session, q quits. New SMS appear as they arrive.",
            "+--------------------------+",
            "| Echo service             |",
            "| 1. Echo                  |",
            "| 2. Bye                   |",
            "|                          |",
            "| [Send]          [Cancel] |",
            "+--------------------------+",
            "+--------------------------+",
            "| Say something            |",
            "|                          |",
            "| [Send]          [Cancel] |",
            "+--------------------------+",
            "+--------------------------+",
            "| You said hello           |",
            "|                          |",
            "|                     [OK] |",
            "+--------------------------+",
            "Session ended. Enter dials again, q quits.",
            "[SMS #1 15:00] You said hello",
        ]
    )


async def test_terminal_dials_a_typed_code(echo_server: TestServer, echo_state: EchoState) -> None:
    await play(echo_server, ["*123*2#"])
    assert [(r["serviceCode"], r["text"]) for r in echo_state.requests] == [("*123*2#", "")]


async def test_terminal_cancel_ends_the_session_without_a_request(
    echo_server: TestServer, echo_state: EchoState
) -> None:
    transcript = await play(echo_server, ["", "c", "1"])
    assert "Cancelled. Enter dials again." in transcript
    assert transcript.endswith("No session. Press Enter to dial *123#.")
    assert len(echo_state.requests) == 1


async def test_terminal_answer_without_session_asks_to_dial(
    echo_server: TestServer, echo_state: EchoState
) -> None:
    transcript = await play(echo_server, ["1"])
    assert transcript.endswith("No session. Press Enter to dial *123#.")
    assert echo_state.requests == []


async def test_terminal_reports_gateway_errors_and_keeps_going(echo_server: TestServer) -> None:
    url = str(echo_server.make_url("/broken"))
    transcript = Transcript()
    await run_terminal(url, MSISDN, "*123#", ["", "1"], transcript.write, poll_sms=False)
    assert "| [HTTP 500]" in transcript.text
    assert transcript.text.endswith("No session. Press Enter to dial *123#.")


async def test_terminal_polls_sms_while_waiting_for_input(
    echo_server: TestServer, echo_state: EchoState
) -> None:
    url = str(echo_server.make_url("/ussd/africastalking"))
    transcript = Transcript()

    async def lines() -> AsyncIterator[str]:
        yield ""
        echo_state.add_sms(MSISDN, "Your order is on its way")
        await transcript.wait_for("Your order is on its way")
        yield "q"

    await run_terminal(
        url, MSISDN, "*123#", lines(), transcript.write, poll_sms=True, poll_interval=0.01
    )
    assert transcript.text.count("[SMS #1 15:00] Your order is on its way") == 1
