"""A Redis Cluster master killed under load: the real gateway over HTTP, a real 3x3 cluster.

The test starts its own cluster (tests/cluster_fixtures.py: a few seconds) so it runs in
every ``make test``, whatever Redis the rest of the suite uses. Subscribers whose
session slot lives on the killed master get the "try again" screen until its replica takes
over, and their hops succeed again within ``RECOVERED_WITHIN`` seconds of the promotion; the
subscribers of the other masters never notice; the sessions survive on the replica; and the
orders confirmed while it happened are placed once each.

What it measures (the failover gap: from the kill to the first hop answered again, per
affected subscriber) is printed: ``pytest tests/gateway/test_failover.py -s``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient
from redis.crc import key_slot
from sqlmodel import func, select

from gateway.local_cluster import LocalCluster
from store.db import Database
from store.models import Order, OutboundMessage
from tests.gateway.test_ussd import ORDER_PATH, hop
from tests.gateway_fixtures import AT_PATH

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
RECOVERED_WITHIN = 5.0  # seconds after the promotion by which every affected hop succeeds
SETTLED = 1.0  # seconds of load after that, to show it stays so
UNAVAILABLE = "END Sorry, the shop is not available right now. Please try again later."
PER_SIDE = 3  # subscribers browsing, and subscribers confirming an order, on each side


@dataclass
class Answer:
    at: float  # when the hop was sent (monotonic)
    status: int
    body: str


@dataclass
class Subscriber:
    msisdn: str
    affected: bool  # its session's slot is on the master the test kills
    answers: list[Answer] = field(default_factory=list)


def subscribers(victim_slots: range, count: int) -> tuple[list[str], list[str]]:
    """``count`` numbers whose session slot is on the victim, and ``count`` elsewhere."""
    on, off = [], []
    for n in range(100_000):
        msisdn = f"+8501912{n:06d}"
        slot = key_slot(f"{{*123#:{msisdn}}}".encode())
        side = on if slot in victim_slots else off
        if len(side) < count:
            side.append(msisdn)
        if len(on) == len(off) == count:
            break
    return on, off


async def post(client: TestClient[Any, Any], who: Subscriber, text: str, session: str) -> Answer:
    at = time.monotonic()
    response = await client.post(AT_PATH, data=hop(text, session=session, phone=who.msisdn))
    answer = Answer(at, response.status, await response.text())
    who.answers.append(answer)
    return answer


async def browse(client: TestClient[Any, Any], who: Subscriber, until: asyncio.Event) -> None:
    """Dial, open the shop and a category, again and again (a new session each time)."""
    round_ = 0
    while not until.is_set():
        round_ += 1
        for text in ("", "1", "1*1"):
            answer = await post(client, who, text, f"B{who.msisdn[-5:]}-{round_}")
            if answer.body == UNAVAILABLE:
                break  # the session ended on that screen: dial again


async def confirm(client: TestClient[Any, Any], who: Subscriber, session: str) -> None:
    """Press "confirm" until the order is placed, as an aggregator retrying the hop would."""
    while True:
        answer = await post(client, who, "*".join([*ORDER_PATH, "1"]), session)
        if answer.body != UNAVAILABLE:
            return


async def test_failover_a_killed_master_costs_only_its_slots_a_few_seconds(
    cluster: LocalCluster, make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway(redis_url=cluster.url)
    victim = cluster.ports[0]  # the first master: slots 0-5460
    on, off = subscribers(range(0, 5461), 2 * PER_SIDE)
    browsers = [Subscriber(m, True) for m in on[:PER_SIDE]]
    browsers += [Subscriber(m, False) for m in off[:PER_SIDE]]
    buyers = [Subscriber(m, True) for m in on[PER_SIDE:]]
    buyers += [Subscriber(m, False) for m in off[PER_SIDE:]]
    for who in buyers:  # each has a cart and stands on the confirm screen
        for depth in range(len(ORDER_PATH) + 1):
            answer = await post(client, who, "*".join(ORDER_PATH[:depth]), f"O{who.msisdn}")
            assert answer.status == 200 and answer.body.startswith("CON"), answer
    with cluster.client(victim) as master:  # the replica holds what the master acknowledged
        assert master.execute_command("WAIT", 1, 5000) == 1  # type: ignore[no-untyped-call]

    stop = asyncio.Event()
    load = [asyncio.create_task(browse(client, who, stop)) for who in browsers]
    while not all(who.answers for who in browsers):  # the load is on before the kill
        await asyncio.sleep(0.01)
    killed_at = time.monotonic()
    assert cluster.kill(victim, signal.SIGKILL)
    confirms = [asyncio.create_task(confirm(client, who, f"O{who.msisdn}")) for who in buyers]
    while not await asyncio.to_thread(cluster.is_master, cluster.replica_of(victim)):
        await asyncio.sleep(0.05)
    promoted_at = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*confirms), RECOVERED_WITHIN + SETTLED)
    await asyncio.sleep(RECOVERED_WITHIN + SETTLED)  # the load runs on: it must stay well
    stop.set()
    await asyncio.gather(*load)

    everyone = browsers + buyers
    answers = [answer for who in everyone for answer in who.answers]
    assert {answer.status for answer in answers} == {200}  # never a 5xx, never a 4xx
    for who in everyone:
        failed = [answer for answer in who.answers if answer.body == UNAVAILABLE]
        if not who.affected:
            assert failed == [], f"{who.msisdn}: another master's failover reached it"
            continue
        late = [a for a in failed if a.at > promoted_at + RECOVERED_WITHIN]
        assert late == [], f"{who.msisdn} failed {late[-1].at - promoted_at:.1f} s after"
    # The gap: from the kill to the last "try again" an affected subscriber was shown.
    failures = [a.at - killed_at for who in everyone for a in who.answers if a.body == UNAVAILABLE]
    assert any(a.body == UNAVAILABLE for who in browsers if who.affected for a in who.answers)

    # The buyers' sessions survived on the replica: the confirm found their carts, and each
    # placed exactly one order with one confirmation SMS, however many times it was sent.
    for who in buyers:
        assert who.answers[-1].body.startswith("END Order "), who.answers[-1]
    async with seeded_db.session() as session:
        for who in buyers:
            orders = select(func.count()).select_from(Order).where(Order.msisdn == who.msisdn)
            assert (await session.exec(orders)).one() == 1, who.msisdn
            sms = select(func.count()).where(
                OutboundMessage.to == who.msisdn, OutboundMessage.kind == "order_placed"
            )
            assert (await session.exec(sms)).one() == 1, who.msisdn
    print(
        f"\nfailover: replica promoted {promoted_at - killed_at:.2f} s after the kill; "
        f"'try again' shown from {min(failures):.2f} to {max(failures):.2f} s after it, "
        f"{len(failures)} of {len(answers)} hops, all on the killed master's slots"
    )
