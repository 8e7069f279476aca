"""A mobile network between a handset and the gateway that plays real networks' tricks.

USSD has no store-and-forward (PROTOCOLS.md §5.3): a subscriber silent for longer than the
per-screen timeout (30 s, §1.3 and §5.2) is cut off, a dialogue lives at most 180 s, and a
session can drop at any time. Aggregators retry a hop they think was lost, so the gateway
may see the same request twice, even at once; an earlier request of a session can arrive
after later ones, even after the session was cut and the subscriber dialled again (``stale``,
off in the named profiles). ``Network`` plays all of that between a ``Phone`` and the
gateway, as real HTTP requests in the phone's own dialect, and writes down what it did::

    clock = VirtualClock()
    network = Network(phone, FLAKY, seed=7, clock=clock)
    gateway.clock = network.clock  # resume windows judged in the same virtual time
    screen = await network.dial("*123#")
    try:
        screen = await network.send("1", think=4.0)
    except SessionCut:
        screen = await network.dial("*123#")  # the subscriber dials again
    print(network.report())

Everything is decided by a seeded ``random.Random`` and timed by a ``VirtualClock``: nothing
ever sleeps, and one seed always plays the same tricks.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from simulators.phone import Display, Hop, Phone, PhoneError


class SessionCut(PhoneError):
    """The network cut the dialogue: the handset is idle and the subscriber must dial again."""


@dataclass(frozen=True)
class NetworkProfile:
    """How a network behaves: its timers and how often each trick happens (0 to 1 per hop)."""

    name: str = "custom"
    timeout: float = 30.0  # seconds of silence after a screen before the network cuts
    session_limit: float = 180.0  # seconds a whole dialogue may last
    drop: float = 0.0  # the session drops after the gateway answered: the screen is lost
    duplicate: float = 0.0  # the aggregator sends the hop again (a retry), maybe concurrently
    late: float = 0.0  # an earlier hop of the session arrives again after later ones
    stale: float = 0.0  # a hop of the previous session arrives after the subscriber redialled
    slow_typist: float = 0.0  # the subscriber answers after the timeout: the session is cut
    think: tuple[float, float] = (1.0, 10.0)  # seconds a subscriber usually takes to answer
    redial: tuple[float, float] = (2.0, 20.0)  # seconds before a subscriber dials

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "late", "stale", "slow_typist"):
            chance = getattr(self, name)
            if not 0.0 <= chance <= 1.0:
                raise ValueError(f"{name} is a probability from 0 to 1, not {chance!r}")
        if self.timeout <= 0 or self.session_limit <= 0:
            raise ValueError("timeout and session_limit must be positive")
        for name in ("think", "redial"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be (low, high) seconds with 0 <= low <= high")


GOOD = NetworkProfile("good")
FLAKY = NetworkProfile("flaky", drop=0.1, duplicate=0.2, late=0.1, slow_typist=0.05, stale=0.05)
PROFILES: Mapping[str, NetworkProfile] = MappingProxyType({p.name: p for p in (GOOD, FLAKY)})


def network_profile(name: str) -> NetworkProfile:
    """The named profile (``good``, ``flaky``), or ValueError naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(PROFILES)}") from None


class VirtualClock:
    """Seconds since the epoch that pass only when told to, for the network and the gateway."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def __call__(self) -> float:
        """The current virtual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        if seconds < 0:
            raise ValueError(f"time does not run backwards ({seconds!r} s)")
        self._now += seconds


EventKind = Literal["dial", "sent", "duplicate", "late", "stale", "screen", "cut", "error"]


@dataclass(frozen=True)
class Event:
    """One thing that happened, ``at`` seconds (virtual) after the network started."""

    at: float
    kind: EventKind
    detail: str

    def __str__(self) -> str:
        return f"{self.at:8.1f}s  {self.kind:<9} {self.detail}"


@dataclass(frozen=True)
class _Dice:
    """Every draw one hop may need, always drawn in full: one seed, one transcript."""

    think: float  # 0..1, scaled into the profile's think (or redial) range
    slow: bool
    duplicate: bool
    concurrent: bool
    late: bool
    stale: bool
    pick: float  # 0..1, which earlier hop arrives late
    drop: bool


@dataclass
class _Dialogue:
    """The session the handset has open, as far as the network knows."""

    started: float
    hops: list[Hop] = field(default_factory=list)


class Network:
    """A ``Phone``'s link to the gateway: dials and answers pass through its tricks."""

    def __init__(
        self,
        phone: Phone,
        profile: NetworkProfile | str = GOOD,
        *,
        seed: int = 0,
        clock: VirtualClock | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.phone = phone
        self.profile = network_profile(profile) if isinstance(profile, str) else profile
        self.seed = seed
        self.clock = clock if clock is not None else VirtualClock()
        self.transcript: list[Event] = []
        self.responses: list[Display] = []  # every answer the gateway gave, shown or not
        self._on_event = on_event
        self._rng = random.Random(seed)
        self._began = self.clock()
        self._dialogue: _Dialogue | None = None
        self._previous: _Dialogue | None = None  # the last dialogue, once it is over

    @property
    def in_session(self) -> bool:
        """Whether the handset has a dialogue open and waiting for an answer."""
        return self.phone.in_session

    async def dial(self, service_code: str, think: float | None = None) -> Display:
        """Dial ``service_code`` after ``think`` seconds (drawn when None); the screen shown."""
        dice = self._roll()
        self._pass(think if think is not None else _scale(dice.think, self.profile.redial))
        self._end()
        self._dialogue = dialogue = _Dialogue(started=self.clock())
        self._note("dial", service_code)
        screen = await self._answer(self.phone.dial(service_code))
        self._arrived(screen, dice)
        hop = self.phone.last_hop
        assert hop is not None
        dialogue.hops.append(hop)
        if dice.duplicate:  # the session id is only known once sent: the retry comes after
            self._note("duplicate", "the dial")
            self._arrived(await self._retry(hop), dice, "duplicate")
        if dice.stale and self._previous is not None and self._previous.hops:
            old = self._previous.hops
            stray = old[int(dice.pick * len(old))]
            self._note("stale", repr(stray.inputs[-1]) if stray.inputs else "the dial")
            self._arrived(await self._retry(stray), dice, "stale")
        return self._deliver(screen, dice)

    async def send(self, answer: str, think: float | None = None) -> Display:
        """Answer after ``think`` seconds (drawn when None); the screen the subscriber sees.

        Raises :class:`SessionCut` when the network cut the dialogue, before the answer
        left (too slow) or after the gateway answered (a drop: the screen is lost).
        """
        dice = self._roll()
        hop = self.phone.next_hop(answer)  # PhoneError without an open session
        if self._dialogue is None:  # a dialogue the phone opened by itself
            self._dialogue = _Dialogue(started=self.clock(), hops=[self.phone.last_hop or hop])
        dialogue = self._dialogue
        profile = self.profile
        if think is None:
            think = _scale(dice.think, profile.think)
            if dice.slow:
                think = profile.timeout + 1 + dice.think * profile.timeout
        self._pass(think)
        if think > profile.timeout:
            self._cut(f"no answer within {profile.timeout:g}s (the subscriber took {think:.1f}s)")
        if self.clock() - dialogue.started > profile.session_limit:
            self._cut(f"the dialogue outlived {profile.session_limit:g}s")
        self._note("sent", repr(answer))
        if dice.duplicate and dice.concurrent:
            self._note("duplicate", f"{answer!r}, at the same time")
            screen, again = await asyncio.gather(
                self._answer(self.phone.send(answer)), self._retry(hop)
            )
            self._arrived(screen, dice)
            self._arrived(again, dice, "duplicate")
        else:
            screen = await self._answer(self.phone.send(answer))
            self._arrived(screen, dice)
            if dice.duplicate:
                self._note("duplicate", repr(answer))
                self._arrived(await self._retry(hop), dice, "duplicate")
        dialogue.hops.append(hop)
        earlier = dialogue.hops[:-1]
        if dice.late and earlier:
            stray = earlier[int(dice.pick * len(earlier))]
            self._note("late", repr(stray.inputs[-1]) if stray.inputs else "the dial")
            self._arrived(await self._retry(stray), dice, "late")
        return self._deliver(screen, dice)

    def hang_up(self) -> None:
        """Drop the dialogue locally, as pressing Cancel does."""
        self.phone.hang_up()
        self._end()

    def report(self) -> str:
        """The transcript as text, one event a line, for a failing test's output."""
        head = f"network {self.profile.name} (seed {self.seed}), phone {self.phone.msisdn}"
        return "\n".join([head, *map(str, self.transcript)])

    # --- helpers ------------------------------------------------------------------------

    def _roll(self) -> _Dice:
        r = self._rng.random
        p = self.profile
        return _Dice(
            think=r(),
            slow=r() < p.slow_typist,
            duplicate=r() < p.duplicate,
            concurrent=r() < 0.5,
            late=r() < p.late,
            stale=r() < p.stale,
            pick=r(),
            drop=r() < p.drop,
        )

    def _pass(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def _note(self, kind: EventKind, detail: str) -> None:
        event = Event(round(self.clock() - self._began, 3), kind, detail)
        self.transcript.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def _cut(self, reason: str) -> None:
        self.hang_up()
        self._note("cut", reason)
        raise SessionCut(f"the network cut the session: {reason}; dial again")

    async def _answer(self, exchange: Awaitable[Display]) -> Display:
        """The answer to the subscriber's own hop, kept among the responses."""
        try:
            screen = await exchange
        except PhoneError as exc:
            self._note("error", str(exc))
            raise
        self.responses.append(screen)
        return screen

    async def _retry(self, hop: Hop) -> Display | None:
        """Send ``hop`` again; its answer goes to the aggregator, never to the handset."""
        try:
            screen = await self.phone.resend(hop)
        except PhoneError as exc:
            self._note("error", str(exc))
            return None
        self.responses.append(screen)
        return screen

    def _arrived(self, screen: Display | None, dice: _Dice, by: str = "") -> None:
        """Note an answer from the gateway (in a fixed order, whatever order they came in)."""
        if screen is None:
            return
        if by:
            label = f"({by}) "
        else:
            label = "(never shown) " if dice.drop else ""
        self._note("screen", label + _describe(screen))

    def _deliver(self, screen: Display, dice: _Dice) -> Display:
        """The screen reaches the handset, unless the session drops on the way."""
        if dice.drop:
            self._cut("the session dropped before the screen arrived")
        if screen.end:
            self._end()
        return screen

    def _end(self) -> None:
        self._previous = self._dialogue or self._previous
        self._dialogue = None


def _scale(unit: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return round(low + unit * (high - low), 3)


def _describe(screen: Display) -> str:
    kind = "END" if screen.end else "CON"
    return f"{screen.status} {kind} {screen.text!r}"
