"""Hops/s of one and of two gateway processes sharing a Redis Cluster (README "Running a fleet").

    .venv/bin/python bench/fleet.py [--subscribers 50] [--duration 10] [--mix browse:100]

Starts a 3-master, 3-replica cluster of its own on free loopback ports (gateway.local_cluster),
then ``okryu serve`` once and drives it with ``okryu load``; then two ``okryu serve`` on two
ports, each driven by its own ``okryu load`` with half the subscribers. The store is
``OKRYU_BENCH_DATABASE_URL`` (PostgreSQL for orders: two processes' dispatchers must not
share a SQLite file), else a fresh SQLite file, which serves browsing. Prints a Markdown table.
Every process here shares the machine's cores: the figures say what one machine does, and
how much a second process adds on it, not what two machines would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.local_cluster import start_on_free_ports  # noqa: E402

OKRYU = [sys.executable, "-m", "gateway"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def serve(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        *OKRYU, "serve", env=env | {"OKRYU_PORT": str(port)}, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    banner = await asyncio.wait_for(process.stdout.readline(), 60)
    if not banner.startswith(b"Okryu gateway on "):
        raise SystemExit(f"okryu serve did not start: {banner!r}")
    return process


async def load(env: dict[str, str], port: int, args: argparse.Namespace, subscribers: int,
               seed: int) -> dict[str, Any]:  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *OKRYU, "load", "--url", f"http://127.0.0.1:{port}", "--subscribers", str(subscribers),
        "--duration", str(args.duration), "--mix", args.mix, "--seed", str(seed), "--json",
        env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    report: dict[str, Any] = json.loads(out)
    return report


async def stop(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        await process.wait()


async def run(args: argparse.Namespace, env: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    for count in (1, 2):
        ports = [free_port() for _ in range(count)]
        servers = [await serve(env, port) for port in ports]
        try:
            share = max(1, args.subscribers // count)
            reports = await asyncio.gather(
                *(load(env, port, args, share, seed) for seed, port in enumerate(ports))
            )
        finally:
            await stop(servers)
        hops = sum(report["hops"] for report in reports)
        errors = sum(sum(report["errors"].values()) for report in reports)
        p99 = max(report["latency_ms"].get("p99", 0.0) for report in reports)
        rows.append((count, {"hops_per_s": hops / args.duration, "errors": errors, "p99_ms": p99}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--mix", default="browse:100")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="okryu-fleet-") as work:
        cluster = start_on_free_ports(Path(work) / "cluster")
        url = cluster.url
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("OKRYU_")}
            env.update(
                OKRYU_HOST="127.0.0.1",
                OKRYU_REDIS_URL=url,
                OKRYU_DATABASE_URL=os.environ.get(
                    "OKRYU_BENCH_DATABASE_URL", f"sqlite+aiosqlite:///{work}/okryu.db"
                ),
                OKRYU_SEED_IF_EMPTY="1",
                OKRYU_ADMIN_TOKEN="bench",
                OKRYU_LOG_FORMAT="text",
                OKRYU_VAR_DIR=f"{work}/var",
            )
            rows = asyncio.run(run(args, env))
        finally:
            cluster.stop()
    print(f"\n{args.subscribers} subscribers, {args.duration:g} s, mix {args.mix}, "
          f"{os.cpu_count()} cores, Redis Cluster 3x3 on loopback")  # fmt: skip
    print("| gateway processes | hops/s | p99 ms | errors |\n|---|---|---|---|")
    for count, row in rows:
        print(f"| {count} | {row['hops_per_s']:,.0f} | {row['p99_ms']:.1f} | {row['errors']} |")


if __name__ == "__main__":
    main()
