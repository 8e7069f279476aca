"""``okryu serve --workers N``: N processes serving one port, one per core.

The first process (the master) prepares what all share, then starts the workers and watches
them: it starts the embedded redis-server when no ``OKRYU_REDIS_URL`` is set (the workers
must share one), brings the schema to its newest revision and seeds an empty demo catalog
once, and gives the workers a directory for Prometheus' multiprocess mode, so ``/metrics``
on any of them adds up the counts of all. Each worker opens the port itself with
``SO_REUSEPORT``: the kernel spreads connections over them, and no process stands between a
request and its worker.

Work that must not run N times: the SMS dispatcher runs in worker 0 only (one SMPP bind, one
send rate; rows queued by other workers wait at most ``OKRYU_SMS_POLL_INTERVAL``). What is
safe everywhere runs everywhere: each worker keeps promises (idempotent), listens for catalog
versions, and adds its funnel counts. A worker that dies is started again; SIGTERM or SIGINT
stops them all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

from gateway.settings import Settings, SettingsError
from gateway.startup import StartupError

log = logging.getLogger("okryu.workers")

READY_WITHIN = 120.0  # seconds a worker has to bind its socket and answer
RESTART_AFTER = 1.0  # seconds before a worker that died is started again
STOP_WITHIN = 15.0  # seconds workers have to finish their hops after SIGTERM
WORKER_ENV = "OKRYU_WORKER"  # which worker a process is (set by the master)
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it at import


def worker_index() -> int | None:
    """This process's worker number, or None when it is not a worker of a master."""
    raw = os.environ.get(WORKER_ENV)
    return int(raw) if raw is not None and raw.isdigit() else None


def serve_workers(settings: Settings, count: int) -> int:
    """Run ``count`` workers until SIGTERM or SIGINT; the process's exit status."""
    from gateway.embedded_redis import BlockingEmbeddedRedis

    embedded: BlockingEmbeddedRedis | None = None
    metrics_dir = tempfile.mkdtemp(prefix="okryu-metrics-")
    os.environ[METRICS_ENV] = metrics_dir
    try:
        if settings.redis_url is None:
            embedded = BlockingEmbeddedRedis()
            os.environ["OKRYU_REDIS_URL"] = embedded.start()
            settings = dataclasses.replace(settings, redis_url=os.environ["OKRYU_REDIS_URL"])
        _prepare(settings)
        return _Master(settings, count).run()
    except StartupError as error:
        print(f"okryu: {error}", flush=True, file=_stderr())
        return 1
    finally:
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _stderr() -> Any:
    import sys

    return sys.stderr


def _prepare(settings: Settings) -> None:
    """What every worker would otherwise do at once: migrate, and seed an empty demo."""
    from gateway.startup import database_failures
    from store import migrate
    from store.db import Database
    from store.seed import seed_if_empty

    async def prepare() -> None:
        with database_failures(settings.database_url):
            async with Database(settings.database_url) as db:
                await migrate.upgrade(db)
                if settings.seed_if_empty and await seed_if_empty(db):
                    log.info("seeded the demo catalog")

    asyncio.run(prepare())


class _Master:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.context = multiprocessing.get_context("spawn")
        self.workers: dict[int, multiprocessing.process.BaseProcess] = {}
        self.pipes: dict[int, Connection] = {}  # kept open: a worker tells it when it is up
        self.stopping = False

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        failure = self._start_all()
        if failure is not None:
            self._terminate()
            print(f"okryu: {failure}", flush=True, file=_stderr())
            return 1
        base = f"http://{self.settings.host}:{self.settings.port}"
        print(
            f"Okryu gateway on {base}  ({self.count} workers; USSD: POST /ussd/<aggregator>;"
            " a handset: `okryu phone`"
            + (f" or {base}/simulator/" if self.settings.simulator else "")
            + ")",
            flush=True,
        )
        while not self.stopping:
            for index, process in list(self.workers.items()):
                if not process.is_alive() and not self.stopping:
                    log.warning(
                        "worker %d ended (status %s); starting it again", index, process.exitcode
                    )
                    self._drain(index)
                    _mark_dead(process.pid)
                    time.sleep(RESTART_AFTER)
                    self._start(index)
            time.sleep(0.2)
        return self._terminate()

    def _drain(self, index: int) -> None:
        """Whatever the worker said before it ended (why it could not start), logged."""
        pipe = self.pipes.get(index)
        while pipe is not None and pipe.poll(0):
            try:
                said = pipe.recv()
            except EOFError:
                return
            if said != "ready":
                log.warning("worker %d: %s", index, said)

    def _stop(self, signum: int, _frame: Any) -> None:
        self.stopping = True

    def _start_all(self) -> str | None:
        """Start every worker; the reason one could not start, or None."""
        pipes = {index: self._start(index) for index in range(self.count)}
        deadline = time.monotonic() + READY_WITHIN
        for index, pipe in pipes.items():
            remaining = max(0.0, deadline - time.monotonic())
            if not pipe.poll(remaining):
                return f"worker {index} did not start within {READY_WITHIN:g} s"
            said = pipe.recv()
            if said != "ready":
                return str(said)
        return None

    def _start(self, index: int) -> Connection:
        parent, child = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=_worker, args=(index, child), name=f"okryu-worker-{index}", daemon=False
        )
        process.start()
        child.close()
        self.workers[index] = process
        old = self.pipes.pop(index, None)
        if old is not None:
            old.close()
        self.pipes[index] = parent
        return parent

    def _terminate(self) -> int:
        for process in self.workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WITHIN
        for process in self.workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        return 0


def _mark_dead(pid: int | None) -> None:
    if pid is None or METRICS_ENV not in os.environ:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def worker_settings(settings: Settings, index: int) -> Settings:
    """What worker ``index`` runs with: the master migrated and seeded; one dispatcher (and
    one SMPP bind) for all, in worker 0."""
    settings = dataclasses.replace(
        settings, seed_if_empty=False, sms_dispatch=settings.sms_dispatch and index == 0
    )
    if index != 0 and settings.ussd_smpp:
        # One USSD bind, in worker 0: a dialogue's messages must reach the process that knows
        # it. The others send no SMS (the dispatcher is worker 0's), so need no bind either.
        shared = settings.sms_over_ussd_bind
        settings = dataclasses.replace(
            settings, ussd_smpp_host="", sms_provider="log" if shared else settings.sms_provider
        )
    return settings


def _worker(index: int, ready: Connection) -> None:
    """One worker: the gateway on the shared port, told ready (or why not) through ``ready``."""
    os.environ[WORKER_ENV] = str(index)
    from gateway import logs, serving

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        ready.send(str(error))
        return
    logs.configure(settings.log_format)
    settings = worker_settings(settings, index)
    status = serving.serve(settings, ready=ready, worker=index)
    if status != 0:
        raise SystemExit(status)
