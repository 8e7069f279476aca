"""A Redis that is killed and restarted: the gateway's pooled connections died with it.

The test runs its own redis-server (the binary the gateway uses) on a TCP port, fills the app's
connection pool with a burst of hops, SIGKILLs the server and starts a new one on the same
port. From the moment the new server answers PING, every hop and ``/readyz`` must succeed
within two seconds: a connection that died with the old server is dropped and its command sent
again on a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.embedded_redis import find_redis_server

AT_PATH = "/ussd/africastalking"
POOL = 40  # hops at once before the kill: the pool holds this many connections
ANSWER_WITHIN = 10.0  # seconds a fresh redis-server may take to answer PING
RECOVERED_WITHIN = 2.0  # seconds after Redis answers again by which everything succeeds
PROBE_INTERVAL = 0.005


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def answers_ping(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        return await reader.readline() == b"+PONG\r\n"
    except OSError:
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class RestartableRedis:
    """A redis-server on a fixed TCP port that can be killed and started again there."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.config = directory / "redis.conf"
        self.config.write_text(
            f'port {self.port}\nbind 127.0.0.1\nsave ""\nappendonly no\n'
            f'dir "{directory}"\nlogfile "{directory / "redis.log"}"\ndaemonize no\n'
        )
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> float:
        """Start the server; the loop time at which it first answered PING."""
        self.process = await asyncio.create_subprocess_exec(find_redis_server(), str(self.config))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_WITHIN
        while loop.time() < deadline:
            if await answers_ping(self.port):
                return loop.time()
            assert self.process.returncode is None, "redis-server exited"
            await asyncio.sleep(PROBE_INTERVAL)
        raise AssertionError(f"redis-server did not answer PING within {ANSWER_WITHIN} s")

    async def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, as in a crash or an OOM kill."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def restartable_redis(tmp_path: Path) -> AsyncIterator[RestartableRedis]:
    server = RestartableRedis(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


async def first_dials(client: TestClient[Any, Any], count: int, tag: str) -> list[str]:
    """``count`` subscribers dial at once; what each handset was shown."""

    async def dial(i: int) -> str:
        response = await client.post(
            AT_PATH,
            data={
                "sessionId": f"{tag}-{i}",
                "serviceCode": "*123#",
                "phoneNumber": f"+8501912{i:06d}",
                "text": "",
            },
        )
        return await response.text()

    return await asyncio.gather(*(dial(i) for i in range(count)))


def failed(screens: list[str]) -> int:
    # The home menu goes on (CON); the polite "not available" last screen ends (END).
    return sum(not screen.startswith("CON ") for screen in screens)


async def test_redis_restart_every_hop_and_readyz_succeed_within_two_seconds(
    make_gateway: Callable[..., Awaitable[TestClient[Any, Any]]],
    restartable_redis: RestartableRedis,
) -> None:
    client = await make_gateway(redis_url=restartable_redis.url)
    assert failed(await first_dials(client, POOL, "before")) == 0
    await restartable_redis.kill()
    answering = await restartable_redis.start()

    readyz = await client.get("/readyz")  # first: it takes the most recently pooled connection
    small = await first_dials(client, 10, "after-small")
    full = await first_dials(client, POOL, "after-full")  # every pooled connection
    again = await client.get("/readyz")
    recovered = asyncio.get_running_loop().time() - answering

    assert (readyz.status, (await readyz.json())["status"]) == (200, "ok")
    assert (failed(small), failed(full)) == (0, 0)
    assert again.status == 200
    assert recovered < RECOVERED_WITHIN


async def test_redis_down_readyz_says_so_at_once_and_hops_end_politely(
    make_gateway: Callable[..., Awaitable[TestClient[Any, Any]]],
    restartable_redis: RestartableRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await make_gateway(redis_url=restartable_redis.url)
    assert failed(await first_dials(client, 5, "before")) == 0
    await restartable_redis.kill()
    loop = asyncio.get_running_loop()
    asked = loop.time()

    readyz = await client.get("/readyz")
    answered = loop.time() - asked
    screens = await first_dials(client, 5, "down")

    assert readyz.status == 503
    assert (await readyz.json())["problems"] == {"redis": "ConnectionError"}
    assert answered < 1.0  # a refused connection is tried once more, not backed off for seconds
    assert all(screen.startswith("END Sorry") for screen in screens), screens
    # An outage is a line now and then, not a traceback a hop (a tester counted 448 each
    # subscriber in 4 s).
    outage = [r for r in caplog.records if r.name == "okryu.callbacks"]
    assert len(outage) == 1 and outage[0].exc_info is None
    assert "hops failing: redis unavailable" in outage[0].getMessage()
