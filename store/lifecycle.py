"""An order's life after it is placed: confirmed, dispatched, delivered, or cancelled.

Every change is one transaction: the status, an event saying who made it, the customer's SMS
in their language, and on cancellation the stock given back. A change the order's status does
not allow is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import update
from sqlmodel import col, select

from menus.ports import CUSTOMER_CANCELLABLE
from store import cards
from store.codes import normalise_code
from store.db import Database
from store.errors import Conflict, NotFound, StoreError
from store.models import EVENT_NOTE_WIDTH, Order, OrderEvent, OrderLine, Product, utcnow
from store.outbox import enqueue

StaffStatus = Literal["confirmed", "dispatched", "delivered", "cancelled"]  # what staff set
Status = Literal["placed", StaffStatus]
STATUSES: tuple[Status, ...] = get_args(Status)
# What staff may do from each status.
NEXT: dict[str, frozenset[str]] = {
    "placed": frozenset({"confirmed", "cancelled"}),
    "confirmed": frozenset({"dispatched", "cancelled"}),
    "dispatched": frozenset({"delivered", "cancelled"}),  # e.g. nobody home, goods back
    "delivered": frozenset(),
    "cancelled": frozenset(),
}

RenderStatusSms = Callable[[str, str, str], str]  # (status, order code, language) -> body
# (order code, amount, balance, card digits shown, language) -> the cancellation SMS of an
# order paid by card, which says what went back on the card.
RenderRefundSms = Callable[[str, int, int, str, str], str]


class IllegalTransition(Conflict):
    """The order's status does not allow the change asked for."""


class UnknownOrder(NotFound):
    """No such order (or, for a customer, not theirs: the two answer alike)."""


@dataclass(frozen=True, slots=True)
class Changed:
    code: str
    old: str
    new: str


async def change_status(
    db: Database,
    code: str,
    status: str,
    *,
    actor: str,
    render_sms: RenderStatusSms,
    note: str = "",
    msisdn: str | None = None,
    render_refund: RenderRefundSms | None = None,
) -> Changed:
    """Move order ``code`` to ``status`` as ``actor``, telling the customer by SMS.

    With ``msisdn`` the change is the customer's own: only their order, and only a
    cancellation before dispatch. Cancelling an order paid by card refunds the card in the
    same transaction; the order can be cancelled once, and the refund's own key is the
    order's, so it is refunded once whoever cancels and however many at once.
    """
    if status not in STATUSES:
        raise StoreError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    async with db.write() as session:
        query = select(Order).where(Order.code == normalise_code(code))
        if not db.is_sqlite:
            query = query.with_for_update()  # two staff pressing at once: one wins, one is told
        order = (await session.exec(query)).first()
        if order is None or (msisdn is not None and order.msisdn != msisdn):
            raise UnknownOrder(f"no order {normalise_code(code)}")
        old = order.status
        if msisdn is not None:
            if status != "cancelled":
                raise IllegalTransition("customers can only cancel")
            if old not in CUSTOMER_CANCELLABLE:
                raise IllegalTransition(
                    f"order {order.code} is {old}; it can no longer be cancelled"
                )
        elif status not in NEXT[old]:
            raise IllegalTransition(f"order {order.code} is {old}; it cannot become {status}")
        order.status = status
        order.updated_at = utcnow()
        session.add(order)
        assert order.id is not None
        session.add(
            OrderEvent(order_id=order.id, status=status, actor=actor, note=note[:EVENT_NOTE_WIDTH])
        )
        if status == "cancelled":
            lines = (
                await session.exec(select(OrderLine).where(OrderLine.order_id == order.id))
            ).all()
            for line in lines:
                await session.exec(
                    update(Product)
                    .where(col(Product.id) == line.product_id)
                    .values(stock=col(Product.stock) + line.quantity)
                )
        paid = order.payment_method == "card"
        # An order paid by card has nothing to pay at the door: its courier SMS says so.
        told = "dispatched_paid" if paid and status == "dispatched" else status
        body = render_sms(told, order.code, order.language)
        if status == "cancelled" and paid:
            refunded = await cards.refund(session, order, actor=actor)
            if refunded is not None and render_refund is not None:
                body = render_refund(
                    order.code, refunded.amount, refunded.balance,
                    cards.shown_number(refunded.number), order.language,
                )  # fmt: skip
        await enqueue(
            session,
            to=order.msisdn,
            body=body,
            kind=f"order_{status}",
            idempotency_key=f"order_{status}:{order.code}",
            order_id=order.id,
        )
        return Changed(order.code, old, status)
