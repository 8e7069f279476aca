"""A simulated subscriber who knows the shop's menus: reads each screen, answers it, redials.

``Shopper.order()`` shops and orders whatever the network does: cut off, it dials again and
answers Yes to "Continue where you left off?". It reads screens as a person does (a reason
may sit above the screen it explains), so a journey survives retries, late hops and cuts::

    async with Phone(url, "+8501919000001") as phone:
        outcome = await Shopper(Network(phone, FLAKY, seed=7)).order()
    print(outcome.kind, outcome.code)  # placed ABC234

It picks category ``category``, product ``product`` and ``quantity``; given an ``rng`` it
picks among the products still in stock instead, so a long load run does not stop at the
first sold-out product. Subclasses (the flaky-network tests) check more on each screen and
each redial by overriding ``see``, ``redial`` and ``texted``.

``Paced`` keeps a machine-speed subscriber from answering the same thing twice within the
gateway's retry window where the dialect cannot tell that from a retry.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

from simulators.errors import SimulatorError
from simulators.network import SessionCut
from simulators.phone import Dialect, Display, Handset, Hop

DIAL = "*123#"
ADDRESS = "Changjon street 5"
MAX_ANSWERS = 120  # a journey that needs more than this is lost in the menus
MAX_REDIALS = 30

RESUME_PROMPT = "Continue where you left off?\n1. Yes\n2. Start again"
HOME_TITLE = "Okryu Shop"
CART_COUNT = re.compile(r"^2\. Cart \((\d+)\)$", re.M)
PLACED = re.compile(r"^Order (\w+) placed\.")
PENDING = "Your order is being placed."
TEXTED = re.compile(r"^Okryu: order (\w+) placed\.")
APOLOGY = "not available right now"
_OPTION = re.compile(r"^(\d+)\. (.+)$")
_HOW_MANY = re.compile(r"^How many\? \(1-(\d+)\)$")

OutcomeKind = Literal["placed", "pending", "texted", "unseen", "sold_out"]


@dataclass(frozen=True)
class Outcome:
    """How an order journey ended.

    ``placed``: the subscriber saw "Order CODE placed."; ``pending``: "being placed";
    ``texted``: an SMS said so while the subscriber was cut off; ``unseen``: cut off after
    confirming, the subscriber redialled to an empty cart (the order went through unseen);
    ``sold_out``: nothing left to buy.
    """

    kind: OutcomeKind
    code: str | None = None


class ShopperLost(SimulatorError):
    """The shopper met a screen it cannot read or gave up: the journey failed."""

    def __init__(self, reason: str, screen: Display | None = None) -> None:
        super().__init__(reason)
        self.screen = screen


class Shopper:
    """Knows the menus: answers what each screen asks, and redials whenever cut off."""

    def __init__(
        self,
        handset: Handset,
        *,
        category: int = 1,
        product: int = 1,
        quantity: int = 1,
        address: str = ADDRESS,
        dial: str = DIAL,
        rng: random.Random | None = None,
    ) -> None:
        self.handset = handset
        self.category = category
        self.product = product
        self.quantity = quantity
        self.address = address
        self.dial = dial
        self.rng = rng
        self.confirming = False  # past the Payment screen: a cut may hide a placed order
        self._category_name = ""
        self._exhausted: set[str] = set()  # categories with nothing left (rng mode)

    async def order(self) -> Outcome:
        """Dial, shop and order, whatever the network does."""
        screen = await self.redial()
        for _ in range(MAX_ANSWERS):
            if isinstance(screen, Outcome):
                return screen
            if screen.end:
                return self.finish(screen)
            answer = self.answer(screen.text)
            if answer is None:
                return Outcome("sold_out")
            try:
                screen = self.see(await self.handset.send(answer))
            except SessionCut:
                screen = await self.redial()
        raise ShopperLost(f"no order after {MAX_ANSWERS} answers")

    def answer(self, text: str) -> str | None:
        """The answer to a screen, read as a subscriber reads it (a reason may sit on top).

        None when there is nothing left to buy.
        """
        lines = text.split("\n")
        if (count := CART_COUNT.search(text)) is not None:  # home
            return "2" if int(count.group(1)) > 0 else "1"
        if lines[-2:] == RESUME_PROMPT.split("\n")[-2:]:
            return "1"  # Yes, continue
        if "Categories" in lines:
            return self._pick_category(lines)
        if self._category_name and self._category_name in lines:
            return self._pick_product(lines)
        if "1. Add to cart" in lines:
            return "1"
        if "Sold out" in lines:  # a product that sold out since the list was drawn
            return "0"
        if (limit := _match_any(_HOW_MANY, lines)) is not None:
            return str(min(self.quantity, int(limit.group(1))))
        if "1. Shop" in lines:  # an empty cart
            return "1"
        if any(line.startswith("Cart (") for line in lines):
            return "1"  # Checkout
        if "Change which item?" in lines:
            return "0"
        if "Delivery district" in lines:
            return "1"
        if "Delivery address?" in lines:
            return self.address
        if "Payment" in lines:
            self.confirming = True
            return "1"
        if "1. Confirm" in lines:
            self.confirming = True
            return "2" if lines[0] == "Your cart is empty." else "1"
        return "00"  # somewhere a stray hop led: home

    def finish(self, screen: Display) -> Outcome:
        """What a last screen says: placed (with its code) or pending."""
        if (placed := PLACED.match(screen.text)) is not None:
            return Outcome("placed", placed.group(1))
        if screen.text.startswith(PENDING):
            return Outcome("pending")
        raise ShopperLost(f"the session ended on {screen.text!r}", screen)

    async def texted(self) -> Outcome | None:
        """The order an SMS confirmed while the subscriber was cut off, if any (none here)."""
        return None

    async def redial(self) -> Display | Outcome:
        """Dial until a screen arrives; continue where the cut left off if offered.

        Cut off after confirming, a home screen with an empty cart means the order went
        through while its screen was lost.
        """
        for _ in range(MAX_REDIALS):
            if (texted := await self.texted()) is not None:
                return texted
            try:
                screen = self.see(await self.handset.dial(self.dial))
                if screen.text == RESUME_PROMPT:
                    return await self.resume()
            except SessionCut:
                continue
            count = CART_COUNT.search(screen.text)
            if self.confirming and count is not None and count.group(1) == "0":
                return Outcome("unseen")
            return screen
        raise ShopperLost(f"still cut off after {MAX_REDIALS} dials")

    async def resume(self) -> Display:
        """Answer Yes to the offer to continue."""
        return self.see(await self.handset.send("1"))

    def see(self, screen: Display) -> Display:
        """A screen the handset shows: a 200 in format, and no apology."""
        if not screen.ok:
            raise ShopperLost(f"HTTP {screen.status}: {screen.raw[:100]!r}", screen)
        if APOLOGY in screen.text:
            raise ShopperLost(f"the gateway apologised: {screen.text!r}", screen)
        return screen

    def _pick_category(self, lines: list[str]) -> str | None:
        options = _options(lines)
        if self.rng is None:
            chosen = options.get(str(self.category))
            self._category_name = chosen or ""
            return str(self.category)
        left = [n for n, name in options.items() if name not in self._exhausted]
        if not left:
            return None
        number = self.rng.choice(left)
        self._category_name = options[number]
        return number

    def _pick_product(self, lines: list[str]) -> str:
        if self.rng is None:
            return str(self.product)
        options = _options(lines)
        left = [n for n, label in options.items() if not label.endswith(" sold out")]
        if left:
            return self.rng.choice(left)
        if "98 More" in lines:
            return "98"
        self._exhausted.add(self._category_name)
        return "00"  # home, then another category


def _options(lines: list[str]) -> dict[str, str]:
    """The numbered choices of a screen: number -> label."""
    return {m.group(1): m.group(2) for line in lines if (m := _OPTION.match(line)) is not None}


def _match_any(pattern: re.Pattern[str], lines: list[str]) -> re.Match[str] | None:
    for line in lines:
        if (match := pattern.match(line)) is not None:
            return match
    return None


def tells_answers_apart(dialect: Dialect) -> bool:
    """Whether the same answer twice reaches the gateway as two different requests.

    Africa's Talking sends the whole path, Hubtel a hop number; Arkesel, Nalo and HollaTags
    send only the newest answer, so the gateway takes the same answer again within its
    retry window for the aggregator's retry of the first.
    """
    once = Hop("s", DIAL, "+8501910000000", "99999", ("1",))
    return dialect.encode(once) != dialect.encode(replace(once, inputs=("1", "1")))


class Paced:
    """A handset whose subscriber never repeats an answer within ``gap`` seconds of the last.

    Wraps any handset; with ``gap`` 0 it only passes calls on. A person takes longer than a
    retry window to read a screen, a load generator does not.
    """

    def __init__(
        self,
        handset: Handset,
        gap: float,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handset = handset
        self.gap = gap
        self._sleep = sleep
        self._clock = clock
        self._last: str | None = None
        self._at = 0.0

    @property
    def in_session(self) -> bool:
        return self.handset.in_session

    async def dial(self, service_code: str) -> Display:
        self._last = None
        return await self.handset.dial(service_code)

    async def send(self, answer: str) -> Display:
        if self.gap > 0 and answer == self._last:
            wait = self._at + self.gap - self._clock()
            if wait > 0:
                await self._sleep(wait)
        try:
            return await self.handset.send(answer)
        finally:
            self._last, self._at = answer, self._clock()

    def hang_up(self) -> None:
        self._last = None
        self.handset.hang_up()
