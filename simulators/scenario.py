"""Scenarios: a USSD journey written down as a file, run through the handset, checked.

One step a line; blank lines and lines starting with ``#`` are ignored::

    # Order rice in English; the SMS confirms the same order.
    dial *123#
    < Okryu Shop
    > 1
    < Categories
    > 1
    > 2
    < White rice 5 kg
    > 1
    > 1
    < Cart (1): KPW 28,000
    > 1
    > 1
    > Changjon street 5
    > 1
    > 1
    < Order {code} placed.
    end
    sms < Okryu: order {code} placed.

``dial CODE``
    start a session (``*123*1*2#`` dials a shortcut).
``> ANSWER``
    answer the open screen with everything after ``> `` (``>`` alone sends an empty answer).
``< TEXT``
    the screen shows ``TEXT`` somewhere; several ``<`` lines may check one screen.
``end``
    the screen ends the session.
``hangup``
    the session drops (Cancel, or the network cutting it).
``sms < TEXT``
    an SMS containing ``TEXT`` arrives (waited for; each SMS matches one ``sms`` line).

``{name}`` in a ``<`` line matches a word the first time and stands for that word after, so
the order code on the screen must be the one in the SMS.

``run_scenario`` drives a ``Phone`` (optionally through a simulated ``Network``) and returns
a ``Result`` with the transcript and the first mismatch. Across a network that cuts
sessions it behaves as a subscriber does: a screen lost on the way is checked as the gateway
sent it, then the subscriber dials again and answers Yes to "Continue where you left off?";
an answer cut off before it left is sent again after that.

``save_scenario`` turns a recorded session (``SessionEvent``s, as ``okryu phone --record``
collects them) into a scenario: each screen's first line and each SMS's first sentence.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp

from simulators.errors import SimulatorError
from simulators.network import Event, Network, NetworkProfile, SessionCut, VirtualClock
from simulators.phone import Dialect, Display, Handset, Phone, PhoneError, Sms
from simulators.shopper import Paced, tells_answers_apart

StepKind = Literal["dial", "answer", "expect", "end", "hangup", "sms"]
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_RECOVERIES = 10  # redials after cuts before a step gives up
# The gateway's offer to continue after a cut, in each language it speaks.
RESUME_TITLES = frozenset({"Continue where you left off?", "하던 곳에서 계속하겠습니까?"})


class ScenarioError(SimulatorError, ValueError):
    """A scenario file that cannot be read: ``file:line: reason``."""


@dataclass(frozen=True)
class Step:
    """One line of a scenario."""

    kind: StepKind
    text: str
    line: int


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario; ``source`` names it in messages (its path)."""

    source: str
    steps: tuple[Step, ...]

    def where(self, step: Step) -> str:
        return f"{self.source}:{step.line}"


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Read a scenario; ScenarioError names the file and line of the first problem."""
    steps: list[Step] = []
    state: Literal["idle", "open", "ended"] = "idle"  # the session, as the lines leave it
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue

        def fail(reason: str, at: int = number) -> ScenarioError:
            return ScenarioError(f"{source}:{at}: {reason}")

        word, _, rest = stripped.partition(" ")
        rest = rest.strip()
        if stripped.startswith(">"):
            if state != "open":
                raise fail(_no_screen(state, "answer"))
            answer = stripped[1:]
            steps.append(Step("answer", answer[1:] if answer.startswith(" ") else answer, number))
        elif stripped.startswith("<"):
            fragment = stripped[1:].strip()
            if state == "idle":
                raise fail("no screen to check yet: dial first")
            if not fragment:
                raise fail("'<' needs the text the screen should show")
            steps.append(Step("expect", fragment, number))
        elif word == "dial":
            if not re.fullmatch(r"\*[0-9*]+#", rest):
                raise fail(f"dial needs a USSD code like *123# or *123*1#, not {rest!r}")
            steps.append(Step("dial", rest, number))
            state = "open"
        elif word == "end":
            if rest:
                raise fail("'end' takes nothing after it")
            if state != "open":
                raise fail(_no_screen(state, "end"))
            steps.append(Step("end", "", number))
            state = "ended"
        elif word in ("hangup", "cut"):
            if rest:
                raise fail(f"{word!r} takes nothing after it")
            if state != "open":
                raise fail("no open session to hang up")
            steps.append(Step("hangup", "", number))
            state = "idle"
        elif word == "sms":
            if not rest.startswith("<") or not rest[1:].strip():
                raise fail("an SMS line reads 'sms < TEXT'")
            steps.append(Step("sms", rest[1:].strip(), number))
        else:
            raise fail(
                f"unknown step {word!r}: a line is 'dial CODE', '> ANSWER', '< TEXT', 'end', "
                "'hangup', 'sms < TEXT' or a '#' comment"
            )
    if not steps:
        raise ScenarioError(f"{source}: no steps")
    return Scenario(source, tuple(steps))


def _no_screen(state: str, what: str) -> str:
    if state == "ended":
        return f"the session has ended: dial again before '{what}'"
    return f"no session is open: dial before '{what}'"


def load_scenario(path: str | Path) -> Scenario:
    """Read and parse a scenario file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_scenario(text, str(path))


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxWait:
    """How to wait for an expected SMS: ``attempts`` reads of the inbox, pausing ``first``
    seconds and then each pause ``factor`` times longer, up to ``longest``.

    With a drain hook (the test's dispatcher) nothing is slept: each attempt drains first.
    """

    attempts: int = 8
    first: float = 0.1
    factor: float = 2.0
    longest: float = 2.0

    def pauses(self) -> list[float]:
        pauses, pause = [], self.first
        for _ in range(self.attempts - 1):
            pauses.append(min(pause, self.longest))
            pause *= self.factor
        return pauses


@dataclass(frozen=True)
class Result:
    """How a scenario went: passed, or the first mismatch; the transcript either way."""

    scenario: Scenario
    passed: bool
    failure: str | None
    transcript: tuple[str, ...]

    def report(self) -> str:
        """The transcript and the verdict, for a terminal or a failing test."""
        verdict = "PASS" if self.passed else f"FAIL {self.failure}"
        return "\n".join([*self.transcript, verdict])


class _Mismatch(SimulatorError):
    """A step's expectation failed (the message says how)."""


class _Witness(Phone):
    """A phone that remembers the gateway's last answer to its own hop, even one the
    network lost on the way to the handset."""

    answered: Display | None = None

    async def dial(self, service_code: str) -> Display:
        self.answered = None
        self.answered = await super().dial(service_code)
        return self.answered

    async def send(self, answer: str) -> Display:
        self.answered = None
        self.answered = await super().send(answer)
        return self.answered


@dataclass
class _Run:
    """One scenario's progress: the screen on show, what was matched, what was said."""

    scenario: Scenario
    phone: _Witness
    handset: Handset
    network: Network | None
    drain: Callable[[], Awaitable[object]] | None
    inbox_wait: InboxWait
    sleep: Callable[[float], Awaitable[None]]
    transcript: list[str] = field(default_factory=list)
    screen: Display | None = None
    dialled: str = ""
    lost: bool = False  # the network cut the session: redial before the next answer
    bound: dict[str, str] = field(default_factory=dict)
    unread: list[Sms] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.transcript.append(text)

    def show(self, screen: Display, note: str = "") -> None:
        self.screen = screen
        kind = "END" if screen.end else "CON"
        status = "" if screen.ok else f" HTTP {screen.status}"
        self.say(f"  [{kind}{status}]{note}")
        self.transcript.extend(f"  | {row}" for row in screen.text.split("\n"))

    async def step(self, step: Step) -> None:
        if step.kind == "dial":
            self.say(f"dial {step.text}")
            self.dialled = step.text
            await self.exchange(lambda: self.handset.dial(step.text), answer=None)
        elif step.kind == "answer":
            self.say(f"> {step.text}")
            await self.answer(step.text)
        elif step.kind == "expect":
            self.expect(step.text)
        elif step.kind == "end":
            if self.screen is None or not self.screen.end:
                raise _Mismatch("expected the session to end, but the screen asks for more")
        elif step.kind == "hangup":
            self.say("hang up")
            self.handset.hang_up()
            self.lost = False
        else:
            await self.expect_sms(step.text)

    async def answer(self, text: str) -> None:
        for _ in range(MAX_RECOVERIES):
            if self.lost:
                await self.recover()
            if self.screen is None or self.screen.end:
                raise _Mismatch("the session has ended: there is no screen to answer")
            sent = await self.exchange(lambda: self.handset.send(text), answer=text)
            if sent:
                return
        raise _Mismatch(f"cut off {MAX_RECOVERIES} times")

    async def exchange(self, hop: Callable[[], Awaitable[Display]], answer: str | None) -> bool:
        """Send a hop; False when the network cut it before it left (send it again)."""
        mark = len(self.network.transcript) if self.network is not None else 0
        try:
            self.show(await hop())
            self.lost = False
            return True
        except SessionCut:
            assert self.network is not None
            left = answer is None or any(e.kind == "sent" for e in self.network.transcript[mark:])
            answered = self.phone.answered
            if left and answered is not None:
                self.show(answered, " (lost on the way: the gateway's answer)")
            self.lost = not (left and answered is not None and answered.end)
            return left
        except PhoneError as exc:
            raise _Mismatch(str(exc)) from exc

    async def recover(self) -> None:
        """Dial again after a cut and continue where the session left off."""
        code = base_code(self.dialled)
        left = self.screen
        for _ in range(MAX_RECOVERIES):
            self.say(f"(cut off: dial {code} again)")
            await self.exchange(lambda: self.handset.dial(code), answer=None)
            if self.lost or self.screen is None:
                continue  # that screen was lost too
            if self.screen.text.split("\n")[0] in RESUME_TITLES:
                self.say("> 1")
                await self.exchange(lambda: self.handset.send("1"), answer="1")
                if self.lost:
                    continue
            elif left is not None and self.screen.text != left.text:
                raise _Mismatch(
                    f"cut off at {_first(left)!r}; dialling again showed {_first(self.screen)!r}"
                    " with no offer to continue"
                )
            return
        raise _Mismatch(f"cut off {MAX_RECOVERIES} times in a row")

    def expect(self, fragment: str) -> None:
        if self.screen is None:
            raise _Mismatch("no screen to check")
        if not self.match(fragment, self.screen.text):
            raise _Mismatch(f"expected the screen to show {fragment!r}")

    def match(self, fragment: str, text: str) -> bool:
        """Whether ``text`` holds ``fragment``; binds its new ``{name}``s if it does."""
        pattern, names = _pattern(fragment, self.bound)
        found = pattern.search(text)
        if found is None:
            return False
        for name in names:
            self.bound[name] = found.group(name)
        return True

    async def expect_sms(self, fragment: str) -> None:
        pauses = [0.0] * (self.inbox_wait.attempts - 1) if self.drain else self.inbox_wait.pauses()
        for pause in [0.0, *pauses]:
            if pause:
                await self.sleep(pause)
            if self.drain is not None:
                await self.drain()
            try:
                self.unread.extend(await self.phone.inbox())
            except PhoneError as exc:
                raise _Mismatch(str(exc)) from exc
            for sms in self.unread:
                if self.match(fragment, sms.body):
                    self.unread.remove(sms)
                    self.say(f"  [SMS] {sms.body}")
                    return
        for sms in self.unread:
            self.say(f"  [SMS, not matched] {sms.body}")
        raise _Mismatch(f"no SMS showing {fragment!r} arrived")


def _first(screen: Display) -> str:
    return screen.text.split("\n", 1)[0]


def _pattern(fragment: str, bound: dict[str, str]) -> tuple[re.Pattern[str], list[str]]:
    """``fragment`` as a regex: ``{name}`` a word, or the word already bound to it."""
    parts, names, at = [], [], 0
    for placeholder in _PLACEHOLDER.finditer(fragment):
        parts.append(re.escape(fragment[at : placeholder.start()]))
        name = placeholder.group(1)
        if name in bound:
            parts.append(re.escape(bound[name]))
        elif name in names:
            parts.append(f"(?P={name})")
        else:
            parts.append(f"(?P<{name}>\\w+)")
            names.append(name)
        at = placeholder.end()
    parts.append(re.escape(fragment[at:]))
    return re.compile("".join(parts)), names


def base_code(code: str) -> str:
    """The service code a shortcut dials into: ``*123*1*2#`` -> ``*123#``."""
    return "*" + code.strip("*#").split("*")[0] + "#"


async def run_scenario(
    scenario: Scenario,
    *,
    url: str,
    msisdn: str,
    dialect: str | Dialect = "africastalking",
    network: NetworkProfile | str | None = None,
    seed: int = 0,
    clock: VirtualClock | None = None,
    inbox_wait: InboxWait | None = None,
    drain: Callable[[], Awaitable[object]] | None = None,
    retry_window: float = 0.0,
    session: aiohttp.ClientSession | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Result:
    """Play ``scenario`` on a handset with ``msisdn`` against the USSD callback at ``url``.

    ``network`` (a profile or its name, with ``seed`` and an optional shared ``clock``) puts
    a simulated network between the handset and the gateway. Expected SMS are read from the
    gateway's development inbox: ``drain`` (the test's ``dispatcher.run_once``) is called
    before each read, and without it the inbox is polled as ``inbox_wait`` says, which only a
    real gateway needs. ``retry_window`` is the gateway's: in a dialect that cannot tell the
    same answer twice from a retry, the second waits that long (see ``shopper.Paced``).
    """
    phone = _Witness(url, msisdn, dialect=dialect, session=session)
    head = f"scenario {scenario.source}: {phone.dialect.name} handset {msisdn} -> {url}"
    transcript = [head]
    net: Network | None = None
    if network is not None:
        net = Network(phone, network, seed=seed, clock=clock, on_event=_teller(transcript))
        transcript[0] += f", network {net.profile.name} (seed {seed})"
    gap = 0.0 if tells_answers_apart(phone.dialect) else retry_window
    handset = Paced(net if net is not None else phone, gap, sleep=sleep)
    run = _Run(scenario, phone, handset, net, drain, inbox_wait or InboxWait(), sleep, transcript)
    async with phone:
        try:
            if any(step.kind == "sms" for step in scenario.steps):
                await phone.inbox()  # what arrived before the scenario is not its SMS
        except PhoneError as exc:
            return _failed(run, f"{scenario.source}: {exc}")
        for step in scenario.steps:
            try:
                await run.step(step)
            except _Mismatch as exc:
                return _failed(run, f"{scenario.where(step)}: {exc}")
    return Result(scenario, True, None, tuple(run.transcript))


def _failed(run: _Run, failure: str) -> Result:
    return Result(run.scenario, False, failure, tuple(run.transcript))


def _teller(transcript: list[str]) -> Callable[[Event], None]:
    """Put the network's tricks in the transcript (screens are shown, not told)."""

    def tell(event: Event) -> None:
        if event.kind not in ("screen", "sent", "dial"):
            transcript.append(f"  (network {event.kind}: {event.detail})")

    return tell


# --- recording -------------------------------------------------------------------------------

EventKind = Literal["dial", "answer", "screen", "hangup", "sms"]


@dataclass(frozen=True)
class SessionEvent:
    """One thing in a live session: a dial, an answer, a screen shown, a hang-up, an SMS."""

    kind: EventKind
    text: str = ""
    end: bool = False  # for a screen: it ended the session


class Recording:
    """A handset that tells ``record`` each dial, answer, screen and hang-up that happened.

    An answer the network cut off before it left is not recorded: it never happened.
    """

    def __init__(self, handset: Handset, record: Callable[[SessionEvent], None]) -> None:
        self.handset = handset
        self.record = record

    @property
    def in_session(self) -> bool:
        return self.handset.in_session

    async def dial(self, service_code: str) -> Display:
        try:
            screen = await self.handset.dial(service_code)
        except SessionCut:
            self.record(SessionEvent("dial", service_code))
            self.record(SessionEvent("hangup"))
            raise
        self.record(SessionEvent("dial", service_code))
        self.record(SessionEvent("screen", screen.text, screen.end))
        return screen

    async def send(self, answer: str) -> Display:
        network = self.handset if isinstance(self.handset, Network) else None
        mark = len(network.transcript) if network is not None else 0
        try:
            screen = await self.handset.send(answer)
        except SessionCut:
            if network is not None and any(e.kind == "sent" for e in network.transcript[mark:]):
                self.record(SessionEvent("answer", answer))
            self.record(SessionEvent("hangup"))
            raise
        self.record(SessionEvent("answer", answer))
        self.record(SessionEvent("screen", screen.text, screen.end))
        return screen

    def hang_up(self) -> None:
        self.handset.hang_up()
        self.record(SessionEvent("hangup"))


# An order code, as the gateway makes them: six of these characters (no 0/O, 1/I/L).
_CODE = re.compile(r"(?<![\w])[2-9A-HJKMNP-Z]{6}(?![\w])")
_SENTENCE = re.compile(r"^.*?[.!?](?=\s|$)")


def save_scenario(events: Sequence[SessionEvent], title: str = "") -> str:
    """A scenario that replays ``events``: each screen's first line, each SMS's first
    sentence; order codes become ``{code}`` so a replay may place a new order."""
    codes: dict[str, str] = {}

    def general(text: str) -> str:
        def name(found: re.Match[str]) -> str:
            code = found.group(0)
            if code not in codes:
                codes[code] = "{code}" if not codes else f"{{code{len(codes) + 1}}}"
            return codes[code]

        return _CODE.sub(name, text)

    lines = [f"# {title}" if title else "# Recorded with okryu phone --record"]
    open_ = False
    for event in events:
        if event.kind == "dial":
            lines.append(f"dial {event.text}")
            open_ = True
        elif event.kind == "answer" and open_:
            lines.append(f"> {event.text}" if event.text else ">")
        elif event.kind == "screen" and open_:
            first = event.text.split("\n", 1)[0].strip()
            if first:
                lines.append(f"< {general(first)}")
            if event.end:
                lines.append("end")
                open_ = False
        elif event.kind == "hangup" and open_:
            lines.append("hangup")
            open_ = False
        elif event.kind == "sms":
            found = _SENTENCE.match(event.text.strip())
            sentence = found.group(0) if found else event.text.strip()
            if sentence:
                lines.append(f"sms < {general(sentence)}")
    return "\n".join(lines) + "\n"
