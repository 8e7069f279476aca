"""``okryu``: serve the gateway, seed the demo catalog, hold a handset in the terminal."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

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
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"okryu: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "serve":
        return serve(settings)
    if args.command == "seed":
        return asyncio.run(seed(settings))
    return phone_command(settings, args.msisdn, args.url, args.code)


def serve(settings: Settings) -> int:
    from gateway.app import create_app
    from gateway.logs import AccessLogger

    print(
        f"Okryu gateway on http://{settings.host}:{settings.port}  "
        f"(USSD: POST /ussd/africastalking; handset: `okryu phone` in another terminal)",
        flush=True,
    )
    web.run_app(
        create_app(settings),
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


def phone_command(settings: Settings, msisdn: str, url: str | None, code: str | None) -> int:
    from simulators.terminal import run_terminal, stdin_lines

    logging.getLogger().setLevel(logging.WARNING)
    base = url or f"http://{settings.host}:{settings.port}/ussd/africastalking"
    try:
        asyncio.run(
            run_terminal(base, msisdn, code or settings.service_code, stdin_lines(), _write)
        )
    except KeyboardInterrupt:
        pass
    return 0


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
