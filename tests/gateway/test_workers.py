"""``okryu serve --workers N``: N processes on one port, counted as one, stopped as one."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.gateway.test_serve import serve_env  # noqa: F401  (a fixture)

OKRYU = [sys.executable, "-m", "gateway", "serve"]
WITHIN = 60.0  # seconds: workers start in a second or two, a loaded machine takes longer


async def started(process: subprocess.Popen[str]) -> str:
    """The banner, once the master prints it."""
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), WITHIN)
    assert line.startswith("Okryu gateway on "), line
    return line


async def workers_seen(base: str, tries: int = 60) -> set[int]:
    """Which workers answer /healthz, each request on a new connection."""
    seen: set[int] = set()
    for _ in range(tries):
        async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as response:
            seen.add((await response.json())["worker"])
    return seen


async def hop(base: str, session: str, phone: str) -> str:
    form = {"sessionId": session, "serviceCode": "*123#", "phoneNumber": phone, "text": ""}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/ussd/africastalking", data=form) as response:
            return await response.text()


def worker_pids(master: int) -> list[int]:
    found = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(master)], capture_output=True, text=True
    ).stdout
    return [int(line.split()[0]) for line in found.splitlines() if "spawn_main" in line]


async def test_workers_share_a_port_count_as_one_and_stop_as_one(
    serve_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    env = serve_env | {"OKRYU_WORKERS": "2", "OKRYU_SEED_IF_EMPTY": "1"}
    base = f"http://127.0.0.1:{env['OKRYU_PORT']}"
    process = subprocess.Popen(
        OKRYU, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert "(2 workers;" in await started(process)
        assert await workers_seen(base) == {0, 1}
        answers = await asyncio.gather(
            *(hop(base, f"w-{i}", f"+8501912340{i:03d}") for i in range(40))
        )
        assert all(answer.startswith("CON Okryu Shop") for answer in answers)
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
            metrics = await response.text()
        counted = re.search(
            r'okryu_hops_total\{channel="africastalking",screen="home"\} (\S+)', metrics
        )
        assert counted is not None and float(counted.group(1)) == 40.0  # both workers' hops

        # A worker that dies is started again; the port never stops answering.
        before = worker_pids(process.pid)
        assert len(before) == 2
        os.kill(before[1], signal.SIGKILL)
        async with asyncio.timeout(WITHIN):  # until the new worker answers too
            while await workers_seen(base, tries=20) != {0, 1}:
                await asyncio.sleep(0.1)
        after = worker_pids(process.pid)
        assert len(after) == 2 and before[1] not in after
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, None, WITHIN)
    assert process.returncode == 0, stderr
    assert worker_pids(process.pid) == []


async def test_workers_that_cannot_start_say_why_in_one_line(
    serve_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))  # no SO_REUSEPORT: the workers' port is taken
        held.listen()
        port = held.getsockname()[1]
        env = serve_env | {"OKRYU_WORKERS": "2", "OKRYU_PORT": str(port)}
        done = await asyncio.to_thread(
            subprocess.run, OKRYU, env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=WITHIN,
        )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.endswith(
        f"okryu: cannot listen on 127.0.0.1:{port} (OKRYU_HOST/OKRYU_PORT): "
        "address already in use\n"
    )
    assert done.stderr.count("okryu: ") == 1


@pytest.mark.parametrize("workers", ["0", "257", "two"])
def test_workers_setting_is_checked(
    serve_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
    workers: str,
) -> None:
    done = subprocess.run(
        OKRYU, env=serve_env | {"OKRYU_WORKERS": workers}, cwd=tmp_path, capture_output=True,
        text=True, timeout=WITHIN,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("okryu: OKRYU_WORKERS must be")
