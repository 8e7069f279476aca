"""The link to the SMSC: one connection, and a transceiver bind kept up over it.

:class:`Link` is one TCP connection: it writes PDUs, matches each response to its request by
sequence number, and hands the SMSC's own requests on. :class:`Binding` keeps one transceiver
bind up: it connects and binds (``bind_transceiver``), sends ``enquire_link`` every
``enquire_interval`` seconds and drops a connection whose SMSC stops answering, answers the
SMSC's ``enquire_link`` and ``unbind``, and reconnects with capped, jittered exponential
backoff. The SMSC's ``deliver_sm`` and ``data_sm`` go to ``on_deliver``; a PDU that cannot be
read is answered ``generic_nack`` and the connection made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from gateway.smpp.codec import (
    BIND_TRANSCEIVER,
    DATA_SM,
    DELIVER_SM,
    ENQUIRE_LINK,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_ROK,
    GENERIC_NACK,
    RESPONSE,
    UNBIND,
    BadLength,
    Pdu,
    SmppError,
    cstring,
    read_pdu,
    status_name,
)

logger = logging.getLogger("okryu.smpp")

_INTERFACE_VERSION = 0x34


class LinkClosed(SmppError):
    """The connection ended before the SMSC answered."""


class Link:
    """One TCP connection: writes PDUs, matches responses to requests, hands requests on."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_request: Callable[[Link, Pdu], Awaitable[bool]],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_request = on_request
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._sequence = 0
        self._closed = asyncio.Event()
        self._reading = asyncio.create_task(self._read_loop())

    @property
    def open(self) -> bool:
        return not self._closed.is_set() and not self._writer.is_closing()

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def reply(
        self, request: Pdu, command_id: int, status: int = ESME_ROK, body: bytes = b""
    ) -> None:
        """Answer ``request``; a reply on a closed connection is dropped (the peer resends)."""
        if self.open:
            self._writer.write(Pdu(command_id, request.sequence, status, body).encode())

    async def request(self, command_id: int, body: bytes, timeout: float) -> Pdu:
        """Send a request and wait for its response (or generic_nack) for ``timeout`` seconds."""
        if not self.open:
            raise LinkClosed("not connected")
        sequence = self._next_sequence()
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = future
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(Pdu(command_id, sequence, ESME_ROK, body).encode())
                await self._writer.drain()
                return await future
        except ConnectionError as exc:
            raise LinkClosed(f"{type(exc).__name__}: {exc}") from None
        finally:
            self._pending.pop(sequence, None)

    async def wait_closed(self) -> None:
        """Return when the connection ended: closed by the peer, by unbind or by ``close()``."""
        await self._closed.wait()

    async def close(self) -> None:
        """Close the connection (again, harmlessly) and fail the requests still waiting."""
        self._mark_closed()
        self._reading.cancel()
        await asyncio.gather(self._reading, return_exceptions=True)
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    def _mark_closed(self) -> None:
        self._closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkClosed("connection lost"))

    async def _read_loop(self) -> None:
        try:
            while True:
                pdu = await read_pdu(self._reader)
                if pdu.command_id & RESPONSE:  # a response, or generic_nack
                    future = self._pending.get(pdu.sequence)
                    if future is not None and not future.done():
                        future.set_result(pdu)
                    continue
                if not await self._on_request(self, pdu):
                    return
        except BadLength as exc:
            # Garbage: no PDU boundary left to read on. Say so, then drop the connection;
            # the bind comes back clean.
            logger.warning("smpp: unreadable PDU from the peer (%s), reconnecting", exc)
            self.reply(Pdu(GENERIC_NACK, exc.sequence), GENERIC_NACK, ESME_RINVCMDLEN)
        except (asyncio.IncompleteReadError, ConnectionError, SmppError) as exc:
            logger.debug("smpp link closed: %s", type(exc).__name__)
        finally:
            self._mark_closed()


class Binding:
    """One transceiver bind to an SMSC, re-established on its own when it drops.

    ``start()`` binds in the background and keeps the bind: enquire_link every
    ``enquire_interval`` seconds, reconnecting with capped exponential backoff when the
    connection drops. ``clock`` and ``sleep`` measure and wait for every delay here except
    the SMSC's response and connect timeouts, so tests can run a minute of outage in no time.
    """

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        on_deliver: Callable[[Link, Pdu], None],
        system_type: str = "",
        enquire_interval: float = 30.0,
        response_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        reconnect_base: float = 1.0,
        reconnect_cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: random.Random | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.system_id = system_id
        self._password = password
        self.system_type = system_type
        self.enquire_interval = enquire_interval
        self._on_deliver = on_deliver
        self._response_timeout = response_timeout
        self._connect_timeout = connect_timeout
        self._reconnect_base = reconnect_base
        self._reconnect_cap = reconnect_cap
        self._clock = clock
        self._sleep = sleep
        self._rand = rand or random.Random()
        self._link: Link | None = None
        self._runner: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._next_connect = float("-inf")  # when the next connect attempt is due
        self.attempts = 0  # connection attempts finished, bound or not
        self.reconnecting = False  # waiting out the backoff before the next attempt
        self._closing = False

    def __repr__(self) -> str:
        # Spelled out so that no repr of this object can leak the password into a log.
        name = type(self).__name__
        return f"{name}(host={self.host!r}, port={self.port}, system_id={self.system_id!r})"

    @property
    def bound(self) -> bool:
        """Whether a transceiver bind is up now."""
        return self._link is not None and self._link.open

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, checked at each bind, unbind and connect attempt."""
        while not condition():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def start(self) -> None:
        """Start binding in the background; returns once the first attempt has finished."""
        if self._runner is not None:
            return
        self._closing = False
        self._runner = asyncio.create_task(self._keep_bound())
        await self.wait_until(lambda: self.attempts > 0 or self._runner is None)

    async def close(self) -> None:
        """Unbind politely, stop reconnecting and wait for the connection's tasks to end."""
        runner, self._runner = self._runner, None
        self._closing = True
        link = self._link
        if link is not None and link.open:
            with contextlib.suppress(SmppError, TimeoutError):
                await link.request(UNBIND, b"", min(self._response_timeout, 2.0))
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        self._notify()

    def reconnect_delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed binds: exponential, capped, jittered."""
        ceiling = min(self._reconnect_cap, self._reconnect_base * 2.0 ** max(failures - 1, 0))
        return ceiling / 2 + self._rand.uniform(0, ceiling / 2)

    async def _keep_bound(self) -> None:
        failures = 0
        while True:
            link = await self._connect()
            self.attempts += 1
            if link is not None:
                failures = 0
                self._link = link
                # Due times are fixed now, not when the task first runs: a clock that
                # moves before then still gets its keep-alive.
                enquiring = asyncio.create_task(
                    self._enquire(link, self._clock() + self.enquire_interval)
                )
                self._notify()
                try:
                    await link.wait_closed()
                finally:
                    self._link = None
                    enquiring.cancel()
                    await asyncio.gather(enquiring, return_exceptions=True)
                    await link.close()
                if self._closing:
                    return  # our own unbind ended it
                logger.warning("smpp: connection to %s:%d lost", self.host, self.port)
            failures += 1
            delay = self.reconnect_delay(failures)
            logger.info("smpp: reconnecting in %.1fs", delay)
            self.reconnecting = True
            self._next_connect = self._clock() + delay
            self._notify()
            try:
                await self._sleep(delay)
            finally:
                self.reconnecting = False
                self._notify()

    async def _connect(self) -> Link | None:
        """Connect and bind as a transceiver; None (logged) when either fails."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            logger.warning("smpp: cannot connect to %s:%d: %s", self.host, self.port, exc)
            return None
        link = Link(reader, writer, self._on_request)
        try:
            return await self._bind(link)
        except BaseException:
            await link.close()  # cancelled mid-bind: leave no socket open
            raise

    async def _bind(self, link: Link) -> Link | None:
        body = b"".join(
            [
                cstring(self.system_id),
                cstring(self._password),
                cstring(self.system_type),
                bytes([_INTERFACE_VERSION, 0, 0]),  # interface_version, addr_ton, addr_npi
                cstring(""),  # address_range
            ]
        )
        try:
            response = await link.request(BIND_TRANSCEIVER, body, self._response_timeout)
        except (SmppError, TimeoutError) as exc:
            logger.warning("smpp: bind to %s:%d failed: %s", self.host, self.port, exc or "timeout")
            await link.close()
            return None
        if response.status != ESME_ROK:
            logger.error(
                "smpp: bind as %r refused by %s:%d: %s, check system_id and password",
                self.system_id,
                self.host,
                self.port,
                status_name(response.status),
            )
            await link.close()
            return None
        logger.info("smpp: bound as transceiver to %s:%d", self.host, self.port)
        return link

    async def _enquire(self, link: Link, due: float) -> None:
        """Keep the bind alive; close the link when the SMSC stops answering."""
        while True:
            await self._sleep(max(0.0, due - self._clock()))
            due = self._clock() + self.enquire_interval
            try:
                await link.request(ENQUIRE_LINK, b"", self._response_timeout)
            except (SmppError, TimeoutError):
                logger.warning("smpp: no enquire_link_resp, dropping the connection")
                await link.close()
                return

    async def _on_request(self, link: Link, pdu: Pdu) -> bool:
        """Answer a request from the SMSC; False ends the connection."""
        if pdu.command_id == ENQUIRE_LINK:
            link.reply(pdu, ENQUIRE_LINK | RESPONSE)
        elif pdu.command_id in (DELIVER_SM, DATA_SM):
            self._on_deliver(link, pdu)
        elif pdu.command_id == UNBIND:
            link.reply(pdu, UNBIND | RESPONSE)
            logger.info("smpp: the SMSC unbound")
            return False
        else:
            link.reply(pdu, GENERIC_NACK, ESME_RINVCMDID)
        return True
