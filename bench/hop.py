"""The USSD hop under load: the real gateway against a bare aiohttp + Redis baseline.

    .venv/bin/python bench/hop.py [--subscribers 50] [--seconds 5] [--json]    # or: make bench

Each server runs in its own subprocess, so the load generator (this process) does not share an
event loop or a core with the server under test. The baseline parses the same form and makes
the same two Redis round trips as a browsing hop (``MGET`` of the session key and two version
keys, then a compare-and-set script that ``SET``s ~300 bytes with a TTL), and answers a fixed
screen: what is left between the two is the gateway's own work (number parsing, the engine,
the session record, and on the confirming hop of an order the SQL transaction).

Scenarios, each with N concurrent subscribers (each its own phone number and sessions):

* ``browse``: menus and pages, a fresh session every 8 hops; no SQL after a subscriber's first
  dial, which falls in the warm-up.
* ``order``: whole order journeys, 11 hops each, the last confirming the order.

Redis: ``OKRYU_BENCH_REDIS_URL``, else ``redis://127.0.0.1:6379/0`` if it answers, else an
embedded redis-server. Every key lives under a fresh prefix and is deleted afterwards. Database:
``OKRYU_BENCH_DATABASE_URL``, else a fresh SQLite file in a temporary directory. The bench
places orders and tops up the stock of the one product it orders, so point
``OKRYU_BENCH_DATABASE_URL`` only at a scratch database.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import aiohttp
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
    process_cpu,
    run_window,
    share,
)

# The gateway is imported only where it runs: the baseline's process should not carry the
# gateway's modules (a bigger heap makes every full garbage collection slower).
if TYPE_CHECKING:
    from gateway.embedded_redis import EmbeddedRedis

Server = Literal["baseline", "gateway"]
Scenario = Literal["browse", "order"]
SERVERS: tuple[Server, ...] = ("baseline", "gateway")
SCENARIOS: tuple[Scenario, ...] = ("browse", "order")

AT_PATH = "/ussd/africastalking"
SERVICE_CODE = "*123#"
NETWORK_CODE = "99999"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
READY = "ready"

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
ORDERED_SKU = "FD-RICE5"  # the product ORDER_JOURNEY buys (category 1, product 2)
# The demo stock (25) would sell out in the first second; a sold-out product is a different
# journey, not a slower one.
BENCH_STOCK = 10_000_000

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
WATCHDOG_INTERVAL = 1.0
SCAN_BATCH = 500
LOGGED_ERRORS = 3  # per server process; the bench's own error count is the full tally

TARGET_THROUGHPUT = 0.5  # the browsing hop's hops/s, at least this fraction of the baseline's
TARGET_P99 = 3.0  # and its p99 at most this multiple of the baseline's
BUSY_CORE = 0.9  # a process above this share of a core may be what limits a run

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


# --- the servers (run in subprocesses) ---------------------------------------------------------


async def serve(kind: Server, port: int, redis_url: str, prefix: str, database_url: str) -> None:
    """Serve one server until SIGTERM or until the parent is gone; print the port when ready."""
    # The bench counts and samples every off-script answer itself; warnings such as an order
    # outlasting the hop deadline would only bury the table. Real failures still log, the
    # first few of them: a broken build fails every hop, thousands of times a second.
    logging.basicConfig(level=logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_FirstFew(LOGGED_ERRORS))
    if kind == "gateway":
        from gateway.app import create_app
        from gateway.settings import Settings

        await _prepare_database(database_url)
        settings = Settings(
            host="127.0.0.1",
            port=port,
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=prefix,
            seed_if_empty=True,
            sms_dispatch=False,
            demo=True,
        )
        app = create_app(settings, freeze_gc=True)  # as `okryu serve` runs it
    else:
        app = baseline_app(redis_url, prefix)
    # No access log on either side: the bench compares hops, not log formatting.
    runner = web.AppRunner(app, access_log=None)
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


async def _prepare_database(url: str) -> None:
    """Seed the demo catalog and stock up the product the order journey buys."""
    from sqlalchemy import update
    from sqlmodel import col

    from store.db import Database
    from store.models import Product
    from store.seed import seed_if_empty

    db = Database(url)
    try:
        await db.create_all()
        await seed_if_empty(db)
        async with db.engine.begin() as conn:
            await conn.execute(
                update(Product).where(col(Product.sku) == ORDERED_SKU).values(stock=BENCH_STOCK)
            )
    finally:
        await db.close()


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
        client = Redis.from_url(url)  # the gateway's client, built the same way
        app[BASELINE_REDIS] = client
        app[BASELINE_CAS] = client.register_script(_BASELINE_CAS)  # EVALSHA, as the gateway
        prefix = app[BASELINE_PREFIX]
        await client.mset({f"{prefix}catalog:version": b"1", f"{prefix}catalog:stock": b"1"})
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
    raw, _catalog, _stock = await redis.mget(
        key, f"{prefix}catalog:version", f"{prefix}catalog:stock"
    )
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
    server: Server
    seconds: float
    hops: int
    hops_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    journeys_per_s: float | None
    server_cpu: float | None  # share of one core over the window
    redis_cpu: float | None
    loadgen_cpu: float
    error_samples: list[str]


def phone_number(scenario: Scenario, index: int) -> str:
    """A distinct E.164 number per subscriber and scenario, so sessions never collide."""
    base = 10_000_000 if scenario == "browse" else 20_000_000
    return f"+85019{base + index:08d}"


def expected_prefixes(server: Server, journey: Sequence[str], step: int) -> tuple[str, ...]:
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


async def subscriber(
    client: aiohttp.ClientSession,
    url: str,
    server: Server,
    scenario: Scenario,
    index: int,
    window: Window,
    tally: Tally,
) -> None:
    """One handset: journey after journey, each in a fresh session, until the window closes."""
    journey = BROWSE_LOOP if scenario == "browse" else ORDER_JOURNEY
    phone = phone_number(scenario, index)
    sessions = 0
    while time.perf_counter() < window.end:
        sessions += 1
        form = {
            "sessionId": f"bench-{scenario}-{index}-{sessions}",
            "serviceCode": SERVICE_CODE,
            "phoneNumber": phone,
            "networkCode": NETWORK_CODE,
            "text": "",
        }
        for step, text in enumerate(journey):
            if time.perf_counter() >= window.end:
                return
            form["text"] = text
            began = time.perf_counter()
            try:
                async with client.post(url, data=form) as response:
                    status, body = response.status, await response.text()
            except (aiohttp.ClientError, TimeoutError) as error:
                tally.fail("connection_errors", f"{text!r}: {type(error).__name__}: {error}")
                await asyncio.sleep(ERROR_PAUSE)
                break
            done = time.perf_counter()
            if status != 200 or not body.startswith(expected_prefixes(server, journey, step)):
                tally.fail("unexpected_screens", f"{text!r}: {status} {body[:80]!r}")
                break  # the session is off the script: start a fresh one
            if window.holds(done):
                tally.latencies.append(done - began)
                if step == len(journey) - 1 and scenario == "order":
                    tally.journeys[scenario] += 1


@dataclass(frozen=True)
class Usage:
    """CPU seconds so far: this process, the server under test, Redis (None if unknown)."""

    loadgen: float
    server: float | None
    redis: float | None

    @classmethod
    async def take(cls, server_pid: int, redis: Redis) -> Usage:
        return cls(cpu_seconds(), process_cpu(server_pid), await _redis_cpu(redis))


async def _redis_cpu(redis: Redis) -> float | None:
    try:
        info = await redis.info("cpu")
    except Exception:  # a managed Redis may refuse INFO; the figure is only a hint
        return None
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def drive(
    port: int,
    server_pid: int,
    server: Server,
    scenario: Scenario,
    subscribers: int,
    warmup: float,
    seconds: float,
    redis: Redis,
) -> Run:
    """Run one scenario against one server and summarise it."""
    url = f"http://127.0.0.1:{port}{AT_PATH}"
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=subscribers)
    timeout = aiohttp.ClientTimeout(total=HOP_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        window = Window.after(warmup, seconds)
        loops = [
            subscriber(client, url, server, scenario, i, window, tally) for i in range(subscribers)
        ]
        before, after = await run_window(loops, window, lambda: Usage.take(server_pid, redis))
    latencies = sorted(tally.latencies)
    return Run(
        scenario=scenario,
        server=server,
        seconds=seconds,
        hops=len(latencies),
        hops_per_s=len(latencies) / seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        errors=tally.error_count,
        journeys_per_s=tally.journeys[scenario] / seconds if scenario == "order" else None,
        server_cpu=share(before.server, after.server, seconds),
        redis_cpu=share(before.redis, after.redis, seconds),
        loadgen_cpu=(after.loadgen - before.loadgen) / seconds,
        error_samples=tally.error_samples,
    )


# --- orchestration ----------------------------------------------------------------------------


@dataclass
class Child:
    """A server subprocess and the port it reported."""

    kind: Server
    process: asyncio.subprocess.Process
    port: int = 0


async def start_server(kind: Server, redis_url: str, prefix: str, database_url: str) -> Child:
    """Start ``bench/hop.py --serve kind`` and wait for its ready line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        kind,
        "--port",
        "0",
        "--redis-url",
        redis_url,
        "--redis-prefix",
        prefix,
        "--database-url",
        database_url,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    child = Child(kind, process)
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
    except TimeoutError:
        line = b""
    word, _, port = line.decode().partition(" ")
    if word != READY:
        await stop_server(child)
        raise RuntimeError(f"the {kind} server did not start (exit {process.returncode})")
    child.port = int(port)
    return child


async def stop_server(child: Child) -> None:
    """SIGTERM (the server closes its pools), then SIGKILL if it lingers."""
    process = child.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


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


async def bench(subscribers: int, seconds: float, warmup: float) -> dict[str, Any]:
    """Start both servers, run every scenario against each, clean up; the report."""
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    wall_start = time.perf_counter()
    prefix = f"okryu-bench:{secrets.token_hex(4)}:"
    tmp = Path(tempfile.mkdtemp(prefix="okryu-bench-"))
    database_url = os.environ.get("OKRYU_BENCH_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    )
    embedded: EmbeddedRedis | None = None
    redis: Redis | None = None
    children: list[Child] = []
    runs: list[Run] = []
    try:
        redis_url, embedded = await pick_redis()
        redis = Redis.from_url(redis_url)
        children = list(
            await asyncio.gather(
                start_server("baseline", redis_url, f"{prefix}baseline:", database_url),
                start_server("gateway", redis_url, f"{prefix}gateway:", database_url),
            )
        )
        by_kind = {child.kind: child for child in children}
        for scenario in SCENARIOS:
            for server in SERVERS:
                child = by_kind[server]
                runs.append(
                    await drive(
                        child.port,
                        child.process.pid,
                        server,
                        scenario,
                        subscribers,
                        warmup,
                        seconds,
                        redis,
                    )
                )
    finally:
        for child in children:
            await stop_server(child)
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
        subscribers=subscribers,
        seconds=seconds,
        warmup=warmup,
        redis=_without_password(redis_url),
        database=_without_password(database_url),
        loadgen_cpu_s=loadgen_cpu,
        wall_s=time.perf_counter() - wall_start,
    )


def _without_password(url: str) -> str:
    """``url`` fit to print: the credentials of ``scheme://user:secret@host`` dropped."""
    return re.sub(r"//[^/@]*@", "//", url)


def report(runs: list[Run], **config: Any) -> dict[str, Any]:
    """The runs, the gateway/baseline ratios, the verdict and the notes, as plain data."""
    by = {(run.scenario, run.server): run for run in runs}
    ratios: dict[str, dict[str, float | None]] = {}
    for scenario in SCENARIOS:
        base, gate = by[scenario, "baseline"], by[scenario, "gateway"]
        ratios[scenario] = {
            "hops_per_s": gate.hops_per_s / base.hops_per_s if base.hops_per_s else None,
            "p99": gate.p99_ms / base.p99_ms if base.hops and gate.hops else None,
        }
    throughput, p99 = ratios["browse"]["hops_per_s"], ratios["browse"]["p99"]
    passed = (
        throughput is not None
        and p99 is not None
        and throughput >= TARGET_THROUGHPUT
        and p99 <= TARGET_P99
        and by["browse", "gateway"].errors == 0
    )
    notes = [
        "order: the gateway's confirming hop also runs the order's SQL transaction (and a "
        "background catalog stock refresh); the baseline's hops are all browsing-shaped.",
        "errors: failed requests and answers off the script (a confirm answered past the "
        "gateway's hop deadline among them), warm-up included; hops/s and latencies count only "
        "the measured window.",
        "closed loop (each subscriber waits for its answer): once a server is saturated, its "
        "p50 is about subscribers / hops/s, so the p99 ratio largely mirrors the hops/s one.",
    ]
    for run in runs:
        if run.loadgen_cpu >= BUSY_CORE:
            notes.append(
                f"{run.scenario}/{run.server}: the load generator used {run.loadgen_cpu:.0%} of "
                f"a core, so this server's hops/s is a lower bound."
            )
    return {
        "config": config,
        "runs": [asdict(run) for run in runs],
        "ratios": ratios,
        "verdict": {
            "target": f"browse: gateway hops/s >= {TARGET_THROUGHPUT}x baseline, "
            f"p99 <= {TARGET_P99}x baseline, no errors",
            "passed": passed,
        },
        "notes": notes,
    }


def render(result: dict[str, Any]) -> str:
    """The report as a table for a terminal."""
    config = result["config"]

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    lines = [
        f"{config['subscribers']} subscribers, {config['seconds']:g} s per run after "
        f"{config['warmup']:g} s warm-up; redis {config['redis']}; database {config['database']}",
        "",
        f"{'scenario':<8} {'server':<8} {'hops/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} {'jrny/s':>7} {'server':>7} {'redis':>6} {'loadgen':>7}",
    ]
    for run in result["runs"]:
        journeys = run["journeys_per_s"]
        lines.append(
            f"{run['scenario']:<8} {run['server']:<8} {run['hops_per_s']:>8.0f} "
            f"{run['p50_ms']:>7.2f} {run['p99_ms']:>7.2f} {run['errors']:>6} "
            f"{'-' if journeys is None else f'{journeys:.1f}':>7} {pct(run['server_cpu']):>7} "
            f"{pct(run['redis_cpu']):>6} {pct(run['loadgen_cpu']):>7}"
        )
    lines.append("(server, redis, loadgen: CPU used over the window, as a share of one core)")
    lines.append("")
    for scenario, ratio in result["ratios"].items():
        lines.append(
            f"gateway/baseline {scenario:<6}: hops/s {times(ratio['hops_per_s'])}, "
            f"p99 {times(ratio['p99'])}"
        )
    verdict = result["verdict"]
    lines.append(f"verdict: {'PASS' if verdict['passed'] else 'FAIL'} ({verdict['target']})")
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
    """Parse the command line; bench, or serve one server when called by the bench."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=50, help="concurrent subscribers")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    # Internal: how the bench starts its servers.
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-prefix", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(
            serve(args.serve, args.port, args.redis_url, args.redis_prefix, args.database_url)
        )
        return 0
    if args.subscribers < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--subscribers must be >= 1, --seconds > 0 and --warmup >= 0")
    result = asyncio.run(bench(args.subscribers, args.seconds, args.warmup))
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0  # a missed target is a finding, not a failure of the bench


if __name__ == "__main__":
    raise SystemExit(main())
