"""An order's SMS over SMPP: the real app, bound to the SMSC simulator over TCP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlmodel import select

from gateway import keys
from gateway.sms.dispatcher import LEASE_MARGIN
from simulators.smsc import DEFAULT_PASSWORD, DEFAULT_SYSTEM_ID, Smsc
from store.db import Database
from store.models import OutboundMessage
from tests.gateway.test_ussd import MSISDN, ORDER_PATH, walk

Make = Callable[..., Awaitable[TestClient[Any, Any]]]


async def test_journey_order_sms_over_smpp_is_sent_once_and_delivered(
    make_gateway: Make, seeded_db: Database
) -> None:
    async with Smsc() as smsc:
        client = await make_gateway(
            sms_provider="smpp",
            smpp_port=smsc.port,
            smpp_system_id=DEFAULT_SYSTEM_ID,
            smpp_password=DEFAULT_PASSWORD,
            sms_dispatch=True,  # the app's own loop sends it, woken by the order
        )
        body = await walk(client, [*ORDER_PATH, "1"])
        code = body.split()[2]
        await smsc.wait_for(lambda: len(smsc.messages) == 1 and bool(smsc.receipts))
        (message,) = smsc.messages
        assert message.destination == MSISDN.lstrip("+") and code in message.text

        async def status() -> tuple[str, str | None]:
            async with seeded_db.session() as s:
                row = (await s.exec(select(OutboundMessage))).one()
            return row.status, row.provider_message_id

        for _ in range(200):  # the app's dispatcher records "sent" once the SMSC answered
            if (await status())[0] != "sending":
                break
            await client.app[keys.DISPATCHER].run_once()  # yields to the app meanwhile
        # A receipt that raced ahead of "sent" was refused for redelivery, as an SMSC would
        # redeliver it: do so now, then it settles the row.
        await smsc.deliver_receipts()
        for _ in range(200):
            if (await status())[0] == "delivered":
                break
            await client.app[keys.DISPATCHER].run_once()
        assert await status() == ("delivered", message.message_id)
        assert len(smsc.messages) == 1
        metrics = await (await client.get("/metrics")).text()
        assert 'okryu_sms_receipts_total{state="delivered"} 1.0' in metrics
        # The lease: the SMPP provider's 10 s answer time and the margin, not a fixed minute.
        dispatcher = client.app[keys.DISPATCHER]
        assert dispatcher.lease == timedelta(seconds=10 + LEASE_MARGIN)
