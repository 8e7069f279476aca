"""Load: many simulated handsets against a running gateway, measured hop by hop.

``okryu load`` runs it; ``bench/hop.py`` drives its own hand-rolled subscribers with the
same pieces (``Window``, ``Tally``, ``run_window``, ``percentile``, the CPU readings)::

    config = LoadConfig("http://127.0.0.1:8080/ussd/africastalking", subscribers=50,
                        duration=10, mix={"browse": 70, "order": 30})
    print((await run_load(config)).render())

Every subscriber is a ``Phone`` with its own number, in the chosen dialect, optionally
behind a simulated ``Network``; journey after journey, each picked by the mix:

* ``browse``: home, Shop, Food, its next page, back, Medicine, a product, home; hang up.
* ``order``: a ``Shopper`` buys one or two of a product still in stock and confirms; cut
  off, it redials and continues where it left off.

Every HTTP request is timed (retries and late hops a network replays included) and every
screen checked against the screen budget. It is a closed loop: a subscriber waits for each
answer, so once the gateway is saturated latency grows and hops/s stays flat. The report
says how much of a core the load generator itself used: near a full core, it may be what
limits the run.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import random
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import aiohttp

from menus.screens import Budget, fits
from simulators.errors import SimulatorError
from simulators.network import Event, Network, NetworkProfile, SessionCut
from simulators.phone import DIALECTS, Dialect, Display, Hop, Phone, PhoneError
from simulators.shopper import (
    APOLOGY,
    DIAL,
    HOME_TITLE,
    RESUME_PROMPT,
    Paced,
    Shopper,
    ShopperLost,
    tells_answers_apart,
)

T = TypeVar("T")

HOP_TIMEOUT = 10.0
ERROR_PAUSE = 0.01  # after a failed hop, so a dead server shows as errors, not a busy loop
ERROR_SAMPLES = 3
BUSY_CORE = 0.8  # a load generator above this share of a core may be the bottleneck
TICK = 0.2  # seconds between progress updates

JOURNEYS = ("browse", "order")
ERROR_KINDS = (
    "http_5xx",
    "http_4xx",
    "timeouts",
    "connection_errors",
    "unexpected_screens",
    "cut_sessions",
)
ErrorKind = Literal[
    "http_5xx", "http_4xx", "timeouts", "connection_errors", "unexpected_screens", "cut_sessions"
]
# Home, Shop, Food, its next page, back, Medicine, a product, home: every screen a CON.
BROWSE: tuple[str, ...] = ("1", "1", "98", "0", "2", "1", "00")
# Subscribers' numbers: a range no demo or test number uses (+8501919xxxxxx).
NUMBER_PREFIX = "+850191"
NUMBER_RANGE = range(9_000_000, 10_000_000)


# --- the driver's pieces (bench/hop.py uses them too) ----------------------------------------


@dataclass(frozen=True)
class Window:
    """The measured interval, in ``time.perf_counter`` seconds; before it is the warm-up."""

    start: float
    end: float

    def holds(self, moment: float) -> bool:
        return self.start <= moment <= self.end

    @classmethod
    def after(cls, warmup: float, seconds: float) -> Window:
        """The window that opens ``warmup`` seconds from now and lasts ``seconds``."""
        now = time.perf_counter()
        return cls(now + warmup, now + warmup + seconds)


@dataclass
class Tally:
    """What the subscribers of one run saw."""

    latencies: list[float] = field(default_factory=list)  # seconds, hops done in the window
    journeys: Counter[str] = field(default_factory=Counter)  # done in the window
    errors: Counter[str] = field(default_factory=Counter)  # over the whole run
    error_samples: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)  # order journeys, by outcome
    codes: list[str] = field(default_factory=list)  # every order seen placed, window or not
    over_budget: int = 0

    def fail(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(what)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def cpu_seconds() -> float:
    """User + system CPU seconds this process has used."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def proc_stat(pid: int | str) -> tuple[str, list[str]] | None:
    """``pid``'s command name and the fields after it in /proc/<pid>/stat (None if gone, or
    where there is no /proc): fields[1] is the parent, fields[11:15] utime, stime, and the
    reaped children's cutime, cstime, in clock ticks."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, tail = stat.rpartition(")")  # the command name may hold spaces and parentheses
    return head.partition("(")[2], tail.split()


def stat_cpu(fields: Sequence[str], *, reaped: bool = False) -> float:
    """User + system CPU seconds in :func:`proc_stat`'s fields; with ``reaped``, the
    process's ended children's too."""
    return sum(int(f) for f in fields[11 : 15 if reaped else 13]) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` from /proc (None where there is no /proc)."""
    found = proc_stat(pid)
    return None if found is None else stat_cpu(found[1])


def share(before: float | None, after: float | None, seconds: float) -> float | None:
    """CPU seconds between two readings as a share of one core over ``seconds``."""
    if before is None or after is None:
        return None
    return (after - before) / seconds


async def run_window(
    loops: Sequence[Coroutine[Any, Any, None]],
    window: Window,
    measure: Callable[[], Awaitable[T]],
    *,
    tick: Callable[[], None] | None = None,
    grace: float | None = None,
) -> tuple[T, T]:
    """Run the subscribers' ``loops`` (each stops by itself once the window closes) and
    ``measure`` (CPU readings) as the window opens and as it closes.

    ``tick`` is called every ``TICK`` seconds (a progress bar); loops still running
    ``grace`` seconds after the window closed are cancelled (None waits for them).
    """
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        await _sleep_until(window.start, tick)
        before = await measure()
        await _sleep_until(window.end, tick)
        after = await measure()
        if grace is None:
            await asyncio.gather(*tasks)
        else:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in tasks:
                if not task.cancelled() and (error := task.exception()) is not None:
                    raise error
    finally:
        for task in tasks:
            task.cancel()
    return before, after


async def _sleep_until(moment: float, tick: Callable[[], None] | None) -> None:
    if tick is None:
        await asyncio.sleep(moment - time.perf_counter())
        return
    while (left := moment - time.perf_counter()) > 0:
        await asyncio.sleep(min(TICK, left))
        tick()


# --- the load run ---------------------------------------------------------------------------


class LoadError(SimulatorError, ValueError):
    """A load run that cannot start as asked (a bad mix, an unknown dialect...)."""


def parse_mix(text: str) -> dict[str, int]:
    """``browse:70,order:30`` -> ``{"browse": 70, "order": 30}`` (weights, not percentages)."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, colon, weight = part.strip().partition(":")
        if name not in JOURNEYS:
            raise LoadError(f"unknown journey {name!r} in the mix; known: {', '.join(JOURNEYS)}")
        if not colon or not weight.strip().isdigit():
            raise LoadError(f"the mix names a weight for each journey: {name}:70, not {part!r}")
        mix[name] = mix.get(name, 0) + int(weight)
    if sum(mix.values()) <= 0:
        raise LoadError("the mix needs a journey with a weight above 0")
    return mix


def phone_numbers(count: int, seed: int) -> list[str]:
    """``count`` distinct subscriber numbers, always the same for one seed."""
    picks = random.Random(seed).sample(NUMBER_RANGE, count)
    return [f"{NUMBER_PREFIX}{n:07d}" for n in picks]


@dataclass(frozen=True)
class LoadConfig:
    """One load run: where, how many, how long, which journeys, over which network."""

    url: str  # the USSD callback of the dialect, e.g. http://host:8080/ussd/hubtel
    subscribers: int = 10
    duration: float = 10.0  # seconds
    mix: Mapping[str, int] = field(default_factory=lambda: {"browse": 70, "order": 30})
    dialect: str | Dialect = "africastalking"
    network: NetworkProfile | None = None  # None: straight to the gateway (as good)
    seed: int = 0
    retry_window: float = 1.0  # the gateway's (OKRYU_RETRY_WINDOW): see shopper.Paced
    service_code: str = DIAL
    timeout: float = HOP_TIMEOUT

    def __post_init__(self) -> None:
        if self.subscribers < 1 or self.duration <= 0:
            raise LoadError("subscribers must be at least 1 and the duration above 0")
        if isinstance(self.dialect, str) and self.dialect not in DIALECTS:
            known = ", ".join(DIALECTS)
            raise LoadError(f"unknown dialect {self.dialect!r}; known: {known}")
        parse_mix(",".join(f"{name}:{weight}" for name, weight in self.mix.items()))

    @property
    def speaks(self) -> Dialect:
        return DIALECTS[self.dialect] if isinstance(self.dialect, str) else self.dialect


@dataclass(frozen=True)
class LoadReport:
    """What a load run measured."""

    url: str
    dialect: str
    network: str
    subscribers: int
    duration_s: float
    mix: dict[str, int]
    seed: int
    hops: int
    hops_per_s: float
    journeys: dict[str, int]
    journeys_per_s: float
    orders_placed: int  # "Order CODE placed." screens
    orders_pending: int  # "Your order is being placed.": the confirm outlived the hop deadline
    orders_unseen: int  # placed while a cut hid the screen (the cart was empty on redial)
    sold_out: int  # order journeys that found nothing left to buy
    latency_ms: dict[str, float]
    errors: dict[str, int]
    error_samples: list[str]
    screens_over_budget: int
    loadgen_cpu: float  # share of one core over the run
    loadgen_cpu_s: float
    warnings: list[str]
    codes: tuple[str, ...] = field(default=(), repr=False)  # orders seen placed (not in JSON)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (``--json``)."""
        data = asdict(self)
        del data["codes"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def render(self) -> str:
        """The report as text for a terminal."""
        mix = " ".join(f"{name}:{weight}" for name, weight in self.mix.items())
        journeys = ", ".join(f"{name} {count:,}" for name, count in self.journeys.items())
        latency = "   ".join(f"{name} {value:.1f}" for name, value in self.latency_ms.items())
        errors = ", ".join(
            f"{kind.replace('_', ' ').replace('http ', 'HTTP ')} {self.errors[kind]:,}"
            for kind in ERROR_KINDS
        )
        failed = sum(count for kind, count in self.errors.items() if kind != "cut_sessions")
        lines = [
            f"okryu load: {self.subscribers} subscribers for {self.duration_s:g} s, "
            f"{self.dialect}, network {self.network}, mix {mix}, seed {self.seed}",
            f"  -> {self.url}",
            f"hops                {self.hops:>9,}   {self.hops_per_s:>9,.1f}/s",
            f"journeys            {sum(self.journeys.values()):>9,}   "
            f"{self.journeys_per_s:>9,.1f}/s   ({journeys})",
            f"orders placed       {self.orders_placed:>9,}   (answered 'being placed' "
            f"{self.orders_pending:,}, placed unseen behind a cut {self.orders_unseen:,}, "
            f"sold out {self.sold_out:,})",
            f"hop latency ms      {latency}",
            f"errors              {failed:>9,}   ({errors})",
            f"screens over budget {self.screens_over_budget:>9,}",
            f"load generator CPU  {self.loadgen_cpu:>9.0%}   of one core "
            f"({self.loadgen_cpu_s:.1f} s CPU in {self.duration_s:g} s)",
        ]
        lines += [f"warning: {warning}" for warning in self.warnings]
        lines += [f"error: {sample}" for sample in self.error_samples]
        return "\n".join(lines)


class _Closed(SimulatorError):
    """The window closed: the subscriber stops (not a PhoneError, so nothing catches it)."""


class _Metered(Phone):
    """A phone that times every request it sends and checks every screen it gets back."""

    def __init__(
        self, url: str, msisdn: str, *, tally: Tally, window: Window, **phone: Any
    ) -> None:
        super().__init__(url, msisdn, **phone)
        self.tally = tally
        self.window = window
        self.budget = Budget()

    async def dial(self, service_code: str) -> Display:
        return await self._metered(functools.partial(Phone.dial, self, service_code))

    async def send(self, answer: str) -> Display:
        return await self._metered(functools.partial(Phone.send, self, answer))

    async def resend(self, hop: Hop) -> Display:
        return await self._metered(functools.partial(Phone.resend, self, hop))

    async def _metered(self, exchange: Callable[[], Awaitable[Display]]) -> Display:
        began = time.perf_counter()
        if began >= self.window.end:
            raise _Closed
        tally = self.tally
        try:
            screen = await exchange()
        except PhoneError as error:
            cause = error.__cause__
            if isinstance(cause, TimeoutError):
                tally.fail("timeouts", f"timeout: {error}")
            else:
                tally.fail("connection_errors", f"connection: {error}")
            raise
        done = time.perf_counter()
        if self.window.holds(done):
            tally.latencies.append(done - began)
        if screen.status >= 500:
            tally.fail("http_5xx", f"HTTP {screen.status}: {screen.raw[:80]!r}")
        elif screen.status >= 400:
            tally.fail("http_4xx", f"HTTP {screen.status}: {screen.raw[:80]!r}")
        elif not screen.well_formed:
            tally.fail("unexpected_screens", f"out of format: {screen.raw[:80]!r}")
        elif not fits(screen.text, self.budget):
            tally.over_budget += 1
        return screen


async def browse(handset: Paced, service_code: str) -> None:
    """One browsing journey: a walk through the menus that ends back home, then hang up."""
    screen = _browsing(await handset.dial(service_code))
    if screen.text == RESUME_PROMPT:  # a journey before this one was cut off
        screen = _browsing(await handset.send("2"))  # Start again
    if not screen.text.startswith(HOME_TITLE):
        raise ShopperLost(f"dialling showed {screen.text!r}, not home", screen)
    for answer in BROWSE:
        _browsing(await handset.send(answer))
    handset.hang_up()


def _browsing(screen: Display) -> Display:
    if not screen.ok or screen.end or APOLOGY in screen.text:
        raise ShopperLost(f"browsing met {screen.text[:80]!r}", screen)
    return screen


async def _subscriber(
    config: LoadConfig,
    msisdn: str,
    index: int,
    http: aiohttp.ClientSession,
    tally: Tally,
    window: Window,
) -> None:
    """One handset: journey after journey, picked by the mix, until the window closes."""
    rng = random.Random(config.seed * 1_000_003 + index)
    phone = _Metered(
        config.url,
        msisdn,
        tally=tally,
        window=window,
        dialect=config.speaks,
        session=http,
        timeout=config.timeout,
    )
    network: Network | None = None
    if config.network is not None:

        def on_event(event: Event) -> None:
            if event.kind == "cut":  # the network's doing: counted, never sampled
                tally.errors["cut_sessions"] += 1

        network = Network(phone, config.network, seed=rng.randrange(2**32), on_event=on_event)
    gap = 0.0 if tells_answers_apart(config.speaks) else config.retry_window
    handset = Paced(network if network is not None else phone, gap)
    names = list(config.mix)
    weights = [config.mix[name] for name in names]
    while time.perf_counter() < window.end:
        journey = rng.choices(names, weights)[0]
        try:
            if journey == "browse":
                await browse(handset, config.service_code)
            else:
                shopper = Shopper(
                    handset, rng=rng, quantity=rng.randint(1, 2), dial=config.service_code
                )
                outcome = await shopper.order()
                if outcome.code is not None:
                    tally.codes.append(outcome.code)
            if window.holds(time.perf_counter()):  # counted as hops are: within the window
                tally.journeys[journey] += 1
                if journey == "order":
                    tally.outcomes[outcome.kind] += 1
        except _Closed:
            return
        except SessionCut:
            pass  # counted as it happened; the next journey dials afresh
        except ShopperLost as lost:
            if lost.screen is None or lost.screen.well_formed:  # else counted by the phone
                tally.fail("unexpected_screens", f"unexpected: {lost}")
            handset.hang_up()
        except PhoneError:
            await asyncio.sleep(ERROR_PAUSE)  # counted by the phone
        if network is not None:  # only the counts matter here: keep memory flat
            network.transcript.clear()
            network.responses.clear()


class ProgressBar:
    """One line on a terminal, rewritten in place: how far the run is and what it saw."""

    def __init__(self, stream: IO[str], duration: float, width: int = 24) -> None:
        self.stream = stream
        self.duration = duration
        self.width = width
        self.began = time.perf_counter()

    def update(self, tally: Tally) -> None:
        elapsed = min(time.perf_counter() - self.began, self.duration)
        done = int(self.width * elapsed / self.duration)
        hops = len(tally.latencies)
        failed = tally.error_count - tally.errors["cut_sessions"]
        line = (
            f"[{'#' * done}{'.' * (self.width - done)}] {elapsed:5.1f}/{self.duration:g} s  "
            f"{hops:,} hops  {hops / max(elapsed, 1e-9):,.0f}/s  "
            f"{tally.outcomes['placed']:,} orders  {failed:,} errors  "
            f"{tally.errors['cut_sessions']:,} cuts"
        )
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r\x1b[K")
        self.stream.flush()


async def run_load(config: LoadConfig, *, progress: ProgressBar | None = None) -> LoadReport:
    """Run ``config`` against its gateway and measure it."""
    tally = Tally()
    numbers = phone_numbers(config.subscribers, config.seed)
    connector = aiohttp.TCPConnector(limit=config.subscribers)
    async with aiohttp.ClientSession(connector=connector) as http:
        window = Window.after(0.0, config.duration)
        loops = [
            _subscriber(config, msisdn, i, http, tally, window) for i, msisdn in enumerate(numbers)
        ]

        async def measure() -> float:
            return cpu_seconds()

        tick = functools.partial(progress.update, tally) if progress is not None else None
        try:
            before, after = await run_window(
                loops, window, measure, tick=tick, grace=config.timeout + 1
            )
        finally:
            if progress is not None:
                progress.close()
    return _report(config, tally, after - before)


def _report(config: LoadConfig, tally: Tally, cpu: float) -> LoadReport:
    seconds = config.duration
    latencies = sorted(tally.latencies)
    journeys = {name: tally.journeys[name] for name in config.mix}
    warnings = []
    if config.retry_window > 0 and not tells_answers_apart(config.speaks):
        warnings.append(
            f"{config.speaks.name} cannot tell an answer given twice from a retry: each "
            f"repeated answer waited {config.retry_window:g} s (the retry window), so hops/s "
            "is the subscribers' pace, not the gateway's limit"
        )
    if cpu / seconds > BUSY_CORE:
        warnings.append(
            f"the load generator used {cpu / seconds:.0%} of a core: it may be what limits "
            "this run (fewer subscribers per process, or several processes)"
        )
    return LoadReport(
        url=config.url,
        dialect=config.speaks.name,
        network=config.network.name if config.network is not None else "good",
        subscribers=config.subscribers,
        duration_s=seconds,
        mix=dict(config.mix),
        seed=config.seed,
        hops=len(latencies),
        hops_per_s=len(latencies) / seconds,
        journeys=journeys,
        journeys_per_s=sum(journeys.values()) / seconds,
        orders_placed=tally.outcomes["placed"],
        orders_pending=tally.outcomes["pending"],
        orders_unseen=tally.outcomes["unseen"],
        sold_out=tally.outcomes["sold_out"],
        latency_ms={
            "p50": percentile(latencies, 50) * 1000,
            "p95": percentile(latencies, 95) * 1000,
            "p99": percentile(latencies, 99) * 1000,
            "max": (latencies[-1] if latencies else 0.0) * 1000,
        },
        errors={kind: tally.errors[kind] for kind in ERROR_KINDS},
        error_samples=list(tally.error_samples),
        screens_over_budget=tally.over_budget,
        loadgen_cpu=cpu / seconds,
        loadgen_cpu_s=cpu,
        warnings=warnings,
        codes=tuple(tally.codes),
    )
