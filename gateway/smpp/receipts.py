"""Delivery receipts: read from a deliver_sm, recorded in the outbox.

An SMSC reports each part's fate in a deliver_sm with esm_class 0x04, naming the id its
submit_sm_resp gave: ``id:<id> sub:001 dlvrd:001 ... stat:DELIVRD err:000 text:...``, and
often the ``receipted_message_id`` and ``message_state`` TLVs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.errors import GatewayError
from gateway.smpp.codec import (
    DATA_CODING_UCS2,
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
    DeliverSm,
)
from store import outbox
from store.models import utcnow

if TYPE_CHECKING:
    from gateway.metrics import Metrics
    from store.db import Database

logger = logging.getLogger("okryu.smpp")

_ESM_TYPE_MASK = 0x3C  # message type, bits 5-2
_ESM_RECEIPT = 0x04  # SMSC delivery receipt
_ESM_INTERMEDIATE = 0x20  # intermediate delivery notification

# Receipt states, as the text's stat: field and the message_state TLV name them.
_STAT_STATES: Mapping[str, str] = {
    "ENROUTE": "enroute",
    "DELIVRD": "delivered",
    "DELIVERED": "delivered",
    "EXPIRED": "expired",
    "DELETED": "deleted",
    "UNDELIV": "undeliverable",
    "UNDELIVERABLE": "undeliverable",
    "ACCEPTD": "accepted",
    "ACCEPTED": "accepted",
    "UNKNOWN": "unknown",
    "REJECTD": "rejected",
    "REJECTED": "rejected",
    "FAILED": "failed",
}
_MESSAGE_STATES: Mapping[int, str] = {
    1: "enroute",
    2: "delivered",
    3: "expired",
    4: "deleted",
    5: "undeliverable",
    6: "accepted",
    7: "unknown",
    8: "rejected",
}
_RECEIPT_ID = re.compile(rb"(?:^|\s)id:(\S+)", re.IGNORECASE)
_RECEIPT_STAT = re.compile(rb"(?:^|\s)stat:(\S+)", re.IGNORECASE)

ReceiptHandler = Callable[[str, str], Awaitable[None]]


class RetryReceipt(GatewayError):
    """Raised by a receipt handler that cannot record a receipt yet (e.g. an unknown id).

    The provider answers the deliver_sm with ESME_RX_T_APPN, and the SMSC delivers it again.
    """


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt: the submit_sm_resp message id it is about and the normalised state."""

    message_id: str
    state: str  # delivered | failed | expired | deleted | undeliverable | rejected | enroute ...


def parse_receipt(message: DeliverSm) -> Receipt | None:
    """The receipt a deliver_sm carries, or None for a mobile-originated message.

    The TLVs (``receipted_message_id``, ``message_state``) win over the text, which SMSCs
    format loosely; a deliver_sm is a receipt if its esm_class says so (message type 0x04, or
    0x20 for an intermediate notification), if it has the TLV, or if its text reads like one.
    """
    kind = message.esm_class & _ESM_TYPE_MASK
    text = (
        message.short_message.decode("utf-16-be", "replace")
        if message.data_coding == DATA_CODING_UCS2
        else message.short_message.decode("latin-1")
    ).encode("latin-1", "replace")
    id_match = _RECEIPT_ID.search(text)
    stat_match = _RECEIPT_STAT.search(text)
    tlv_id = message.tlvs.get(TLV_RECEIPTED_MESSAGE_ID)
    is_receipt = (
        kind in (_ESM_RECEIPT, _ESM_INTERMEDIATE)
        or tlv_id is not None
        or (id_match is not None and stat_match is not None)
    )
    if not is_receipt:
        return None
    if tlv_id is not None:
        message_id = tlv_id.rstrip(b"\x00").decode("latin-1")
    elif id_match is not None:
        message_id = id_match.group(1).decode("latin-1")
    else:
        return None
    tlv_state = message.tlvs.get(TLV_MESSAGE_STATE)
    if tlv_state and tlv_state[0] in _MESSAGE_STATES:
        state = _MESSAGE_STATES[tlv_state[0]]
    elif stat_match is not None:
        stat = stat_match.group(1).decode("latin-1").upper()
        state = _STAT_STATES.get(stat, stat.lower())
    else:
        state = "unknown"
    return Receipt(message_id, state)


def outbox_receipts(
    db: Database, metrics: Metrics | None = None, clock: Callable[[], datetime] = utcnow
) -> ReceiptHandler:
    """The ``on_receipt`` that records each receipt in the outbox, and drops none it can use.

    A receipt whose id no part has yet may belong to a send not recorded yet (its row is
    still ``sending``): the SMSC is asked to deliver it again. Once nothing is being sent, an
    unknown id stays unknown (another system's message, or one sent by a worker that died
    before recording it): it is acknowledged. Receipts recorded are counted by state.
    """

    async def on_receipt(message_id: str, state: str) -> None:
        outcome = await outbox.record_receipt(db, message_id, state, clock())
        if outcome == "unknown":
            if await outbox.sending_now(db):
                raise RetryReceipt(message_id)
            # Nothing is being sent now: if ours was, it has just been recorded.
            outcome = await outbox.record_receipt(db, message_id, state, clock())
        if outcome == "recorded" and metrics is not None:
            metrics.sms_receipts.labels(state).inc()
        elif outcome == "unknown":
            shown = outbox.stored_id(message_id)  # bounded, as the outbox would keep it
            logger.info("smpp: acknowledged a receipt for unknown message id %s", shown)

    return on_receipt
