"""``okryu``: serve the gateway, seed the demo catalog, hold a handset in the terminal, run
scenarios and load."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway import logs
from gateway.settings import Settings, SettingsError

if TYPE_CHECKING:
    from simulators.phone import Dialect
    from simulators.scenario import SessionEvent

DIAGRAM = "docs/journey.svg"
RETRY_MARGIN = 0.05  # seconds past the gateway's retry window before a repeated answer
TELL_WITHIN = 5.0  # seconds okryu seed waits for the gateways' Redis, then leaves it to their watch


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `okryu report funnel | head`: the reader has gone, which is no error of ours. Point
        # stdout at nothing, so the interpreter's own flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # as a shell reports a process ended by SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    from simulators.network import PROFILES
    from simulators.phone import DEFAULT_PHONE

    parser = argparse.ArgumentParser(prog="okryu", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run the gateway (OKRYU_* variables configure it)"
    )
    serve_parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes serving the port, one per core (default OKRYU_WORKERS, else 1)",
    )
    commands.add_parser("seed", help="load the demo catalog into an empty database")
    commands.add_parser("migrate", help="bring the database schema to the newest revision")
    phone = commands.add_parser(
        "phone", help="a handset in this terminal, or a scenario file played through one"
    )
    phone.add_argument(
        "--msisdn",
        default=None,
        help=f"the handset's number (default {DEFAULT_PHONE}; a fresh one per --script run)",
    )
    phone.add_argument(
        "--url",
        default=None,
        help="the gateway's base URL, as for okryu load (default http://OKRYU_HOST:OKRYU_PORT);"
        " a URL with a path is used as it is",
    )
    phone.add_argument("--code", default=None, help="the service code to dial (default *123#)")
    phone.add_argument(
        "--dialect",
        default="africastalking",
        help="the aggregator the handset speaks like: africastalking, hubtel, arkesel, nalo, "
        "hollatags, a reseller in OKRYU_CHANNELS_FILE, or smpp: through the USSD centre "
        "simulator (python -m simulators.ussdc), which talks SMPP to the gateway; --url is then "
        "the centre's handset door (default http://127.0.0.1:8776/ussd)",
    )
    phone.add_argument(
        "--network",
        default=None,
        choices=tuple(PROFILES),
        help="cross a simulated network: flaky drops, retries and delays hops",
    )
    phone.add_argument("--seed", type=int, default=None, help="replay one flaky network's run")
    phone.add_argument(
        "--script",
        action="append",
        metavar="FILE",
        help="play a scenario file (repeatable) instead of reading the keyboard; exit 1 and "
        "print the transcript if one fails",
    )
    phone.add_argument(
        "--record",
        metavar="FILE",
        help="save this terminal session as a scenario file when you quit",
    )
    load = commands.add_parser(
        "load", help="drive many simulated handsets at a running gateway and report"
    )
    load.add_argument(
        "--url",
        default=None,
        help="the gateway, e.g. http://host:8080 (then /ussd/<dialect> is added), or the full "
        "USSD callback URL (default: OKRYU_HOST:OKRYU_PORT)",
    )
    load.add_argument("--subscribers", type=int, default=10, help="concurrent handsets")
    load.add_argument("--duration", type=float, default=10.0, help="seconds to run")
    load.add_argument(
        "--mix",
        default="browse:70,order:30",
        help="journeys by weight (default browse:70,order:30)",
    )
    load.add_argument("--dialect", default="africastalking", help="as for okryu phone")
    load.add_argument(
        "--network",
        default="good",
        choices=tuple(PROFILES),
        help="good: straight to the gateway; flaky: cuts, retries and late hops (and redials)",
    )
    load.add_argument("--seed", type=int, default=0, help="numbers, journeys and network tricks")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    flow = commands.add_parser("flow", help="check the journey, or draw it")
    flow.add_argument(
        "action",
        choices=("check", "diagram"),
        help="check: prove the journey holds together and fits every screen budget; "
        "diagram: draw it as SVG",
    )
    flow.add_argument("--out", default=DIAGRAM, help=f"the SVG to write (default {DIAGRAM})")
    report = commands.add_parser("report", help="reports from the database")
    report.add_argument(
        "name",
        choices=("funnel", "ledger"),
        help="funnel: the order journey's steps; ledger: shop-card money per day, proven to"
        " balance (exit status 1 if it does not)",
    )
    report.add_argument(
        "--from", "--since", dest="since", default=None, help="start, ISO date or time (UTC)"
    )
    report.add_argument("--to", dest="until", default=None, help="end, ISO date or time (UTC)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    # --- okryu redis-cluster (issue 11) ---
    cluster = commands.add_parser(
        "redis-cluster", help="start or stop a 3-master, 3-replica Redis Cluster on loopback"
    )
    cluster.add_argument("action", choices=("start", "stop"))
    cluster.add_argument(
        "--ports", default="7100-7105", help="six ports, e.g. 7100-7105 (the default)"
    )
    cluster.add_argument(
        "--dir", default="var/redis-cluster", help="the nodes' files (default var/redis-cluster)"
    )
    # --- end okryu redis-cluster ---
    args = parser.parse_args(argv)
    if args.command == "redis-cluster":  # needs no settings: it is not the gateway
        return redis_cluster_command(args.action, args.ports, Path(args.dir))
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"okryu: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format)
    if args.command == "flow":
        return flow_command(settings, args.action, args.out)
    if args.command == "serve":
        if args.workers is not None:
            if not 1 <= args.workers <= 256:
                print("okryu: --workers must be from 1 to 256", file=sys.stderr)
                return 2
            settings = dataclasses.replace(settings, workers=args.workers)
        return serve(settings)
    if args.command in ("seed", "migrate", "report"):
        from gateway.startup import StartupError

        try:
            if args.command == "seed":
                return asyncio.run(seed(settings))
            if args.command == "migrate":
                return asyncio.run(migrate_command(settings))
            if args.name == "ledger":
                return asyncio.run(ledger_report(settings, args.since, as_json=args.json))
            return asyncio.run(funnel_report(settings, args.since, args.until, as_json=args.json))
        except StartupError as error:  # the database: one line, as `okryu serve` says it
            print(f"okryu: {error}", file=sys.stderr)
            return 1
    if args.command == "load":
        return load_command(
            settings,
            args.url,
            subscribers=args.subscribers,
            duration=args.duration,
            mix=args.mix,
            dialect=args.dialect,
            network=args.network,
            seed=args.seed,
            as_json=args.json,
        )
    return phone_command(
        settings,
        args.msisdn,
        args.url,
        args.code,
        dialect=args.dialect,
        network=args.network,
        seed=args.seed,
        scripts=args.script or (),
        record=args.record,
    )


def redis_cluster_command(action: str, ports: str, directory: Path) -> int:
    """``okryu redis-cluster start|stop``: print the cluster's URL, or stop its nodes."""
    from gateway.embedded_redis import EmbeddedRedisError
    from gateway.local_cluster import LocalCluster, parse_ports

    try:
        cluster = LocalCluster(parse_ports(ports), directory.resolve())
        if action == "stop":
            cluster.stop()
            return 0
        print(cluster.start())
    except EmbeddedRedisError as error:
        print(f"okryu: {error}", file=sys.stderr)
        return 1
    return 0


def serve(settings: Settings) -> int:
    """``okryu serve``: this process, or ``OKRYU_WORKERS`` of them on one port."""
    from gateway.serving import serve as serve_here
    from gateway.workers import serve_workers

    if settings.workers > 1:
        return serve_workers(settings, settings.workers)
    return serve_here(settings)


def flow_command(settings: Settings, action: str, out: str) -> int:
    """``okryu flow check`` and ``okryu flow diagram``: problems on stderr, exit 1 if any."""
    from menus.journey import InvalidJourney
    from menus.shop import Shop

    try:
        from menus.flow import flow_of

        flow = flow_of(Shop)
    except InvalidJourney as error:
        print(f"okryu: the journey does not hold together:\n{error}", file=sys.stderr)
        return 1
    if action == "diagram":
        from menus.diagram import DiagramError, journey_dot, render_svg

        try:
            svg = render_svg(journey_dot(flow.journey))
        except DiagramError as error:
            print(f"okryu: {error}", file=sys.stderr)
            return 1
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(svg)
        print(f"wrote {path}")
        return 0
    from menus.check import budget_problems
    from store.catalog import widest_catalog
    from store.seed import demo_catalog

    budgets = list(dict.fromkeys([settings.screen_budget, *settings.channel_budgets.values()]))
    problems = budget_problems(flow, [demo_catalog(), widest_catalog()], budgets, settings)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"okryu: {len(problems)} problems", file=sys.stderr)
        return 1
    transitions = sum(len(by_source) for by_source in flow.targets.values())
    sizes = ", ".join(f"{b.gsm7}/{b.ucs2}" for b in budgets)
    print(
        f"journey {flow.version}: {len(flow.states)} states, {transitions} transitions,"
        f" every screen fits {sizes} with worst-case values"
    )
    return 0


async def migrate_command(settings: Settings) -> int:
    from gateway.startup import database_failures
    from store import migrate
    from store.db import Database

    with database_failures(settings.database_url):
        async with Database(settings.database_url) as db:
            before = await migrate.current(db)
            after = await migrate.upgrade(db)
    was = f" (was {before or 'empty'})" if before != after else ""
    print(f"schema at revision {after}{was}")
    return 0


async def seed(settings: Settings) -> int:
    from gateway.startup import database_failures
    from store import migrate
    from store.db import Database
    from store.seed import seed_if_empty

    with database_failures(settings.database_url):
        async with Database(settings.database_url) as db:
            await migrate.upgrade(db)
            seeded = await seed_if_empty(db)
    if not seeded:
        print("the catalog already has data; left it alone")
        return 0
    print(f"seeded the demo catalog; {await tell_gateways(settings)}")
    return 0


async def tell_gateways(settings: Settings) -> str:
    """After a catalog change: bump its version in the gateways' Redis (INCR and PUBLISH), so
    every running process reloads now; without a Redis to reach, their watch notices it."""
    from redis.exceptions import RedisError

    from gateway.catalog import WATCH, CatalogVersions
    from gateway.redis_clients import connect

    later = f"running gateways notice it within {WATCH:g} s"
    if not settings.redis_url:
        return later  # an embedded Redis is private to its gateway
    client = connect(settings.redis_url, 1)  # a server's URL or a cluster's, as the gateway's
    versions = CatalogVersions(client, settings.redis_prefix)
    try:
        async with asyncio.timeout(TELL_WITHIN):
            await versions.bump("catalog")
    except (RedisError, OSError):  # TimeoutError is an OSError
        return f"{later} (Redis did not answer)"
    finally:
        await versions.close()
        await client.aclose()
    return "running gateways reload it now"


async def funnel_report(
    settings: Settings, since: str | None, until: str | None, *, as_json: bool
) -> int:
    """The funnel for a period (default: the last day) from the database."""
    from datetime import datetime, timedelta

    from gateway.funnel import format_report, report
    from gateway.startup import database_failures
    from store import migrate, reports
    from store.db import Database
    from store.models import utcnow

    try:
        end = datetime.fromisoformat(until) if until else utcnow()
        start = datetime.fromisoformat(since) if since else end - timedelta(days=1)
    except ValueError as error:
        print(f"okryu: --from/--to: {error}", file=sys.stderr)
        return 2
    if _no_database(settings):
        return 1
    with database_failures(settings.database_url):
        async with Database(settings.database_url) as db:
            await migrate.upgrade(db)
            steps = report(await reports.funnel(db, start, end))
    if as_json:
        rows = [{"screen": s.screen, "sessions": s.sessions, "dropped": s.dropped} for s in steps]
        print(json.dumps({"from": start.isoformat(), "to": end.isoformat(), "steps": rows}))
    else:
        print(f"funnel {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
        print(format_report(steps))
    return 0


async def ledger_report(settings: Settings, since: str | None, *, as_json: bool) -> int:
    """``okryu report ledger``: top-ups, payments, refunds and balances per day, and the
    proof that every entry sums to zero; exit status 1 when the ledger does not balance."""
    from datetime import UTC, datetime

    from gateway.startup import database_failures
    from store import cards, migrate
    from store.db import Database

    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError as error:
        print(f"okryu: --since: {error}", file=sys.stderr)
        return 2
    if start is not None and start.tzinfo is not None:
        start = start.astimezone(UTC).replace(tzinfo=None)
    if _no_database(settings):
        return 1
    with database_failures(settings.database_url):
        async with Database(settings.database_url) as db:
            await migrate.upgrade(db)
            days = await cards.days(db, start)
            proof = await cards.prove(db)
    if as_json:
        rows = [
            {"day": d.day.isoformat(), "topups": d.topups, "payments": d.payments,
             "refunds": d.refunds, "adjustments": d.adjustments, "balances": d.balances}
            for d in days
        ]  # fmt: skip
        print(json.dumps({"days": rows, "entries": proof.entries, "total": proof.total,
                          "unbalanced_movements": list(proof.unbalanced),
                          "mismatched_cards": list(proof.mismatched),
                          "balances": proof.holds}))  # fmt: skip
    else:
        print(cards.format_ledger(days, proof))
    return 0 if proof.holds else 1


def _no_database(settings: Settings) -> bool:
    """True, said on stderr, when the database a report would read is a missing SQLite file:
    a report reads; it never makes an empty database here and reports its zeros."""
    missing = _missing_sqlite_file(settings.database_url)
    if missing is None:
        return False
    print(
        f"okryu: no database at {missing} (OKRYU_DATABASE_URL): a relative path is read"
        " from the current directory; run this where okryu serve runs, or set"
        " OKRYU_DATABASE_URL to the database's absolute path",
        file=sys.stderr,
    )
    return True


def _missing_sqlite_file(url: str) -> Path | None:
    """The absolute path of ``url``'s SQLite file when it is a file that does not exist."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # said in one line where the database is opened
    path = parsed.database
    if not parsed.drivername.startswith("sqlite") or not path or path == ":memory:":
        return None
    if path.startswith("file:"):
        return None
    found = Path(path).absolute()
    return None if found.exists() else found


def phone_command(
    settings: Settings,
    msisdn: str | None,
    url: str | None,
    code: str | None,
    *,
    dialect: str = "africastalking",
    network: str | None = None,
    seed: int | None = None,
    scripts: Sequence[str] = (),
    record: str | None = None,
) -> int:
    from simulators.phone import DEFAULT_PHONE
    from simulators.terminal import run_terminal, stdin_lines

    logging.getLogger().setLevel(logging.WARNING)
    if scripts and record:
        print("okryu: --script plays a scenario, --record makes one: not both", file=sys.stderr)
        return 2
    speaks = _dialect(settings, dialect)
    if speaks is None:
        return 2
    base = ussd_url(settings, url, speaks)
    if scripts:
        return asyncio.run(_play(settings, scripts, base, msisdn, speaks, network, seed))
    events: list[SessionEvent] = []
    try:
        asyncio.run(
            run_terminal(
                base,
                msisdn or DEFAULT_PHONE,
                code or settings.service_code,
                stdin_lines(),
                _write,
                dialect=speaks,
                network=network,
                seed=seed,
                record=events.append if record else None,
            )
        )
    except KeyboardInterrupt:
        pass
    if record:
        from simulators.scenario import save_scenario

        try:
            with open(record, "w", encoding="utf-8") as file:
                file.write(save_scenario(events))
        except OSError as error:
            print(f"okryu: cannot save the scenario: {error}", file=sys.stderr)
            return 1
        steps = sum(1 for event in events if event.kind in ("dial", "answer"))
        _write(f"Saved {steps} steps to {record}; replay: okryu phone --script {record}")
    return 0


def ussd_url(settings: Settings, url: str | None, speaks: Dialect) -> str:
    """Where a handset posts: ``url`` (the gateway's base URL, as both ``okryu phone`` and
    ``okryu load`` take it) with the dialect's path added, unless it has a path already. For
    ``smpp`` the handset talks to the USSD centre simulator (which talks SMPP to the gateway):
    its door by default, ``/ussd`` on a base URL."""
    from yarl import URL

    from simulators.ussdc import DEFAULT_HANDSET_URL, SMPP

    if speaks is SMPP and url is None:
        return DEFAULT_HANDSET_URL
    target = URL(url or f"http://{settings.host}:{settings.port}")
    if target.path in ("", "/"):
        target = target.with_path("/ussd" if speaks is SMPP else f"/ussd/{speaks.name}")
    return str(target)


def _dialect(settings: Settings, name: str) -> Dialect | None:
    """The dialect called ``name``: a built-in one, a reseller in the channels file, or
    ``smpp`` (a handset on the operator's network, through the USSD centre simulator)."""
    from gateway.channels import load_channels
    from gateway.simulator_web import speakers_of
    from simulators.ussdc import SMPP

    if name == SMPP.name:
        return SMPP

    try:
        speakers = speakers_of(load_channels(settings.channels_file))
    except SettingsError as error:
        print(f"okryu: {error}", file=sys.stderr)
        return None
    if name not in speakers:
        print(f"okryu: unknown dialect {name!r}; known: {', '.join(speakers)}", file=sys.stderr)
        return None
    return speakers[name]


async def _play(
    settings: Settings,
    scripts: Sequence[str],
    url: str,
    msisdn: str | None,
    speaks: Dialect,
    network: str | None,
    seed: int | None,
) -> int:
    """Play each scenario on a fresh number (unless one is given); 1 if any failed."""
    import random

    from simulators.load import phone_numbers
    from simulators.scenario import ScenarioError, load_scenario, run_scenario

    failed = 0
    for path in scripts:
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            print(f"okryu: {error}", file=sys.stderr)
            return 2
        number = msisdn or phone_numbers(1, random.randrange(2**32))[0]
        result = await run_scenario(
            scenario,
            url=url,
            msisdn=number,
            dialect=speaks,
            network=network,
            seed=0 if seed is None else seed,
            retry_window=settings.retry_window + RETRY_MARGIN,
        )
        if result.passed:
            _write(f"PASS {path} ({speaks.name}, {number})")
        else:
            failed += 1
            _write(result.report())
    return 1 if failed else 0


def load_command(
    settings: Settings,
    url: str | None,
    *,
    subscribers: int,
    duration: float,
    mix: str,
    dialect: str,
    network: str,
    seed: int,
    as_json: bool,
) -> int:
    """``okryu load``: the report on stdout, the progress bar on stderr (a terminal only)."""
    from simulators.load import LoadConfig, LoadError, ProgressBar, parse_mix, run_load
    from simulators.network import GOOD, network_profile

    logging.getLogger().setLevel(logging.WARNING)
    speaks = _dialect(settings, dialect)
    if speaks is None:
        return 2
    target = ussd_url(settings, url, speaks)
    profile = network_profile(network)
    try:
        config = LoadConfig(
            target,
            subscribers=subscribers,
            duration=duration,
            mix=parse_mix(mix),
            dialect=speaks,
            network=None if profile == GOOD else profile,
            seed=seed,
            retry_window=settings.retry_window + RETRY_MARGIN,
            service_code=settings.service_code,
        )
    except LoadError as error:
        print(f"okryu: {error}", file=sys.stderr)
        return 2
    progress = None
    if not as_json and sys.stderr.isatty():
        progress = ProgressBar(sys.stderr, duration)
    try:
        report = asyncio.run(run_load(config, progress=progress))
    except KeyboardInterrupt:
        return 130
    _write(report.to_json() if as_json else report.render())
    return 0


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
