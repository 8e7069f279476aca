"""``okryu``: serve the gateway, seed the demo catalog, hold a handset in the terminal."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from gateway import logs
from gateway.settings import Settings, SettingsError

DEFAULT_PHONE = "+8501912345678"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="okryu", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gateway (OKRYU_* variables configure it)")
    commands.add_parser("seed", help="load the demo catalog into an empty database")
    phone = commands.add_parser("phone", help="a handset in this terminal")
    phone.add_argument("--msisdn", default=DEFAULT_PHONE, help="the handset's number")
    phone.add_argument("--url", default=None, help="the gateway (default: OKRYU_HOST:OKRYU_PORT)")
    phone.add_argument("--code", default=None, help="the service code to dial (default *123#)")
    phone.add_argument(
        "--dialect",
        default="africastalking",
        help="the aggregator the handset speaks like: africastalking, hubtel, arkesel, nalo, "
        "hollatags, or a reseller in OKRYU_CHANNELS_FILE (default africastalking)",
    )
    from simulators.network import PROFILES

    phone.add_argument(
        "--network",
        default=None,
        choices=tuple(PROFILES),
        help="cross a simulated network: flaky drops, retries and delays hops",
    )
    phone.add_argument("--seed", type=int, default=None, help="replay one flaky network's run")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"okryu: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format)
    if args.command == "serve":
        return serve(settings)
    if args.command == "seed":
        return asyncio.run(seed(settings))
    return phone_command(
        settings,
        args.msisdn,
        args.url,
        args.code,
        dialect=args.dialect,
        network=args.network,
        seed=args.seed,
    )


def serve(settings: Settings) -> int:
    from gateway.app import create_app
    from gateway.logs import AccessLogger

    print(
        f"Okryu gateway on http://{settings.host}:{settings.port}  "
        f"(USSD: POST /ussd/africastalking; handset: `okryu phone` in another terminal)",
        flush=True,
    )
    web.run_app(
        create_app(settings, freeze_gc=True),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log_class=AccessLogger,
    )
    return 0


async def seed(settings: Settings) -> int:
    from store.db import Database
    from store.seed import seed_if_empty

    db = Database(settings.database_url)
    try:
        await db.create_all()
        seeded = await seed_if_empty(db)
    finally:
        await db.close()
    print("seeded the demo catalog" if seeded else "the catalog already has data; left it alone")
    return 0


def phone_command(
    settings: Settings,
    msisdn: str,
    url: str | None,
    code: str | None,
    *,
    dialect: str = "africastalking",
    network: str | None = None,
    seed: int | None = None,
) -> int:
    from gateway.channels import load_channels
    from gateway.channels.atcompat import AtCompatible
    from simulators.phone import DIALECTS, Dialect, at_compatible
    from simulators.terminal import run_terminal, stdin_lines

    logging.getLogger().setLevel(logging.WARNING)
    speaks: Dialect | None = DIALECTS.get(dialect)
    if speaks is None:  # a reseller configured in the channels file speaks AT under its names
        try:
            channels = load_channels(settings.channels_file)
        except SettingsError as error:
            print(f"okryu: {error}", file=sys.stderr)
            return 2
        channel = channels.get(dialect)
        if not isinstance(channel, AtCompatible):
            known = ", ".join(dict.fromkeys([*DIALECTS, *channels]))
            print(f"okryu: unknown dialect {dialect!r}; known: {known}", file=sys.stderr)
            return 2
        speaks = at_compatible(dialect, channel.method, channel.fields)
    base = url or f"http://{settings.host}:{settings.port}/ussd/{speaks.name}"
    try:
        asyncio.run(
            run_terminal(
                base,
                msisdn,
                code or settings.service_code,
                stdin_lines(),
                _write,
                dialect=speaks,
                network=network,
                seed=seed,
            )
        )
    except KeyboardInterrupt:
        pass
    return 0


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
