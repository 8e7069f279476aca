"""``okryu serve`` as an operator meets it: a real process, its exit status, stdout and stderr.

A start that cannot succeed says why in one line naming the setting, and exits non-zero; a
start that succeeds prints its banner only once the socket is bound and Redis and the store
have answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import make_url

OKRYU = [sys.executable, "-m", "gateway", "serve"]
EXITS_WITHIN = 60.0  # seconds: a failing start takes about one, on a loaded machine a few
SECRET = "never-shown-pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def serve_env(tmp_path: Path, redis_url: str, redis_prefix: str) -> dict[str, str]:
    """A working configuration on a free port; tests spoil one setting each."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("OKRYU_")}
    env.update(
        OKRYU_HOST="127.0.0.1",
        OKRYU_PORT=str(free_port()),
        OKRYU_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'okryu.db'}",
        OKRYU_REDIS_URL=redis_url,
        OKRYU_REDIS_PREFIX=redis_prefix,
        OKRYU_ADMIN_TOKEN="t0ken",
        OKRYU_LOG_FORMAT="text",
        OKRYU_SMS_DISPATCH="0",
        OKRYU_VAR_DIR=str(tmp_path / "var"),
    )
    asyncio.run(_stocked(env["OKRYU_DATABASE_URL"]))  # an empty shop warns at start
    return env


async def _stocked(url: str) -> None:
    from store import migrate
    from store.db import Database
    from store.seed import seed_if_empty

    db = Database(url)
    try:
        await migrate.upgrade(db)
        await seed_if_empty(db)
    finally:
        await db.close()


def serve(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        OKRYU, env=env, cwd=cwd, capture_output=True, text=True, timeout=EXITS_WITHIN
    )


def test_serve_on_a_port_in_use_says_so_in_one_line(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = serve(serve_env | {"OKRYU_PORT": str(port)}, tmp_path)

    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"okryu: cannot listen on 127.0.0.1:{port} (OKRYU_HOST/OKRYU_PORT): "
        "address already in use\n",
    )


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("OKRYU_TEST_DATABASE_URL"), reason="needs OKRYU_TEST_DATABASE_URL"
)
def test_serve_with_an_unknown_database_says_so_in_one_line(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    # The server's own URL, naming a database it does not have (and a password: never shown).
    configured = make_url(os.environ["OKRYU_TEST_DATABASE_URL"])
    password = configured.password or SECRET
    url = configured.set(database="okryu_no_such_database", password=password)
    done = serve(
        serve_env | {"OKRYU_DATABASE_URL": url.render_as_string(hide_password=False)}, tmp_path
    )

    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        "okryu: cannot reach the database (OKRYU_DATABASE_URL): "
        'database "okryu_no_such_database" does not exist\n',
    )


def test_serve_with_a_wrong_database_port_says_so_in_one_line(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"postgresql+asyncpg://okryu:{SECRET}@127.0.0.1:{free_port()}/okryu"
    done = serve(serve_env | {"OKRYU_DATABASE_URL": url}, tmp_path)

    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        "okryu: cannot reach the database (OKRYU_DATABASE_URL): connection refused\n",
    )


def test_serve_with_libpq_s_sslmode_for_asyncpg_says_so_in_one_line(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    # asyncpg takes ssl=, not sslmode=: the driver would refuse it with a TypeError traceback.
    url = f"postgresql+asyncpg://okryu:{SECRET}@127.0.0.1:{free_port()}/okryu?sslmode=require"
    done = serve(serve_env | {"OKRYU_DATABASE_URL": url}, tmp_path)

    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "okryu: OKRYU_DATABASE_URL: asyncpg takes no sslmode: write ssl=require\n",
    )


def test_serve_with_a_sqlite_file_in_a_missing_directory_says_so_and_makes_none(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such"
    url = f"sqlite+aiosqlite:///{missing / 'okryu.db'}"
    done = serve(serve_env | {"OKRYU_DATABASE_URL": url}, tmp_path)

    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"okryu: cannot reach the database (OKRYU_DATABASE_URL): no such file or directory: "
        f"{missing}\n",
    )
    assert not (tmp_path / "no").exists()


def test_serve_with_a_channels_file_not_in_utf8_says_so_in_one_line(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "channels.toml"
    path.write_bytes(b"[atcompat.crossgate]\nmethod = 'G\xc9T'\n")
    done = serve(serve_env | {"OKRYU_CHANNELS_FILE": str(path)}, tmp_path)

    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"okryu: OKRYU_CHANNELS_FILE={path}: not UTF-8 (byte 0xc9 at offset 32)\n",
    )


def test_serve_without_redis_says_so_in_one_line_without_the_password(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    done = serve(serve_env | {"OKRYU_REDIS_URL": f"redis://:{SECRET}@127.0.0.1:{port}/0"}, tmp_path)

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("okryu: cannot reach Redis (OKRYU_REDIS_URL): "), done.stderr
    assert f"127.0.0.1:{port}" in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n"), done.stderr
    assert SECRET not in done.stderr


async def test_serve_prints_the_banner_once_it_answers_and_stops_cleanly_on_sigterm(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{serve_env['OKRYU_PORT']}"
    process = await asyncio.create_subprocess_exec(
        *OKRYU,
        env=serve_env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        banner = await asyncio.wait_for(process.stdout.readline(), EXITS_WITHIN)
        # Asked once each, the moment the banner is out: no waiting for the server to catch up.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as healthz:
                healthz_status = healthz.status
            async with http.get(f"{base}/readyz") as readyz:
                ready = (readyz.status, {"status": (await readyz.json())["status"]})
        process.send_signal(signal.SIGTERM)
        rest, errors = await asyncio.wait_for(process.communicate(), EXITS_WITHIN)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert banner.decode().startswith(f"Okryu gateway on {base}  (USSD: POST /ussd/")
    assert (healthz_status, ready) == (200, (200, {"status": "ok"}))
    assert (process.returncode, rest) == (0, b"")
    assert b"Traceback" not in errors, errors.decode()
