"""The async engine: a SQLite file (WAL) by default, PostgreSQL when the URL says so."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from store.handout import Connections
from store.turns import Turns

DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")  # the async drivers the store installs
# What asyncpg takes from a URL's query: SQLAlchemy hands every key to asyncpg.connect() as a
# string, and asyncpg refuses an unknown keyword (TypeError) or a string where it wants a
# number (statement_cache_size, timeout). These take a string; host, port, user, password and
# database may also come from the query (a unix socket: ?host=/var/run/postgresql).
ASYNCPG_OPTIONS = frozenset(
    {
        "ssl",
        "command_timeout",
        "prepared_statement_cache_size",  # SQLAlchemy's own, made a number before asyncpg
        "target_session_attrs",
        "passfile",
        "service",
        "servicefile",
        "krbsrvname",
        "gsslib",
        "host",
        "port",
        "user",
        "password",
        "database",
    }
)
# PostgreSQL out of reach on the driver's own connections (Database.rows, an order's one call), as
# SQLAlchemy's OperationalError and InterfaceError say it on the ORM's: a connection lost, the
# server shutting down or starting up.
DRIVER_OUTAGES = (
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
T = TypeVar("T")
POOL_SIZE = 10  # PostgreSQL connections per pool (SQLAlchemy's, and the hot path's hand-out)
# Order calls in flight at once per product, per process (store/turns.py). Measured (README,
# benchmark) on this project's 2-core machine with 50 handsets ordering one product, two
# gateways taking windows in turns on one database: three at once against ten (the hand-out's
# size, the limit before) gave 6-24% more order hops over three runs; two and five as three.
ORDER_CALLS = 3
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class Database:
    """One engine and its session factory.

    SQLite allows one writer at a time; a deferred transaction that reads before it writes can
    fail to upgrade its lock, or read what another process then changes. In-process, writers
    therefore queue on one lock, and each takes the file's write lock before it reads
    (``BEGIN IMMEDIATE``); across processes, ``busy_timeout`` makes them wait instead of
    failing.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQL parameters are subscribers' numbers, addresses and SMS bodies: keep them out of
        # every error's text and the echo log (gateway.logs withholds the rest of the text).
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            _ensure_parent(url)
            # SQLite's calls run where they are awaited, not on aiosqlite's thread: each is
            # microseconds in C (WAL: a commit is no fsync), while handing every call to a
            # thread and back cost a hop ~1 ms, and fought the event loop for the GIL.
            kwargs["connect_args"] = {"async_creator_fn": _inline_connection}
        else:
            kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_SIZE, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.order_turns = Turns(ORDER_CALLS)  # PostgreSQL's order calls, per product
        self._path = url.split(":///", 1)[-1] if self.is_sqlite else ""
        self._reader: sqlite3.Connection | None = None
        self._compiled: dict[Any, tuple[str, list[str]]] = {}
        self._pool: Connections | None = None
        self._writer: sqlite3.Connection | None = None

    def session(self) -> AsyncSession:
        """A session for reads (and writes that need no serialising)."""
        return self.sessions()

    async def first(self, query: Any, **params: Any) -> tuple[Any, ...] | None:
        """The first row of a read-only ``query`` (its ``bindparam`` values in ``params``)."""
        found = await self.rows(query, **params)
        return found[0] if found else None

    async def rows(self, query: Any, **params: Any) -> list[tuple[Any, ...]]:
        """The rows of a read-only ``query`` (its ``bindparam`` values in ``params``).

        For the reads on a hop's path (a new subscriber's profile, the cards at checkout):
        the query's SQL, compiled once, runs on the driver itself. On SQLite that is a plain
        connection of this process, a few microseconds where a pooled SQLAlchemy connection
        costs about 80 (a transaction begun and rolled back around one SELECT); a SELECT
        there sees every committed write (WAL). On PostgreSQL it is one round trip on
        :meth:`pool`'s connection where a SQLAlchemy session made four (ping, BEGIN, SELECT,
        ROLLBACK): about a fifth of the client's CPU.
        """
        sql, names = self._compiled.get(query) or self._compile(query)
        values = [params[n] for n in names]
        if not self.is_sqlite:
            pool = await self.pool()
            return [tuple(row) for row in await pool.fetch(sql, *values)]
        if self._reader is None:
            self._reader = sqlite3.connect(self._path, check_same_thread=False)
            self._reader.execute("PRAGMA query_only=ON")
        found: list[tuple[Any, ...]] = self._reader.execute(sql, values).fetchall()
        return found

    async def pool(self) -> Connections:
        """PostgreSQL: the connections lent to the statements on a hop's path that need no
        session (:meth:`rows`, an order's one call), one statement at a time
        (:mod:`store.handout`). Made on first use, from the engine's URL (so the same host,
        credentials and options)."""
        assert not self.is_sqlite, "a SQLite store has no connection hand-out"
        if self._pool is None:
            options = self.driver_options()
            self._pool = Connections(lambda: asyncpg.connect(**options), POOL_SIZE)
        return self._pool

    def driver_options(self) -> dict[str, Any]:
        """PostgreSQL: what ``asyncpg.connect`` takes for this store's URL."""
        _, options = self.engine.dialect.create_connect_args(make_url(self.url))
        options.pop("prepared_statement_cache_size", None)  # SQLAlchemy's, not asyncpg's
        return dict(options)

    def _compile(self, query: Any) -> tuple[str, list[str]]:
        compiled = query.compile(dialect=self.engine.dialect)
        found = self._compiled[query] = (str(compiled), list(compiled.positiontup or ()))
        return found

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed on success, rolled back on error."""
        if self._write_lock is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self.sessions() as session, session.begin():
            # The file's write lock first, then the reads: the driver would BEGIN only before
            # the first write, and a writer of another process (``okryu serve --workers N``
            # on one file) could change what this transaction read before it wrote (a PIN
            # attempt counted once for two, a message claimed by two dispatchers).
            await (await session.connection()).exec_driver_sql("BEGIN IMMEDIATE")
            yield session

    async def write_now(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """SQLite: ``work(connection)`` in one transaction (BEGIN IMMEDIATE, then COMMIT, or
        ROLLBACK if it raises), on a plain writer connection of this process, in this
        process's writer queue. ``work`` is synchronous: the transaction never waits on the
        event loop, so the writer lock is held for the statements' own microseconds."""
        assert self._write_lock is not None, "write_now is SQLite's"
        async with self._write_lock:
            if self._writer is None:
                self._writer = sqlite3.connect(
                    self._path, isolation_level=None, check_same_thread=False
                )
                _sqlite_pragmas(self._writer, None)
            writer = self._writer
            writer.execute("BEGIN IMMEDIATE")
            try:
                done = work(writer)
                writer.execute("COMMIT")
            except BaseException:
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
                raise
            return done

    async def create_all(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)

    async def drop_all(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.drop_all)

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        await self.engine.dispose()


class _InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection, with each call made in the awaiting coroutine: no thread.

    Safe because one process queues its writers on ``Database.write``'s lock; a writer in
    another process makes ours wait (``busy_timeout``) for the length of its transaction.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> aiosqlite.Connection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _inline_connection(database: str, **kwargs: Any) -> _InlineConnection:
    return _InlineConnection(partial(sqlite3.connect, database, **kwargs), iter_chunk_size=64)


def url_problem(url: str) -> str | None:
    """Why the store cannot use ``url``, told without connecting; ``None`` if it may.

    The words never quote the URL or a value from it: it may hold a password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "not a database URL, like postgresql+asyncpg://user:password@host/database"
    if parsed.drivername not in DRIVERS:
        return f"the store speaks {' or '.join(f'{d}://' for d in DRIVERS)}, no other"
    if parsed.drivername != "postgresql+asyncpg":
        return None
    for key, value in parsed.query.items():
        if key == "sslmode":  # libpq's name, which asyncpg's keyword is not
            mode = value if isinstance(value, str) and value in SSL_MODES else "require"
            return f"asyncpg takes no sslmode: write ssl={mode}"
        if key not in ASYNCPG_OPTIONS:
            return f"asyncpg takes no option {key!r}; it takes {', '.join(sorted(ASYNCPG_OPTIONS))}"
        if key == "ssl" and value not in SSL_MODES:
            return f"ssl must be one of {', '.join(SSL_MODES)}"
    return None


def _ensure_parent(url: str) -> None:
    """Make the directory of a relative SQLite path (the default ``var/``); an absolute one
    must exist: a typo there should fail, not create directories wherever it points."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    parent = Path(path).parent
    if not parent.is_absolute():
        parent.mkdir(parents=True, exist_ok=True)
    elif not parent.is_dir():
        code = errno.ENOTDIR if parent.exists() else errno.ENOENT
        raise OSError(code, os.strerror(code), str(parent))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
