"""The USSD hop under load: the real gateway against a bare aiohttp + Redis baseline.

    .venv/bin/python bench/hop.py [--subscribers 50] [--seconds 5] [--rounds 3] [--workers 2]
                                  [--postgres URL] [--sessions 100000] [--json]   # or: make bench

Each server runs in its own process tree, so the load generator (this process, a lean
HTTP/1.1 client on raw sockets) does not share an event loop with the server under test. The
gateway runs as ``okryu serve`` does in production (uvloop, no access log); the baseline parses
the same form and makes the same two Redis round trips as a browsing hop (``GET`` of the
session key, then a compare-and-set script that ``SET``s ~300 bytes with a TTL) and answers a
fixed screen: what is left between the two is the gateway's own work.

Scenarios, each with N concurrent subscribers (each its own phone number and sessions):

* ``browse``: menus and pages, a fresh session every 8 hops; no SQL after a subscriber's first
  dial, which falls in the warm-up. Against the baseline, one gateway worker and
  ``--workers`` gateway workers (``okryu serve --workers N``).
* ``order``: whole order journeys, 10 hops each, the last confirming the order, on one worker.
* with ``--postgres URL`` (or ``OKRYU_BENCH_POSTGRES_URL``): browse and order again on
  PostgreSQL, one worker.
* ``--sessions N``: after its runs, N more sessions on the one-worker gateway, each a new
  subscriber's dial; then the resident memory of its process.

Runs that a target compares are taken in turns (``--rounds`` windows of ``--seconds`` each,
every server up at once): baseline, one worker, N workers; PostgreSQL browse, PostgreSQL
order. One long run after another measured how the shared host's speed drifted as much as
the servers (the same code measured 0.53x, 0.72x and 1.22x on successive runs here).

The targets it checks (issue 10): browse at least 0.5x the baseline's hops/s and p99 within
3x; on SQLite, 50 subscribers ordering with every hop's p99 under 500 ms and no confirm past
the hop deadline; on PostgreSQL, order journeys at least 0.8x the browse hop rate; N workers
at least 1.4x one worker's hops/s with hops per CPU-second at least 0.9x; under 150 MB per
worker after the sessions.

Redis: ``OKRYU_BENCH_REDIS_URL``, else ``redis://127.0.0.1:6379/0`` if it answers, else an
embedded redis-server. Every key lives under a fresh prefix and is deleted afterwards. Database:
``OKRYU_BENCH_DATABASE_URL``, else a fresh SQLite file in a temporary directory. The bench
places orders and tops up the stock of the one product it orders, so point the database
URLs only at scratch databases. Every session id carries the run's own random id: an order's
idempotency key is made from its session id, and a run reusing an earlier run's ids on the
same database would have its confirms answered with that run's orders (replays, placing
nothing). Each order run counts the confirms it was answered and the orders with its run's
keys in the database; a confirm without its own order fails the order target. With a local
PostgreSQL server, the ``pg`` column is the CPU of that whole cluster's processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import quote_plus, urlencode

import uvloop
from aiohttp import web
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

# The load generator's pieces, shared with `okryu load`.
from simulators.load import (
    ERROR_PAUSE,
    HOP_TIMEOUT,
    Tally,
    Window,
    cpu_seconds,
    percentile,
    proc_stat,
    process_cpu,
    run_window,
    share,
    stat_cpu,
)

# The gateway is imported only where it runs: the baseline's process should not carry the
# gateway's modules (a bigger heap makes every full garbage collection slower).
if TYPE_CHECKING:
    from gateway.embedded_redis import EmbeddedRedis

Scenario = Literal["browse", "order", "sessions"]

AT_PATH = "/ussd/africastalking"
SERVICE_CODE = "*123#"
NETWORK_CODE = "99999"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "")  # "": a Unix socket
POSTGRES_COMMAND = "postgres"  # the command name of every process of a PostgreSQL cluster
READY = "ready"
BANNER = "Okryu gateway on "  # what `okryu serve` prints once every worker answers

# Home, Shop, Food, its next page, back a page, a product (the second of Food), back, home.
# Every hop answers CON.
# The session restarts after the last one (so ``text`` stays short) and ends on the home
# screen, so the next dial starts afresh instead of offering "Continue where you left off?".
BROWSE_LOOP: tuple[str, ...] = (
    "",
    "1",
    "1*1",
    "1*1*98",
    "1*1*98*0",
    "1*1*98*0*2",
    "1*1*98*0*2*0",
    "1*1*98*0*2*0*00",
)
HOME_SCREEN = "CON Okryu Shop\n"  # what the gateway answers the first dial of each session
_ADDRESS = "1*1*2*1*2*1*1*Changjon street 5"
# Home, Shop, Food, White rice, Add to cart, quantity 2, Checkout, district 1, the address
# (cash on delivery, the one way to pay, is chosen without a screen), Confirm.
ORDER_JOURNEY: tuple[str, ...] = (
    "",
    "1",
    "1*1",
    "1*1*2",
    "1*1*2*1",
    "1*1*2*1*2",
    "1*1*2*1*2*1",
    "1*1*2*1*2*1*1",
    _ADDRESS,
    f"{_ADDRESS}*1",
)
SESSION_DIAL: tuple[str, ...] = ("",)  # --sessions: one dial per session, a new number each
ORDERED_SKU = "FD-RICE5"  # the product ORDER_JOURNEY buys (category 1, product 2)
# The demo stock (25) would sell out in the first second; a sold-out product is a different
# journey, not a slower one.
BENCH_STOCK = 10_000_000

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
WATCHDOG_INTERVAL = 1.0
SCAN_BATCH = 500
LOGGED_ERRORS = 3  # per baseline process; the bench's own error count is the full tally

# Targets (issue 10), each checked on figures of this one run.
TARGET_THROUGHPUT = 0.5  # browse: gateway hops/s at least this fraction of the baseline's
TARGET_P99 = 3.0  # and its p99 at most this multiple of the baseline's
TARGET_ORDER_P99_MS = 500.0  # SQLite, order journeys: every hop's p99 below this
TARGET_PG_ORDER = 0.8  # PostgreSQL: order hops/s at least this fraction of browse hops/s
TARGET_WORKERS = 1.4  # N workers' browse hops/s at least this multiple of one worker's
TARGET_WORKER_EFFICIENCY = 0.9  # and their hops per CPU-second at least this fraction
TARGET_RSS_MB = 150.0  # resident memory per worker after --sessions sessions
BUSY_CORE = 0.9  # a process above this share of a core may be what limits a run
ROUNDS = 3  # windows of each scenario, taken in turn with those it is compared to
ROUND_NUMBERS = 100_000  # each round's subscribers: this much further on in the numbering
RUN_ID = secrets.token_hex(4)  # in every session id: no replays of another run's orders
CONFIRMED = "confirmed"  # Tally.outcomes: order journeys answered "END Order ...", any time

# The baseline's stand-ins for the gateway's screen and session record (similar sizes).
BASELINE_SCREEN = (
    "CON Food\n1. Corn noodles KPW 4,500\n2. White rice 5 kg KPW 28,000\n"
    "3. Instant noodles KPW 1,200\n98 More\n0 Back 00 Home"
)
BASELINE_RECORD_BYTES = 300
BASELINE_TTL = 86400
# The same compare-and-set as the gateway's session save, kept separate on purpose: the
# baseline must not speed up or slow down when the gateway's code changes.
_BASELINE_CAS = """
local current = redis.call('GET', KEYS[1])
local version = 0
if current then version = tonumber(string.match(current, '^(%d+)|')) or 0 end
if version ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
BASELINE_REDIS: web.AppKey[Redis] = web.AppKey("redis", Redis)
BASELINE_CAS: web.AppKey[AsyncScript] = web.AppKey("cas", AsyncScript)
BASELINE_PREFIX: web.AppKey[str] = web.AppKey("prefix", str)


# --- the baseline server (runs in a subprocess) ------------------------------------------------


async def serve_baseline(port: int, redis_url: str, prefix: str) -> None:
    """Serve the baseline until SIGTERM or until the parent is gone; print the port."""
    logging.basicConfig(level=logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_FirstFew(LOGGED_ERRORS))
    runner = web.AppRunner(baseline_app(redis_url, prefix), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        bound = runner.addresses[0][1]  # port 0 asks the kernel for a free one: no race
        print(f"{READY} {bound}", flush=True)
        await _until_told_to_stop()
    finally:
        await runner.cleanup()


class _FirstFew(logging.Filter):
    """Let the first ``limit`` records through, then only say that more were dropped."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.seen += 1
        if self.seen == self.limit + 1:
            record.msg, record.args, record.exc_info = "(further errors not logged)", (), None
            record.exc_text = None
            return True
        return self.seen <= self.limit


async def _until_told_to_stop() -> None:
    """Return on SIGTERM or SIGINT, or when the parent dies (so no server outlives a crash)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCHDOG_INTERVAL)
        if os.getppid() != parent:
            return


def baseline_app(redis_url: str, prefix: str) -> web.Application:
    """A bare aiohttp app with the browsing hop's I/O and none of its logic."""
    app = web.Application()
    app[BASELINE_PREFIX] = prefix
    app.cleanup_ctx.append(_baseline_redis(redis_url))
    app.router.add_post(AT_PATH, baseline_hop)
    return app


def _baseline_redis(url: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        client = Redis.from_url(url)
        app[BASELINE_REDIS] = client
        app[BASELINE_CAS] = client.register_script(_BASELINE_CAS)  # EVALSHA, as the gateway
        try:
            yield
        finally:
            await client.aclose()

    return redis_ctx


async def baseline_hop(request: web.Request) -> web.Response:
    """Parse the form, load and compare-and-set a session record, answer a fixed screen."""
    form = await request.post()
    fields: dict[str, str] = {}
    for name in ("sessionId", "serviceCode", "phoneNumber", "text"):
        value = form.get(name)
        if not isinstance(value, str):
            return web.Response(status=400, text=f"missing field {name}")
        fields[name] = value
    redis = request.app[BASELINE_REDIS]
    prefix = request.app[BASELINE_PREFIX]
    key = f"{prefix}s:{{{fields['serviceCode']}:{fields['phoneNumber']}}}"
    raw = await redis.get(key)
    version = int(cast(bytes, raw).partition(b"|")[0]) if raw else 0  # bytes: no decoding
    record = _baseline_record(version + 1, fields["sessionId"], fields["text"])
    await request.app[BASELINE_CAS](keys=[key], args=[version, record, BASELINE_TTL])
    return web.Response(text=BASELINE_SCREEN, content_type="text/plain", charset="utf-8")


def _baseline_record(version: int, ref: str, text: str) -> bytes:
    """A session record of the gateway's shape, padded to BASELINE_RECORD_BYTES."""
    body = {"ref": ref, "path": text.split("*") if text else [], "st": "browsing", "pad": ""}
    record = b"%d|" % version + json.dumps(body, separators=(",", ":")).encode()
    body["pad"] = "x" * max(0, BASELINE_RECORD_BYTES - len(record))
    return b"%d|" % version + json.dumps(body, separators=(",", ":")).encode()


# --- the load generator ---------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One scenario against one server."""

    scenario: Scenario
    server: str  # "baseline", "gateway", "gateway x2", ...
    database: str  # "sqlite", "postgresql", or "-" for the baseline
    seconds: float
    hops: int
    hops_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    journeys_per_s: float | None
    server_cpu: float | None  # share of one core over the window, the whole process tree
    redis_cpu: float | None
    loadgen_cpu: float
    rss_mb: float | None  # the largest resident set among the server's processes, at the end
    error_samples: list[str]
    # the local PostgreSQL cluster's processes (None: SQLite, in the server's own, or remote)
    database_cpu: float | None = None
    confirms: int | None = None  # order runs: confirms answered, warm-ups included
    orders_placed: int | None = None  # order runs: orders with this run's keys in the database

    @property
    def hops_per_cpu_s(self) -> float | None:
        return self.hops_per_s / self.server_cpu if self.server_cpu else None


def phone_number(scenario: Scenario, index: int) -> str:
    """A distinct E.164 number per subscriber and scenario (``sessions``: ``index`` counts
    sessions, each a new subscriber; a round's subscribers are ``ROUND_NUMBERS`` further on)."""
    base = {"browse": 10_000_000, "order": 20_000_000, "sessions": 30_000_000}[scenario]
    return f"+85019{base + index:08d}"


def expected_prefixes(server: str, journey: Sequence[str], step: int) -> tuple[str, ...]:
    """What a correct answer starts with.

    Exact for the gateway: its error screen is an END too, and a session that drifted off the
    script (a resume offer, a refused input) would measure some other journey.
    """
    if server == "baseline":
        return ("CON ", "END ")
    if step == 0:
        return (HOME_SCREEN,)
    if journey is ORDER_JOURNEY and step == len(journey) - 1:
        return ("END Order ",)  # not "being placed": that confirm outlasted the hop deadline
    return ("CON ",)


@dataclass
class Target:
    """The server a run drives: its port, and the processes whose CPU it uses."""

    label: str
    database: str
    port: int
    root_pid: int
    pids: Callable[[], list[int]]
    process: asyncio.subprocess.Process
    database_host: str | None = None  # the database server's host ("": a Unix socket)


class _Handset(asyncio.Protocol):
    """One subscriber's keep-alive HTTP/1.1 connection, its journeys driven from the socket's
    own callbacks: each answer read sends the next hop from ``data_received``.

    The load generator shares the cores it measures, so each hop it sends is CPU the servers
    do not get. aiohttp's client spent about as much per hop as the server under test; a
    coroutine per subscriber awaiting a future per hop (a task step, a future and a timer
    each) still took ~27 us a hop, 30% of a core against two workers. Here a hop is a write
    and a parse: no task, future or timer per hop. The rare events (a lost connection, a hop
    past ``HOP_TIMEOUT``, the end) go to ``subscriber``, which watches once a second.
    """

    def __init__(self, drive: _Drive) -> None:
        self.drive = drive
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while (head_end := buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(buffer[:head_end])
            found = _LENGTH.search(head)
            total = head_end + 4 + (int(found.group(1)) if found else 0)
            if len(buffer) < total:
                return
            status = int(head[9:12])
            body = bytes(buffer[head_end + 4 : total])
            del buffer[:total]
            self.drive.answered(status, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.drive.lost(ConnectionError(f"connection lost: {exc}"))  # with no hop out: nothing


_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_JOURNEYS: dict[Scenario, tuple[str, ...]] = {
    "browse": BROWSE_LOOP,
    "order": ORDER_JOURNEY,
    "sessions": SESSION_DIAL,
}
# Each journey's texts as they go in the form, encoded once.
_ENCODED = {name: tuple(quote_plus(text).encode() for text in j) for name, j in _JOURNEYS.items()}


class _Drive:
    """One handset's journeys, each in a fresh session, until the window closes
    (``sessions``: until ``sessions_left`` runs out). Each round has subscribers of its own:
    a journey cut by the last window's end would offer the next round's first dial a resume."""

    def __init__(
        self,
        target: Target,
        scenario: Scenario,
        index: int,
        window: Window,
        tally: Tally,
        sessions_left: list[int] | None,
        round_: int,
    ) -> None:
        self.target, self.scenario, self.index = target, scenario, index
        self.window, self.tally = window, tally
        self.sessions_left, self.round = sessions_left, round_
        self.journey = _JOURNEYS[scenario]
        self.encoded = _ENCODED[scenario]
        self.prefixes = [
            tuple(p.encode() for p in expected_prefixes(target.label, self.journey, step))
            for step in range(len(self.journey))
        ]
        self.head = (
            f"POST {AT_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        ).encode()
        self.handset: _Handset | None = None
        self.sessions = 0
        self.step = 0
        self.form = b""
        self.sent_at = 0.0  # when the hop now out was sent (0.0: none is)
        # Set when the callbacks stop: None when the drive is done, else what went wrong (one
        # per run: ``run`` makes another once it is set).
        self.event: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    async def run(self) -> Exception | None:
        """Connect if need be and send the hop at ``step``; the callbacks go on from there.
        Returns when they stop: None at the end, else the error (a hop past ``HOP_TIMEOUT``
        among them, its connection closed: a late answer must not be read as the next's)."""
        loop = asyncio.get_running_loop()
        if self.handset is None or self.handset.transport is None:
            _, self.handset = await loop.create_connection(
                lambda: _Handset(self), "127.0.0.1", self.target.port
            )
        if self.event.done():  # the last run's: a fresh one for this run
            self.event = loop.create_future()
        self.send()
        while not self.event.done():
            await asyncio.wait([self.event], timeout=WATCHDOG_INTERVAL)
            if self.sent_at and time.perf_counter() - self.sent_at > HOP_TIMEOUT:
                self.sent_at = 0.0
                self.close()
                return TimeoutError(f"no answer within {HOP_TIMEOUT:g} s")
        return self.event.result()

    def next_session(self) -> bool:
        """Start the next session's form; False when there is none to start."""
        if time.perf_counter() >= self.window.end:
            return False
        left = self.sessions_left
        if left is None:
            number = phone_number(self.scenario, self.index + self.round * ROUND_NUMBERS)
        elif left[0] <= 0:
            return False
        else:
            left[0] -= 1
            number = phone_number(self.scenario, left[0])
        self.sessions += 1
        where = f"{self.scenario}-{self.round}-{self.index}-{self.sessions}"
        session = {
            "sessionId": f"bench-{RUN_ID}-{where}",
            "serviceCode": SERVICE_CODE,
            "phoneNumber": number,
            "networkCode": NETWORK_CODE,
        }
        self.form = urlencode(session).encode() + b"&text="  # the session's part, once
        self.step = 0
        return True

    def send(self) -> None:
        """The hop at ``step``, unless the window has closed."""
        handset = self.handset
        now = time.perf_counter()
        if now >= self.window.end:
            self._tell(None)
            return
        if handset is None or handset.transport is None:
            # Closed by the server between hops: a keep-alive server closes only idle ones,
            # and a handset is never idle long.
            self._tell(ConnectionError("closed by the server"))
            return
        body = self.form + self.encoded[self.step]
        self.sent_at = now
        handset.transport.write(b"%s%d\r\n\r\n%s" % (self.head, len(body), body))

    def answered(self, status: int, body: bytes) -> None:
        done = time.perf_counter()
        began, self.sent_at = self.sent_at, 0.0
        if not began:
            return  # an answer after the hop was given up on: nothing to do with it
        step, tally = self.step, self.tally
        text = self.journey[step]
        if status != 200 or not body.startswith(self.prefixes[step]):
            shown = body[:80].decode(errors="replace")
            tally.fail("unexpected_screens", f"{text!r}: {status} {shown!r}")
            self._next_journey()  # the session is off the script: start a fresh one
            return
        last = step == len(self.journey) - 1
        confirmed = last and self.scenario == "order"
        if confirmed:
            tally.outcomes[CONFIRMED] += 1  # warm-ups too: each must place its order
        if self.window.holds(done):
            tally.latencies.append(done - began)
            if confirmed:
                tally.journeys[self.scenario] += 1
        if last:
            self._next_journey()
        else:
            self.step = step + 1
            self.send()

    def _next_journey(self) -> None:
        if self.next_session():
            self.send()
        else:
            self._tell(None)

    def lost(self, error: Exception) -> None:
        if self.sent_at:
            self.sent_at = 0.0
            self._tell(error)

    def _tell(self, what: Exception | None) -> None:
        if not self.event.done():
            self.event.set_result(what)

    def close(self) -> None:
        if self.handset is not None and self.handset.transport is not None:
            self.handset.transport.close()
        self.handset = None


async def subscriber(
    target: Target,
    scenario: Scenario,
    index: int,
    window: Window,
    tally: Tally,
    *,
    sessions_left: list[int] | None = None,
    round_: int = 0,
) -> None:
    """One handset (``_Drive``): its callbacks drive the hops; this sees to what they cannot
    do alone: a lost connection or a hop past ``HOP_TIMEOUT`` (counted, then a fresh
    connection and session after ``ERROR_PAUSE``) and the end."""
    drive = _Drive(target, scenario, index, window, tally, sessions_left, round_)
    try:
        if not drive.next_session():
            return
        while True:
            try:
                error = await drive.run()
            except OSError as refused:  # the connection could not be made
                error = refused
            if error is None:
                return
            text = drive.journey[drive.step]
            tally.fail("connection_errors", f"{text!r}: {type(error).__name__}: {error}")
            drive.close()
            await asyncio.sleep(ERROR_PAUSE)
            if not drive.next_session():  # the session is lost with its connection
                return
    finally:
        drive.close()


@dataclass(frozen=True)
class Usage:
    """CPU seconds so far: this process, the server's processes, Redis (None if unknown)."""

    loadgen: float
    server: float | None
    redis: float | None
    database: float | None = None

    @classmethod
    async def take(cls, target: Target, redis: Redis) -> Usage:
        cpus = [process_cpu(pid) for pid in target.pids()]
        server = None if any(c is None for c in cpus) else sum(cast(list[float], cpus))
        local = target.database == "postgresql" and target.database_host in LOOPBACK
        database = _postgres_cpu() if local else None
        return cls(cpu_seconds(), server, await _redis_cpu(redis), database)


def _postgres_cpu() -> float | None:
    """CPU seconds of this machine's PostgreSQL cluster (None if it has no process here, or
    there is no /proc): every ``postgres`` process's own, and the postmaster's reaped
    children's (a backend that exits between two readings leaves its CPU there, not gone).
    A hint, like Redis': the cluster's other databases count too."""
    stats = [proc_stat(entry.name) for entry in Path("/proc").glob("[0-9]*")]  # one read each
    cpus = [
        stat_cpu(fields, reaped=True)
        for name, fields in filter(None, stats)
        if name == POSTGRES_COMMAND
    ]
    return sum(cpus) if cpus else None


async def _redis_cpu(redis: Redis) -> float | None:
    try:
        info = await redis.info("cpu")
    except Exception:  # a managed Redis may refuse INFO; the figure is only a hint
        return None
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def tree(root: int) -> list[int]:
    """``root`` and every process below it (``okryu serve --workers``: the master and its
    workers), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        stat = proc_stat(entry.name) if entry.name.isdigit() else None
        if stat is not None:
            parents.setdefault(int(stat[1][1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def rss_mb(pids: Sequence[int]) -> float | None:
    """The largest resident set among ``pids``, in MB (None where there is no /proc)."""
    largest = None
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found:
            size = int(found.group(1)) / 1024
            largest = size if largest is None else max(largest, size)
    return largest


@dataclass
class _Measured:
    """One (server, scenario) pair's windows so far."""

    target: Target
    scenario: Scenario
    tally: Tally = field(default_factory=Tally)
    seconds: float = 0.0
    server_cpu: float | None = 0.0  # CPU seconds over the windows (None: not known)
    redis_cpu: float | None = 0.0
    loadgen_cpu: float = 0.0
    database_cpu: float | None = 0.0

    def add(self, seconds: float, before: Usage, after: Usage) -> None:
        """A window of ``seconds`` between two readings."""
        self.seconds += seconds
        self.server_cpu = _add(self.server_cpu, before.server, after.server)
        self.redis_cpu = _add(self.redis_cpu, before.redis, after.redis)
        self.loadgen_cpu += after.loadgen - before.loadgen
        self.database_cpu = _add(self.database_cpu, before.database, after.database)


def _add(total: float | None, before: float | None, after: float | None) -> float | None:
    if total is None or before is None or after is None:
        return None
    return total + after - before


async def _window(
    measured: _Measured, subscribers: int, warmup: float, seconds: float, redis: Redis, round_: int
) -> None:
    """One window of ``measured``'s scenario against its server, added to what it has."""
    window = Window.after(warmup, seconds)
    loops = [
        subscriber(measured.target, measured.scenario, i, window, measured.tally, round_=round_)
        for i in range(subscribers)
    ]
    before, after = await run_window(loops, window, lambda: Usage.take(measured.target, redis))
    measured.add(seconds, before, after)


async def interleave(
    pairs: Sequence[tuple[Target, Scenario]],
    rounds: int,
    subscribers: int,
    warmup: float,
    seconds: float,
    redis: Redis,
) -> list[Run]:
    """Each (server, scenario) pair ``rounds`` times, in turn: a window of each, then again.

    The ratios the targets check compare runs of one bench; on a machine whose speed drifts
    (a shared host), one long run after another measured the drift as much as the servers.
    In turns, every pair sees the same drift; its windows are summed into one run."""
    measured = [_Measured(target, scenario) for target, scenario in pairs]
    for round_ in range(rounds):
        for each in measured:
            await _window(each, subscribers, warmup, seconds, redis, round_)
    return [_summary(each) for each in measured]


def _summary(measured: _Measured) -> Run:
    tally, seconds, target = measured.tally, measured.seconds, measured.target
    latencies = sorted(tally.latencies)
    return Run(
        scenario=measured.scenario,
        server=target.label,
        database=target.database,
        seconds=seconds,
        hops=len(latencies),
        hops_per_s=len(latencies) / seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        errors=tally.error_count,
        journeys_per_s=(
            tally.journeys[measured.scenario] / seconds if measured.scenario == "order" else None
        ),
        server_cpu=share(0.0, measured.server_cpu, seconds),
        redis_cpu=share(0.0, measured.redis_cpu, seconds),
        loadgen_cpu=measured.loadgen_cpu / seconds,
        rss_mb=rss_mb(target.pids()),
        error_samples=tally.error_samples,
        database_cpu=share(0.0, measured.database_cpu, seconds),
        confirms=tally.outcomes[CONFIRMED] if measured.scenario == "order" else None,
    )


async def drive_sessions(target: Target, subscribers: int, sessions: int, redis: Redis) -> Run:
    """``sessions`` dials, each a new subscriber's, from first dial to last answer."""
    tally = Tally()
    sessions_left = [sessions]
    window = Window.after(0.0, 3600.0)
    loops = [
        subscriber(target, "sessions", i, window, tally, sessions_left=sessions_left)
        for i in range(subscribers)
    ]
    began = time.perf_counter()
    before = await Usage.take(target, redis)
    await asyncio.gather(*loops)
    after = await Usage.take(target, redis)
    measured = _Measured(target, "sessions", tally)
    measured.add(time.perf_counter() - began, before, after)
    return _summary(measured)


# --- orchestration ----------------------------------------------------------------------------


async def _stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (the server closes its pools), then SIGKILL if it lingers."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def start_baseline(redis_url: str, prefix: str) -> Target:
    """Start ``bench/hop.py --serve baseline`` and wait for its ready line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        "baseline",
        "--redis-url",
        redis_url,
        "--redis-prefix",
        prefix,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
    except TimeoutError:
        line = b""
    word, _, port = line.decode().partition(" ")
    if word != READY:
        await _stop_process(process)
        raise RuntimeError(f"the baseline did not start (exit {process.returncode})")
    return Target("baseline", "-", int(port), process.pid, lambda: [process.pid], process)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_gateway(
    workers: int, redis_url: str, prefix: str, database_url: str, logs: Path
) -> Target:
    """``okryu serve --workers N`` with production settings, as an operator would run it."""
    port = _free_port()
    env = {
        **os.environ,
        "OKRYU_HOST": "127.0.0.1",
        "OKRYU_PORT": str(port),
        "OKRYU_WORKERS": str(workers),
        "OKRYU_REDIS_URL": redis_url,
        "OKRYU_REDIS_PREFIX": prefix,
        "OKRYU_DATABASE_URL": database_url,
        "OKRYU_ADMIN_TOKEN": secrets.token_hex(16),
        "OKRYU_SMS_DISPATCH": "0",  # the bench measures hops, not the log SMS provider
        "OKRYU_LOG_FORMAT": "json",
    }
    for name in ("OKRYU_DEMO", "OKRYU_ACCESS_LOG", "OKRYU_SIMULATOR", "OKRYU_SEED_IF_EMPTY"):
        env.pop(name, None)
    log = logs / f"gateway-{workers}-{port}.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "serve",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=sink,
            env=env,
        )
    assert process.stdout is not None
    line = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(READY_TIMEOUT):
            while not line.startswith(BANNER.encode()):
                line = await process.stdout.readline()
                if not line:
                    break
    if not line.startswith(BANNER.encode()):
        await _stop_process(process)
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"okryu serve --workers {workers} did not start:\n{tail}")
    label = "gateway" if workers == 1 else f"gateway x{workers}"
    database = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    from sqlalchemy.engine import make_url

    host = make_url(database_url).host or ""
    return Target(label, database, port, process.pid, lambda: tree(process.pid), process, host)


async def stop(target: Target) -> None:
    await _stop_process(target.process)


async def prepare_database(url: str) -> None:
    """Bring the schema up, seed the demo catalog, stock up the product the journey buys."""
    from sqlalchemy import update
    from sqlmodel import col

    from store.db import Database
    from store.migrate import upgrade
    from store.models import Product
    from store.seed import seed_if_empty

    async with Database(url) as db:
        await upgrade(db)
        await seed_if_empty(db)
        async with db.engine.begin() as conn:
            await conn.execute(
                update(Product).where(col(Product.sku) == ORDERED_SKU).values(stock=BENCH_STOCK)
            )


async def count_orders(url: str) -> int:
    """The orders in the database placed by this run's order journeys (their keys hold the
    run's session ids, stored whole: well within the key column)."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from store.db import Database
    from store.models import Order

    mine = col(Order.idempotency_key).like(f"%:bench-{RUN_ID}-order-%")
    async with Database(url) as db, db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).where(mine))).scalar_one())


def _with_orders(runs: list[Run], placed: int) -> list[Run]:
    """``runs`` with the orders the order run placed."""
    return [replace(run, orders_placed=placed) if run.scenario == "order" else run for run in runs]


async def pick_redis() -> tuple[str, EmbeddedRedis | None]:
    """OKRYU_BENCH_REDIS_URL, else a local Redis if it answers, else an embedded one."""
    given = os.environ.get("OKRYU_BENCH_REDIS_URL")
    if given:
        return given, None
    probe = Redis.from_url(LOCAL_REDIS, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        await probe.ping()
        return LOCAL_REDIS, None
    except Exception:  # anything at all: no usable local Redis
        from gateway.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis()
        return await embedded.start(), embedded
    finally:
        await probe.aclose()


async def delete_keys(redis: Redis, prefix: str) -> int:
    """Delete every key under ``prefix`` (SCAN, never KEYS: the Redis may be shared)."""
    found = [key async for key in redis.scan_iter(match=f"{prefix}*", count=SCAN_BATCH)]
    for i in range(0, len(found), SCAN_BATCH):
        await redis.unlink(*found[i : i + SCAN_BATCH])
    return len(found)


@dataclass(frozen=True)
class Plan:
    subscribers: int
    seconds: float
    warmup: float
    workers: int
    postgres: str | None
    sessions: int
    rounds: int = ROUNDS


async def bench(plan: Plan) -> dict[str, Any]:
    """Start the servers, run every scenario against each, clean up; the report."""
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    wall_start = time.perf_counter()
    prefix = f"okryu-bench:{secrets.token_hex(4)}:"
    tmp = Path(tempfile.mkdtemp(prefix="okryu-bench-"))
    database_url = os.environ.get("OKRYU_BENCH_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    )
    embedded: EmbeddedRedis | None = None
    redis: Redis | None = None
    runs: list[Run] = []
    started: list[Target] = []

    async def each_in_turn(*pairs: tuple[Target, Scenario], url: str | None = None) -> None:
        """The pairs' windows in turn; with ``url``, the one order run's orders counted there
        (the run's keys only, as many as it added: none another run or user placed)."""
        assert redis is not None
        assert url is None or [scenario for _, scenario in pairs].count("order") == 1
        before = await count_orders(url) if url else 0
        done = await interleave(
            pairs, plan.rounds, plan.subscribers, plan.warmup, plan.seconds, redis
        )
        runs.extend(_with_orders(done, await count_orders(url) - before) if url else done)

    try:
        redis_url, embedded = await pick_redis()
        redis = Redis.from_url(redis_url)
        await prepare_database(database_url)
        # Every server of a comparison is up at once (an idle one costs nothing) and each
        # is driven in turn: the baseline, one worker, N workers browsing.
        baseline = await start_baseline(redis_url, f"{prefix}baseline:")
        started.append(baseline)
        one = await start_gateway(1, redis_url, f"{prefix}one:", database_url, tmp)
        started.append(one)
        browsing: list[tuple[Target, Scenario]] = [(baseline, "browse"), (one, "browse")]
        if plan.workers > 1:
            many = await start_gateway(plan.workers, redis_url, f"{prefix}many:", database_url, tmp)
            started.append(many)
            browsing.append((many, "browse"))
        await each_in_turn(*browsing)
        await stop(baseline)
        if plan.workers > 1:
            await stop(many)
        await each_in_turn((one, "order"), url=database_url)
        if plan.sessions:
            assert redis is not None
            runs.append(await drive_sessions(one, plan.subscribers, plan.sessions, redis))
        await stop(one)
        if plan.postgres:
            await prepare_database(plan.postgres)
            pg = await start_gateway(1, redis_url, f"{prefix}pg:", plan.postgres, tmp)
            started.append(pg)
            await each_in_turn((pg, "browse"), (pg, "order"), url=plan.postgres)
            await stop(pg)
    finally:
        for target in started:
            await stop(target)
        if redis is not None:
            await delete_keys(redis, prefix)
            await redis.aclose()
        if embedded is not None:
            await embedded.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    usage_end = resource.getrusage(resource.RUSAGE_SELF)
    loadgen_cpu = (usage_end.ru_utime + usage_end.ru_stime) - (
        usage_start.ru_utime + usage_start.ru_stime
    )
    return report(
        runs,
        subscribers=plan.subscribers,
        seconds=plan.seconds,
        rounds=plan.rounds,
        warmup=plan.warmup,
        workers=plan.workers,
        sessions=plan.sessions,
        redis=_without_password(redis_url),
        database=_without_password(database_url),
        postgres=_without_password(plan.postgres) if plan.postgres else None,
        loadgen_cpu_s=loadgen_cpu,
        wall_s=time.perf_counter() - wall_start,
    )


def _without_password(url: str) -> str:
    """``url`` fit to print: the credentials of ``scheme://user:secret@host`` dropped."""
    return re.sub(r"//[^/@]*@", "//", url)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def targets(runs: list[Run], workers: int) -> list[dict[str, Any]]:
    """Each target of issue 10 with its figure from this run: met, missed, or not run."""
    by = {(run.scenario, run.server, run.database): run for run in runs}
    out: list[dict[str, Any]] = []

    def add(name: str, figure: str, met: bool | None) -> None:
        out.append({"target": name, "figure": figure, "met": met})

    base, gate = by.get(("browse", "baseline", "-")), by.get(("browse", "gateway", "sqlite"))
    if base and gate:
        hops, p99 = _ratio(gate.hops_per_s, base.hops_per_s), _ratio(gate.p99_ms, base.p99_ms)
        add(
            f"browse: >= {TARGET_THROUGHPUT}x the baseline's hops/s, p99 <= {TARGET_P99}x",
            f"{_x(hops)} hops/s, p99 {_x(p99)}",
            hops is not None
            and p99 is not None
            and hops >= TARGET_THROUGHPUT
            and p99 <= TARGET_P99
            and gate.errors == 0,
        )
    order = by.get(("order", "gateway", "sqlite"))
    if order:
        add(
            f"order on SQLite: every hop's p99 < {TARGET_ORDER_P99_MS:g} ms, no confirm past "
            "the deadline",
            f"p99 {order.p99_ms:.0f} ms, {order.errors} off-script answers{_replays(order)}",
            order.p99_ms < TARGET_ORDER_P99_MS
            and order.errors == 0
            and order.hops > 0
            and not count_replays(order),
        )
    pg_browse, pg_order = (
        by.get(("browse", "gateway", "postgresql")),
        by.get(("order", "gateway", "postgresql")),
    )
    if pg_browse and pg_order:
        ratio = _ratio(pg_order.hops_per_s, pg_browse.hops_per_s)
        add(
            f"order on PostgreSQL: >= {TARGET_PG_ORDER}x the browse hop rate",
            f"{_x(ratio)}{_replays(pg_order)}",
            ratio is not None
            and ratio >= TARGET_PG_ORDER
            and pg_order.errors == 0
            and not count_replays(pg_order),
        )
    else:
        add(f"order on PostgreSQL: >= {TARGET_PG_ORDER}x the browse hop rate", "not run", None)
    many = by.get(("browse", f"gateway x{workers}", "sqlite"))
    if gate and many:
        speed = _ratio(many.hops_per_s, gate.hops_per_s)
        efficiency = _ratio(many.hops_per_cpu_s, gate.hops_per_cpu_s)
        add(
            f"{workers} workers: >= {TARGET_WORKERS}x one worker's hops/s, hops per CPU-second "
            f">= {TARGET_WORKER_EFFICIENCY}x",
            f"{_x(speed)} hops/s, {_x(efficiency)} hops per CPU-second",
            speed is not None
            and efficiency is not None
            and speed >= TARGET_WORKERS
            and efficiency >= TARGET_WORKER_EFFICIENCY
            and many.errors == 0,
        )
    sessions = by.get(("sessions", "gateway", "sqlite"))
    if sessions:
        add(
            f"memory: < {TARGET_RSS_MB:g} MB per worker after the sessions",
            f"{sessions.rss_mb:.0f} MB after {sessions.hops:,} sessions"
            if sessions.rss_mb is not None
            else "unknown (no /proc)",
            sessions.rss_mb is not None and sessions.rss_mb < TARGET_RSS_MB,
        )
    return out


def count_replays(run: Run) -> int:
    """Confirms of ``run`` (warm-ups included) without an order of their own in the database:
    answered with an order placed before (a replay), not the journeys the target is about.
    A confirm that gave up ("being placed") is not counted; its order, placed later, is."""
    if run.confirms is None or run.orders_placed is None:
        return 0
    return max(0, run.confirms - run.orders_placed)


def _replays(run: Run) -> str:
    replays = count_replays(run)
    return f"; {replays} confirms placed no order of their own (replays)" if replays else ""


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def report(runs: list[Run], **config: Any) -> dict[str, Any]:
    """The runs, the targets, the verdict and the notes, as plain data."""
    checked = targets(runs, config["workers"])
    notes = [
        "order: the gateway's confirming hop also runs the order's SQL transaction (and a "
        "background catalog stock refresh).",
        "errors: failed requests and answers off the script (a confirm answered past the "
        "gateway's hop deadline among them), warm-up included; hops/s and latencies count only "
        "the measured window.",
        "closed loop (each subscriber waits for its answer): once a server is saturated, its "
        "p50 is about subscribers / hops/s, so the p99 ratio largely mirrors the hops/s one.",
        "server CPU counts every process of the server (a master and its workers); on a "
        "machine with as many cores as workers, the load generator and Redis take cores from "
        "them.",
    ]
    for run in runs:
        if run.loadgen_cpu >= BUSY_CORE:
            notes.append(
                f"{run.scenario}/{run.server}: the load generator used {run.loadgen_cpu:.0%} of "
                f"a core, so this server's hops/s is a lower bound."
            )
    return {
        "config": config,
        "runs": [asdict(run) | {"hops_per_cpu_s": run.hops_per_cpu_s} for run in runs],
        "targets": checked,
        "verdict": {"passed": all(t["met"] is not False for t in checked)},
        "notes": notes,
    }


def render(result: dict[str, Any]) -> str:
    """The report as a table for a terminal."""
    config = result["config"]

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    def num(value: float | None, spec: str = ".0f") -> str:
        return "-" if value is None else format(value, spec)

    lines = [
        f"{config['subscribers']} subscribers, {config['rounds']} rounds of {config['seconds']:g} s"
        f" per run after {config['warmup']:g} s warm-up each, the runs compared taken in turn; "
        f"redis {config['redis']}; database {config['database']}"
        + (f"; postgresql {config['postgres']}" if config["postgres"] else ""),
        "",
        f"{'scenario':<8} {'server':<11} {'db':<10} {'hops/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} {'jrny/s':>6} {'server':>6} {'hop/cpu-s':>9} {'redis':>5} "
        f"{'pg':>5} {'loadgen':>7} {'RSS MB':>6}",
    ]
    for run in result["runs"]:
        lines.append(
            f"{run['scenario']:<8} {run['server']:<11} {run['database']:<10} "
            f"{run['hops_per_s']:>7.0f} {run['p50_ms']:>7.2f} {run['p99_ms']:>7.2f} "
            f"{run['errors']:>6} {num(run['journeys_per_s'], '.1f'):>6} "
            f"{pct(run['server_cpu']):>6} {num(run['hops_per_cpu_s']):>9} "
            f"{pct(run['redis_cpu']):>5} {pct(run['database_cpu']):>5} "
            f"{pct(run['loadgen_cpu']):>7} {num(run['rss_mb']):>6}"
        )
    lines.append(
        "(server, redis, pg, loadgen: CPU used over the window, as a share of one core; pg: "
        "the local PostgreSQL cluster's processes)"
    )
    for run in result["runs"]:
        if run["orders_placed"] is not None:
            lines.append(
                f"{run['scenario']}/{run['server']}/{run['database']}: {run['confirms']:,} "
                f"confirms, {run['orders_placed']:,} orders placed (warm-ups included)"
            )
    lines.append("")
    for target in result["targets"]:
        mark = {True: "met   ", False: "MISSED", None: "not run"}[target["met"]]
        lines.append(f"{mark} {target['target']}: {target['figure']}")
    lines.append(f"verdict: {'PASS' if result['verdict']['passed'] else 'FAIL'}")
    lines.append(
        f"load generator CPU: {config['loadgen_cpu_s']:.1f} s over {config['wall_s']:.1f} s "
        f"wall ({config['loadgen_cpu_s'] / config['wall_s']:.0%} of one core)"
    )
    for note in result["notes"]:
        lines.append(f"note: {note}")
    for run in result["runs"]:
        for sample in run["error_samples"]:
            lines.append(f"error {run['scenario']}/{run['server']}: {sample}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line; bench, or serve the baseline when called by the bench."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=50, help="concurrent subscribers")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="measured seconds per window (see --rounds)"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per window")
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help="windows of each scenario, taken in turn with those it is compared to",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gateway workers to compare with one (1: skip)"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("OKRYU_BENCH_POSTGRES_URL"),
        help="a scratch PostgreSQL database (postgresql+asyncpg://...) for the order target",
    )
    parser.add_argument(
        "--sessions", type=int, default=100_000, help="sessions before the memory reading (0: skip)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    # Internal: how the bench starts its baseline.
    parser.add_argument("--serve", choices=("baseline",), help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        uvloop.run(serve_baseline(0, args.redis_url, args.redis_prefix))  # as `okryu serve`
        return 0
    if args.subscribers < 1 or args.seconds <= 0 or args.warmup < 0 or args.workers < 1:
        parser.error("--subscribers and --workers must be >= 1, --seconds > 0, --warmup >= 0")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if args.sessions < 0:
        parser.error("--sessions must be >= 0")
    plan = Plan(
        args.subscribers,
        args.seconds,
        args.warmup,
        args.workers,
        args.postgres,
        args.sessions,
        args.rounds,
    )
    result = uvloop.run(bench(plan))
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0  # a missed target is a finding, not a failure of the bench


if __name__ == "__main__":
    raise SystemExit(main())
