"""A fleet: two ``okryu serve`` processes on two ports (two machines, on one), sharing a Redis
Cluster and one database, each with its SMS dispatcher on, both sending to one SMSC.

Subscribers' hops alternate between them, as an operator's load balancer would send them; a
confirm sent to both at once and then again places one order; an admin change through one
shows on the other's next hop; every SMS reaches the SMSC once; the metrics of the two add up
to the hops sent, and the funnel they both write adds up to the sessions that ran.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import func, select

from gateway.local_cluster import LocalCluster
from simulators.smsc import DEFAULT_PASSWORD, DEFAULT_SYSTEM_ID, Smsc
from store import reports
from store.db import Database
from store.models import Order, OutboundMessage, utcnow
from tests.gateway.test_serve import free_port
from tests.gateway.test_ussd import ORDER_PATH, hop

OKRYU = [sys.executable, "-m", "gateway", "serve"]
ROOT = Path(__file__).resolve().parents[2]
STARTS_WITHIN = 60.0  # seconds: a start takes one or two, a few on a loaded machine
TOKEN = "fleet-t0ken"
SUBSCRIBERS = 4
CONFIRM = "*".join([*ORDER_PATH, "1"])


class Gateway:
    """One ``okryu serve`` of the fleet."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"

    async def post(self, http: aiohttp.ClientSession, text: str, phone: str, session: str) -> str:
        async with http.post(
            f"{self.base}/ussd/africastalking", data=hop(text, session=session, phone=phone)
        ) as response:
            assert response.status == 200, await response.text()
            return await response.text()

    async def hops_counted(self, http: aiohttp.ClientSession) -> float:
        async with http.get(f"{self.base}/metrics") as response:
            text = await response.text()
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("okryu_hops_total{")
        )


@pytest.fixture
async def fleet(
    cluster: LocalCluster, seeded_db: Database, smsc: Smsc, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[list[Gateway]]:
    if seeded_db.is_sqlite:
        # Two processes' dispatchers on one SQLite file could claim the same row: its claim
        # is serialised per process only (okryu serve --workers runs a single dispatcher).
        pytest.skip("a fleet shares PostgreSQL (OKRYU_TEST_DATABASE_URL), not a SQLite file")
    base = {name: value for name, value in os.environ.items() if not name.startswith("OKRYU_")}
    base.update(
        OKRYU_HOST="127.0.0.1",
        OKRYU_DATABASE_URL=seeded_db.url,
        OKRYU_REDIS_URL=cluster.url,
        OKRYU_REDIS_PREFIX=redis_prefix,
        OKRYU_ADMIN_TOKEN=TOKEN,
        OKRYU_LOG_FORMAT="text",
        OKRYU_SMS_PROVIDER="smpp",
        OKRYU_SMPP_PORT=str(smsc.port),
        OKRYU_SMPP_SYSTEM_ID=DEFAULT_SYSTEM_ID,
        OKRYU_SMPP_PASSWORD=DEFAULT_PASSWORD,
        OKRYU_SMS_POLL_INTERVAL="0.05",
    )
    gateways: list[Gateway] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            env = base | {"OKRYU_PORT": str(port), "OKRYU_VAR_DIR": str(tmp_path / name)}
            process = await asyncio.create_subprocess_exec(
                *OKRYU, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            gateways.append(Gateway(process, port))
        for gateway in gateways:  # both start (and migrate) at once; each says when it answers
            assert gateway.process.stdout is not None
            banner = await asyncio.wait_for(gateway.process.stdout.readline(), STARTS_WITHIN)
            assert banner.startswith(b"Okryu gateway on "), banner
        yield gateways
    finally:
        for gateway in gateways:
            if gateway.process.returncode is None:
                gateway.process.send_signal(signal.SIGTERM)
        for gateway in gateways:
            try:
                await asyncio.wait_for(gateway.process.wait(), STARTS_WITHIN)
            except TimeoutError:
                gateway.process.kill()
                await gateway.process.wait()


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    async with Smsc() as server:
        yield server


async def queued(db: Database) -> int:
    async with db.session() as session:
        waiting = select(func.count()).select_from(OutboundMessage)
        waiting = waiting.where(OutboundMessage.status == "queued")
        return int((await session.exec(waiting)).one())


async def test_fleet_two_gateways_share_sessions_orders_sms_catalog_and_counts(
    fleet: list[Gateway], seeded_db: Database, smsc: Smsc
) -> None:
    a, b = fleet
    phones = [f"+85019120{n:05d}" for n in range(SUBSCRIBERS)]
    sent = 0
    async with aiohttp.ClientSession() as http:
        # Every subscriber's hops alternate between the two, from the dial to the confirm
        # screen; then the confirm goes to both at once, and once more to the other.
        for n, phone in enumerate(phones):
            session = f"F{n}"
            for depth in range(len(ORDER_PATH) + 1):
                gateway = fleet[(depth + n) % 2]
                body = await gateway.post(http, "*".join(ORDER_PATH[:depth]), phone, session)
                assert body.startswith("CON"), body
                sent += 1
            answers = await asyncio.gather(
                a.post(http, CONFIRM, phone, session), b.post(http, CONFIRM, phone, session)
            )
            answers.append(await fleet[n % 2].post(http, CONFIRM, phone, session))
            sent += 3
            assert len(set(answers)) == 1 and answers[0].startswith("END Order "), answers

        # An admin change through one shows on the other's next hop.
        assert (await b.post(http, "", "+8501912099999", "C1")).startswith("CON")
        assert "Corn noodles" in await b.post(http, "1*1", "+8501912099999", "C1")
        async with http.patch(
            f"{a.base}/admin/api/products/FD-CORNNOODLE",
            json={"name_en": "Fleet noodles"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response:
            assert response.status == 200, await response.text()
        assert "1. Fleet noodles" in await b.post(http, "1*1*0*1", "+8501912099999", "C1")
        sent += 3

        # Both dispatchers run: every confirmation reaches the SMSC, once.
        await smsc.wait_for(lambda: len(smsc.messages) >= SUBSCRIBERS, timeout=30.0)
        async with asyncio.timeout(30.0):
            while await queued(seeded_db):  # an SMS sent twice would be sent by now
                await asyncio.sleep(0.05)  # another process's progress: nothing to await
        recipients = sorted("+" + m.parts[0].destination.lstrip("+") for m in smsc.messages)
        assert recipients == sorted(phones)

        counted = await a.hops_counted(http) + await b.hops_counted(http)
        assert counted == sent
    async with seeded_db.session() as db:
        assert (await db.exec(select(func.count()).select_from(Order))).one() == SUBSCRIBERS

    for gateway in fleet:  # a stopping process adds its funnel counts to the database
        gateway.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gateway.process.wait(), STARTS_WITHIN) == 0
    now = utcnow()
    funnel = await reports.funnel(seeded_db, now - timedelta(hours=1), now + timedelta(hours=1))
    assert funnel["placed"] == SUBSCRIBERS
    assert funnel["confirm"] == SUBSCRIBERS
