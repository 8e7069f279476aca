"""The web handset's server side: an aggregator that a browser drives, at ``/simulator/``.

The page never speaks an aggregator's dialect itself. Each browser session gets a handle to
one :class:`~simulators.phone.Phone` behind a :class:`~simulators.network.Network`, held
here; the phone calls this same gateway's ``/ussd/<slug>`` over real HTTP in the chosen
dialect, exactly as that aggregator would, and the page sees the screens::

    POST /simulator/api/sessions         {"msisdn": "+8501912345678", "dialect": "hubtel",
                                          "network": "flaky", "seed": 7}
    200  {"handle": "Yq3...", "msisdn": "+8501912345678", "seed": 7, ...}

    POST /simulator/api/sessions/Yq3.../dial   {"code": "*123#"}
    200  {"text": "Okryu Shop\\n1. Shop\\n2. Cart (0)...", "end": false, "status": 200,
          "encoding": "gsm7", "units": 63, "limit": 160, "cut": false, "error": false,
          "events": ["0.0s  dial      *123#", "0.0s  screen    200 CON 'Okryu Shop..."]}

``send`` ({"answer": "1"}) and ``cancel`` answer the same way (a cut: ``"cut": true``, the
reason as text, no encoding); ``GET .../transcript`` is the whole session as a text file;
``GET /simulator/api/options`` lists the dialects, networks and defaults. The SMS inbox
beside the phone reads the gateway's own ``/dev/sms``. The time between screens is the
subscriber's real time, so the network cuts one silent for 30 s, as real networks do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from gateway import keys
from gateway.auth import SECRET_HEADER
from gateway.channels import Channel, load_channels
from gateway.channels.atcompat import AtCompatible
from gateway.edge import Handler, edge
from gateway.errors import GatewayError
from gateway.messages import MAX_USSD_STRING, BadRequest
from gateway.numbers import normalise_msisdn
from menus.screens import Budget, measure
from simulators.network import PROFILES, Network, SessionCut, VirtualClock
from simulators.phone import (
    DEFAULT_PHONE,
    DIALECTS,
    Dialect,
    Display,
    Hop,
    HttpRequest,
    Phone,
    PhoneError,
    at_compatible,
    draw_screen,
)
from simulators.scenario import SessionEvent, save_scenario
from simulators.ussdc import DEFAULT_HTTP_PORT, SMPP

STATIC = Path(__file__).parent / "static" / "simulator"
IDLE_TIMEOUT = 1800.0  # seconds a handle lives without being used
CAPACITY = 1000  # handles held at once; the least recently used goes first
MAX_ACTIONS = 2000  # dials and answers one handle may make: bounds its transcript
DIAL_CODE = re.compile(r"\*[0-9][0-9*]{0,38}#")
LABELS = {"gsm7": "GSM-7", "ucs2": "UCS-2"}


class Refused(GatewayError):
    """The browser asked for something the simulator cannot do: a 4xx with ``reason``."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass
class WebHandset:
    """One browser session's phone, the network in front of it, and what it has shown."""

    handle: str
    msisdn: str
    dialect: str
    url: str
    budget: Budget
    phone: Phone
    network: Network
    used: float  # when the handle was last used (the registry's clock)
    shown: float  # when the subscriber last saw a screen: the time they took to answer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    lines: list[str] = field(default_factory=list)  # the transcript
    recorded: list[SessionEvent] = field(default_factory=list)  # for "save as scenario"
    actions: int = 0
    events_seen: int = 0

    def new_events(self) -> list[str]:
        """The network's transcript lines since the last call."""
        events = self.network.transcript[self.events_seen :]
        self.events_seen = len(self.network.transcript)
        return [str(event).strip() for event in events]


class WebHandsets:
    """Handles to handsets: a bounded LRU whose entries expire after ``idle`` seconds."""

    def __init__(
        self,
        *,
        idle: float = IDLE_TIMEOUT,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle = idle
        self.capacity = capacity
        self.clock = clock
        self._held: OrderedDict[str, WebHandset] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    async def add(self, handset: WebHandset) -> None:
        """Hold ``handset``, letting the least recently used go if full."""
        await self.expire()
        while len(self._held) >= self.capacity:
            _, oldest = self._held.popitem(last=False)
            await oldest.phone.close()
        self._held[handset.handle] = handset

    async def get(self, handle: str) -> WebHandset:
        """The handset of ``handle``, now used; :class:`Refused` (404) if unknown or expired."""
        await self.expire()
        handset = self._held.get(handle)
        if handset is None:
            raise Refused("unknown or expired handset: start a new session", 404)
        self._held.move_to_end(handle)
        handset.used = self.clock()
        return handset

    async def expire(self) -> None:
        """Close the handsets unused for ``idle`` seconds (the oldest are first in line)."""
        now = self.clock()
        while self._held:
            oldest = next(iter(self._held.values()))
            if now - oldest.used <= self.idle:
                break
            del self._held[oldest.handle]
            await oldest.phone.close()

    async def close(self) -> None:
        """Close every handset."""
        while self._held:
            _, handset = self._held.popitem()
            await handset.phone.close()


@dataclass(frozen=True)
class Simulator:
    """What the simulator's handlers share: the handsets, the dialects, one HTTP client."""

    handsets: WebHandsets
    speakers: Mapping[str, Dialect]  # slug -> how an aggregator on that slug talks
    http: aiohttp.ClientSession
    base_url: str | None  # where the gateway is; None: the socket the browser's request hit
    # Dialects whose handsets call elsewhere than the gateway: smpp's, the USSD centre's door.
    doors: Mapping[str, str] = dataclasses.field(default_factory=dict)


SIMULATOR = web.AppKey("simulator", Simulator)


def add_simulator_routes(
    app: web.Application,
    *,
    base_url: str | None = None,
    idle: float = IDLE_TIMEOUT,
    capacity: int = CAPACITY,
    clock: Callable[[], float] = time.monotonic,
    ussd_centre: str | None = None,
) -> None:
    """Serve the web handset at ``/simulator/`` and its API at ``/simulator/api/``.

    ``base_url`` (``http://gateway:8080``) is where the phones call; by default the address
    the browser's request arrived on, so they always reach this same gateway. With the smpp
    channel on, ``ussd_centre`` is the USSD centre simulator's handset door (by default on
    its usual port at the host the gateway binds to).
    """
    settings = app[keys.SETTINGS]
    speakers = speakers_of(load_channels(settings.channels_file))
    doors: dict[str, str] = {}
    if settings.ussd_smpp:
        # The USSD centre simulator (python -m simulators.ussdc) takes handsets on its own
        # door beside the SMPP port it listens on; a real centre's handsets are real phones.
        speakers[SMPP.name] = SMPP
        door = f"http://{settings.ussd_smpp_host}:{DEFAULT_HTTP_PORT}/ussd"
        doors[SMPP.name] = ussd_centre or door
    handsets = WebHandsets(idle=idle, capacity=capacity, clock=clock)

    async def simulator_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as http:
            gateway = base_url.rstrip("/") if base_url else None
            app[SIMULATOR] = Simulator(handsets, speakers, http, gateway, doors)
            try:
                yield
            finally:
                await handsets.close()

    app.cleanup_ctx.append(simulator_ctx)
    api = "/simulator/api"
    app.router.add_get(f"{api}/options", edge(_json_errors(options)))
    app.router.add_post(f"{api}/sessions", edge(_json_errors(create_session)))
    app.router.add_post(f"{api}/sessions/{{handle}}/dial", edge(_json_errors(dial)))
    app.router.add_post(f"{api}/sessions/{{handle}}/send", edge(_json_errors(send)))
    app.router.add_post(f"{api}/sessions/{{handle}}/cancel", edge(_json_errors(cancel)))
    app.router.add_get(f"{api}/sessions/{{handle}}/transcript", edge(_json_errors(transcript)))
    app.router.add_get(f"{api}/sessions/{{handle}}/scenario", edge(_json_errors(scenario)))
    app.router.add_get("/simulator", edge(_to_index))
    app.router.add_get("/simulator/", edge(index))
    app.router.add_static("/simulator/", STATIC, append_version=False)


def speakers_of(channels: Mapping[str, Channel]) -> dict[str, Dialect]:
    """How to talk to each channel the gateway serves: a built-in dialect or AT's renamed."""
    speakers: dict[str, Dialect] = {}
    for slug, channel in channels.items():
        if slug in DIALECTS:
            speakers[slug] = DIALECTS[slug]
        elif isinstance(channel, AtCompatible):
            speakers[slug] = at_compatible(slug, channel.method, channel.fields)
    return speakers


# --- handlers -------------------------------------------------------------------------------


def _json_errors(handler: Handler) -> Handler:
    """Answer a refusal as JSON ``{"error": reason}`` with its 4xx status."""

    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (Refused, BadRequest) as error:
            return web.json_response({"error": error.reason}, status=error.status)

    return answer


async def index(request: web.Request) -> web.StreamResponse:
    response = web.FileResponse(STATIC / "index.html")
    # Everything the page needs comes from here: no CDN, no inline script.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    )
    return response


async def _to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/simulator/")


async def options(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    simulator = request.app[SIMULATOR]
    dialects = []
    for slug in simulator.speakers:
        budget = settings.budget_for(slug)
        dialects.append({"slug": slug, "budget": {"gsm7": budget.gsm7, "ucs2": budget.ucs2}})
    return web.json_response(
        {
            "dialects": dialects,
            "networks": list(PROFILES),
            "service_code": settings.service_code,
            "msisdn": DEFAULT_PHONE,
        }
    )


async def create_session(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    simulator = request.app[SIMULATOR]
    body = await _body(request)
    msisdn = normalise_msisdn(_text(body, "msisdn", DEFAULT_PHONE), settings.default_region)
    slug = _text(body, "dialect", "africastalking")
    speaker = simulator.speakers.get(slug)
    if speaker is None:
        raise Refused(f"unknown dialect {slug!r}; known: {', '.join(simulator.speakers)}")
    profile = _text(body, "network", "good")
    if profile not in PROFILES:
        raise Refused(f"unknown network {profile!r}; known: {', '.join(PROFILES)}")
    seed = body.get("seed")
    if seed is None:
        seed = random.randrange(2**32)
    elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise Refused("seed must be a whole number from 0 to 2**63 - 1")
    secret = settings.auth_for(slug).secret
    if secret is not None:  # an aggregator configured with a secret sends it on every hop
        speaker = _signed(speaker, secret)
    url = simulator.doors.get(slug) or f"{simulator.base_url or _this_gateway(request)}/ussd/{slug}"
    phone = Phone(url, msisdn, dialect=speaker, session=simulator.http)
    now = simulator.handsets.clock()
    handset = WebHandset(
        handle=secrets.token_urlsafe(16),
        msisdn=msisdn,
        dialect=slug,
        url=url,
        budget=settings.budget_for(slug),
        phone=phone,
        network=Network(phone, profile, seed=seed, clock=VirtualClock()),
        used=now,
        shown=now,
    )
    handset.lines += [
        "Okryu web handset transcript",
        f"phone {msisdn}, dialect {slug} ({url}), network {profile} (seed {seed})",
        f"started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
    ]
    await simulator.handsets.add(handset)
    return web.json_response(
        {
            "handle": handset.handle,
            "msisdn": msisdn,
            "dialect": slug,
            "network": profile,
            "seed": seed,
        }
    )


async def dial(request: web.Request) -> web.Response:
    code = _text(await _body(request), "code", "").strip()
    if not DIAL_CODE.fullmatch(code):
        raise Refused(f"dial a service code like *123# or *123*1#, not {code!r}")
    handset = await _handset(request)
    async with handset.lock:
        _count(handset)
        think = _think(request, handset)
        handset.lines += ["", f"> dial {code}"]
        handset.recorded.append(SessionEvent("dial", code))
        return await _exchange(handset, handset.network.dial(code, think=think))


async def send(request: web.Request) -> web.Response:
    answer = _text(await _body(request), "answer", "")
    if len(answer) > MAX_USSD_STRING or not answer.isprintable():
        raise Refused(f"an answer is at most {MAX_USSD_STRING} printable characters")
    handset = await _handset(request)
    async with handset.lock:
        if not handset.network.in_session:
            raise Refused("no USSD session is open: dial first", 409)
        _count(handset)
        think = _think(request, handset)
        handset.lines += ["", f"> send {answer!r}"]
        handset.recorded.append(SessionEvent("answer", answer))
        return await _exchange(handset, handset.network.send(answer, think=think))


async def cancel(request: web.Request) -> web.Response:
    handset = await _handset(request)
    async with handset.lock:
        handset.network.hang_up()
        handset.shown = request.app[SIMULATOR].handsets.clock()
        handset.lines += ["", "> cancel"]
        handset.recorded.append(SessionEvent("hangup"))
        return _shown(handset, None)


async def transcript(request: web.Request) -> web.Response:
    handset = await _handset(request)
    name = f"okryu-{handset.msisdn.lstrip('+')}-{handset.dialect}.txt"
    return web.Response(
        text="\n".join(handset.lines) + "\n",
        content_type="text/plain",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def scenario(request: web.Request) -> web.Response:
    """The session so far as a scenario file, to replay with ``okryu phone --script``."""
    handset = await _handset(request)
    name = f"okryu-{handset.dialect}.scn"
    return web.Response(
        text=save_scenario(handset.recorded, f"Recorded in the web handset ({handset.dialect})"),
        content_type="text/plain",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- helpers --------------------------------------------------------------------------------


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.body_exists else {}
    except ValueError:
        raise Refused("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object")
    return body


def _text(body: Mapping[str, Any], name: str, default: str) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise Refused(f"{name} must be a string")
    return value


async def _handset(request: web.Request) -> WebHandset:
    return await request.app[SIMULATOR].handsets.get(request.match_info["handle"])


def _count(handset: WebHandset) -> None:
    if handset.actions >= MAX_ACTIONS:
        raise Refused(f"this handset has made {MAX_ACTIONS} hops: start a new session", 429)
    handset.actions += 1


def _think(request: web.Request, handset: WebHandset) -> float:
    """The seconds since the subscriber saw the last screen: how long they took."""
    now = request.app[SIMULATOR].handsets.clock()
    think, handset.shown = max(0.0, now - handset.shown), now
    return think


def _this_gateway(request: web.Request) -> str:
    """The socket the browser's request arrived on: it always reaches this gateway.

    The Host header could name any host, and a proxy in front may not pass USSD paths.
    """
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        scheme = "https" if request.secure else "http"
        return str(URL.build(scheme=scheme, host=str(sockname[0]), port=int(sockname[1])))
    return str(request.url.origin())


def _signed(dialect: Dialect, secret: str) -> Dialect:
    def encode(hop: Hop) -> HttpRequest:
        request = dialect.encode(hop)
        return dataclasses.replace(request, headers={**request.headers, SECRET_HEADER: secret})

    return dataclasses.replace(dialect, encode=encode)


async def _exchange(handset: WebHandset, hop: Awaitable[Display]) -> web.Response:
    """Make the hop; what the handset shows, whether a screen, a cut or a failure."""
    try:
        screen = await hop
    except SessionCut as cut:
        return _shown(handset, None, f"{cut}", cut=True)
    except PhoneError as error:
        return _shown(handset, None, f"Connection problem: {error}", error=True)
    return _shown(handset, screen)


def _shown(
    handset: WebHandset,
    screen: Display | None,
    note: str = "",
    *,
    cut: bool = False,
    error: bool = False,
) -> web.Response:
    """The JSON the page draws: the screen, its size in its encoding, the network's events.

    Without a screen (a cut, a failure, a cancel) the handset shows ``note``.
    """
    events = handset.new_events()
    handset.lines += [f"  ~ {event}" for event in events]
    if screen is None:
        if cut:
            handset.recorded.append(SessionEvent("hangup"))
        if note:
            handset.lines.append(f"({note})")
        return web.json_response(
            {"text": note, "end": True, "status": 0, "encoding": None, "units": None}
            | {"limit": None, "cut": cut, "error": error, "events": events}
        )
    handset.recorded.append(SessionEvent("screen", screen.text, screen.end))
    size = measure(screen.text)
    limit = handset.budget.limit(size.encoding)
    handset.lines += [draw_screen(screen), f"{LABELS[size.encoding]} {size.units}/{limit}"]
    return web.json_response(
        {"text": screen.text, "end": screen.end, "status": screen.status}
        | {"encoding": size.encoding, "units": size.units, "limit": limit}
        | {"cut": False, "error": False, "events": events}
    )
