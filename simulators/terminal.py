"""A handset in the terminal: type answers, see screens drawn like a phone's, and SMS arrive.

It reads lines from any iterator and writes through a callable, so tests feed it lines and
read the transcript; ``stdin_lines()`` and ``print`` make it interactive.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from simulators.network import Event, Network, NetworkProfile, SessionCut
from simulators.phone import Dialect, Display, Handset, Phone, PhoneError, Sms, draw_screen
from simulators.scenario import Recording, SessionEvent

_QUIT = frozenset({"q", "quit", "exit"})
_CANCEL = frozenset({"c", "cancel"})
# The network's tricks the terminal reports, as it says them.
_TRICKS = {
    "duplicate": "the aggregator retried {}",
    "late": "an earlier hop, {}, arrived again late",
    "stale": "a hop of the session before, {}, arrived after the new dial",
    "cut": "{}",
}
CUT = "(network: session cut — press Enter to dial again)"


def banner(msisdn: str, url: str, service_code: str) -> str:
    """The commands, said once at the start."""
    return (
        f"Okryu handset {msisdn} -> {url}\n"
        f"Enter dials {service_code} (or type a code like *123*1#), then type an answer and "
        "press Enter.\n"
        "c cancels the session, q quits. New SMS appear as they arrive."
    )


def format_sms(sms: Sms) -> str:
    """One SMS as a notification line."""
    return f"[SMS #{sms.id} {sms.at:%H:%M}] {sms.body}"


class _Inbox:
    """Shows new SMS once each, from the foreground and the background poller alike."""

    def __init__(
        self,
        phone: Phone,
        write: Callable[[str], None],
        record: Callable[[SessionEvent], None] | None = None,
    ) -> None:
        self._phone = phone
        self._write = write
        self._record = record
        # Two readers at once would both see the same new ids and print them twice.
        self._lock = asyncio.Lock()
        self.available = True

    async def show_new(self) -> None:
        if not self.available:
            return
        async with self._lock:
            try:
                messages = await self._phone.inbox()
            except PhoneError as exc:
                # Without the development inbox (a real provider) SMS go to real phones.
                self.available = False
                self._write(f"(SMS inbox unavailable: {exc})")
                return
            for sms in messages:
                self._write(format_sms(sms))
                if self._record is not None:
                    self._record(SessionEvent("sms", sms.body))

    async def poll(self, interval: float) -> None:
        while self.available:
            await asyncio.sleep(interval)
            await self.show_new()


async def run_terminal(
    url: str,
    msisdn: str,
    service_code: str,
    lines: AsyncIterator[str] | Iterator[str],
    write: Callable[[str], None],
    poll_sms: bool = True,
    *,
    poll_interval: float = 2.0,
    dialect: str | Dialect = "africastalking",
    network: NetworkProfile | str | None = None,
    seed: int | None = None,
    record: Callable[[SessionEvent], None] | None = None,
) -> None:
    """Run an interactive handset until ``q`` or the end of ``lines``.

    ``dialect`` is the aggregator the handset speaks like; with ``network`` (a profile or its
    name) its hops cross a simulated network, which may cut, retry or delay them. ``record``
    is told each dial, answer, screen, hang-up and SMS (``scenario.save_scenario`` makes a
    scenario of them).
    """
    write(banner(msisdn, url, service_code))
    async with Phone(url, msisdn, dialect=dialect) as phone:
        handset: Handset = phone
        if network is not None:
            seed = random.randrange(2**32) if seed is None else seed
            handset = Network(phone, network, seed=seed, on_event=_reporter(write))
            write(f"(network: {handset.profile.name}, seed {seed})")
        if record is not None:
            handset = Recording(handset, record)
        inbox = _Inbox(phone, write, record)
        poller = asyncio.create_task(inbox.poll(poll_interval)) if poll_sms else None
        try:
            async for raw in _aiter(lines):
                line = raw.strip()
                if line.lower() in _QUIT:
                    break
                screen = await _step(handset, line, service_code, write)
                if screen is not None:
                    write(draw_screen(screen))
                    if screen.end:
                        write("Session ended. Enter dials again, q quits.")
                await inbox.show_new()
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller


def _reporter(write: Callable[[str], None]) -> Callable[[Event], None]:
    """Say the network's tricks as they happen (screens are drawn, not reported)."""

    def report(event: Event) -> None:
        said = _TRICKS.get(event.kind)
        if said is not None:
            write(f"(network: {said.format(event.detail)})")

    return report


async def _step(
    phone: Handset, line: str, service_code: str, write: Callable[[str], None]
) -> Display | None:
    """Act on one line: dial, answer or cancel; the screen to draw, if any."""
    try:
        if not phone.in_session:
            if line == "":
                return await phone.dial(service_code)
            if line.startswith("*"):
                return await phone.dial(line)
            write(f"No session. Press Enter to dial {service_code}.")
            return None
        if line.lower() in _CANCEL:
            phone.hang_up()
            write("Cancelled. Enter dials again.")
            return None
        return await phone.send(line)
    except SessionCut:
        write(CUT)
        return None
    except PhoneError as exc:
        write(f"Error: {exc}")
        return None


async def _aiter(lines: AsyncIterator[str] | Iterator[str]) -> AsyncIterator[str]:
    if isinstance(lines, AsyncIterator):
        async for line in lines:
            yield line
    else:
        for line in lines:
            yield line


async def stdin_lines() -> AsyncIterator[str]:
    """Lines typed on stdin, without their newline, until end of input."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    # A daemon thread rather than run_in_executor: a read still blocked when the user quits
    # (or presses Ctrl-C) would otherwise hold up the interpreter's exit.
    threading.Thread(target=read, name="stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line
