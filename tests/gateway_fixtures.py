"""The real gateway app for tests: real Redis, a real database, the real engine."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool, UnixDomainSocketConnection

from gateway import lanes
from gateway.app import SERVER_OPTIONS, create_app
from gateway.redis_clients import Client, cluster_nodes, is_cluster
from gateway.redis_lane import Lane, Pending
from gateway.settings import HOP_DEADLINES, Settings
from simulators.ussdc import UssdCentre
from store.db import Database

__all__ = [
    "counting_redis",
    "gateway_settings",
    "make_gateway",
    "make_smpp_gateway",
    "RoundTrips",
    "SmppRig",
    "SMPP_PROFILES",
]

AT_PATH = "/ussd/africastalking"


class RoundTrips:
    """Counts what really goes over the wire: one per packed command (or batch) sent."""

    def __init__(self) -> None:
        self.count = 0


def _counting(base: type[Connection], trips: RoundTrips) -> type[Connection]:
    class Counting(base):  # type: ignore[valid-type,misc]
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            trips.count += 1
            await super().send_packed_command(command, check_health)

    return Counting


@pytest.fixture
async def counting_redis(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Client, RoundTrips]]:
    trips = RoundTrips()
    # The hops' batches go on a lane of their own (gateway.redis_lane): one write each.
    send = Lane.send

    def counted(lane: Lane, batch: list[Pending]) -> None:
        trips.count += 1
        send(lane, batch)

    monkeypatch.setattr(Lane, "send", counted)
    if is_cluster(redis_url):  # the same count: each node's pipeline is one packed send
        nodes = [ClusterNode(host, port) for host, port in cluster_nodes(redis_url)]
        cluster = RedisCluster(startup_nodes=nodes)
        await cluster.initialize()
        for node in cluster.get_nodes():  # no connection made yet but the topology's
            await node.disconnect()
            node.connection_class = _counting(Connection, trips)
        try:
            yield cluster, trips
        finally:
            await cluster.aclose()
        return
    pool = ConnectionPool.from_url(redis_url)
    base = UnixDomainSocketConnection if redis_url.startswith("unix:") else Connection
    pool.connection_class = _counting(base, trips)
    client = Redis(connection_pool=pool)
    try:
        yield client, trips
    finally:
        await client.aclose()
        await pool.disconnect()


@pytest.fixture
def gateway_settings(db: Database, redis_url: str, redis_prefix: str) -> Settings:
    return Settings(
        database_url=db.url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        demo=True,
        sms_dispatch=False,  # tests drive the dispatcher themselves, or turn it on
        # The longest deadline allowed: on a loaded CI machine a SQLite hop has outlasted the
        # 2 s default. Tests about the deadline set their own.
        hop_deadline=HOP_DEADLINES[1],
    )


@pytest.fixture
async def make_gateway(
    gateway_settings: Settings,
    seeded_db: Database,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    """Build the app through its factory (settings may be overridden) and serve it.

    ``aiohttp_client`` comes last, so it is set up after the database and Redis and torn down
    before them: the apps it serves stop (their background loops, their placements) before
    the tables are dropped. Torn down after, a catalog watch or a promise keeper still
    running met the teardown's ``DROP TABLE`` (a deadlock in PostgreSQL, now and then)."""

    async def make(redis: Client | None = None, **overrides: Any) -> TestClient[Any, Any]:
        settings = dataclasses.replace(gateway_settings, **overrides)
        app: web.Application = create_app(settings, redis=redis)
        server = TestServer(app)
        await server.start_server(**SERVER_OPTIONS)  # served as okryu serve serves it
        assert server.runner is not None
        lanes.install(server.runner, app)  # the USSD routes' fast lane too
        return await aiohttp_client(server)

    return make


# --- the gateway bound to a USSD centre over SMPP (channel "smpp") ----------------------------
# Each profile with the dialogue TLV its vendors use: deliver_sm/submit_sm named by
# user_message_reference (Eyeline), data_sm named by its_session_info.
SMPP_PROFILES = {
    "deliver_sm": "user_message_reference",
    "data_sm": "its_session_info",
}


@dataclasses.dataclass
class SmppRig:
    """A gateway bound to a USSD centre simulator, and where handsets reach the centre."""

    client: TestClient[Any, Any]
    centre: UssdCentre
    handset_url: str  # the centre's POST /ussd, which the ``smpp`` dialect speaks


@pytest.fixture
async def make_smpp_gateway(
    make_gateway: Callable[..., Awaitable[TestClient[Any, Any]]],
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> AsyncIterator[Callable[..., Awaitable[SmppRig]]]:
    """Start a USSD centre in ``profile`` and a gateway bound to it (SMS over the same bind
    unless ``sms_provider`` says otherwise); settings may be overridden."""
    centres: list[UssdCentre] = []

    async def make(profile: str = "deliver_sm", **overrides: Any) -> SmppRig:
        dialogue = overrides.pop("dialogue", SMPP_PROFILES[profile])
        centre = UssdCentre(profile=profile, dialogue=dialogue, **overrides.pop("centre", {}))
        await centre.start()
        centres.append(centre)
        settings = {
            "ussd_smpp_host": centre.host,
            "ussd_smpp_port": centre.port,
            "ussd_smpp_system_id": centre.system_id,
            "ussd_smpp_password": centre.password,
            "ussd_smpp_profile": profile,
            "ussd_smpp_dialogue": dialogue,
            "sms_provider": "smpp",  # the order's SMS over the same bind
            # Machine-speed answers: without hop numbers (user_message_reference), the same
            # answer twice a second apart would be taken for the centre sending it again.
            "retry_window": 0.0,
        }
        client = await make_gateway(**{**settings, **overrides})
        await centre.wait_for(lambda: centre.sessions == 1)
        server = await aiohttp_server(centre.handset_app())
        return SmppRig(client, centre, str(server.make_url("/ussd")))

    yield make
    for centre in centres:
        await centre.stop()
