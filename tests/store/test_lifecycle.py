"""Order status changes: allowed moves, events with actors, SMS, restocking, races."""

from __future__ import annotations

import asyncio

import pytest

from menus import sms
from store.db import Database
from store.lifecycle import IllegalTransition, UnknownOrder, change_status
from store.models import OrderEvent, OutboundMessage
from store.orders import place_order
from tests.store.factories import (
    ALICE,
    BOB,
    first_zone,
    order_request,
    product_by_sku,
    render,
    rows,
    stock_of,
)


async def placed_order(db: Database, lang: str = "en") -> tuple[str, int, int]:
    """An order of 2 of the first product; its code, product id and stock before."""
    product = await product_by_sku(db, "FD-RICE5")
    zone = await first_zone(db)
    assert product.id is not None and zone.id is not None
    before = await stock_of(db, product.id)
    placed = await place_order(
        db, order_request("k1", [(product.id, 2)], zone.id, lang=lang), render
    )  # type: ignore[arg-type]
    assert not hasattr(placed, "product_ids")
    return placed.code, product.id, before  # type: ignore[union-attr]


async def test_lifecycle_staff_take_an_order_to_delivered_with_an_sms_each_step(
    seeded_db: Database,
) -> None:
    code, _, _ = await placed_order(seeded_db)
    for status in ("confirmed", "dispatched", "delivered"):
        changed = await change_status(
            seeded_db, code, status, actor="staff:mina", render_sms=sms.status_changed
        )
        assert changed.new == status
    events = await rows(seeded_db, OrderEvent)
    assert [(e.status, e.actor) for e in events] == [
        ("placed", f"customer:{ALICE}"),
        ("confirmed", "staff:mina"),
        ("dispatched", "staff:mina"),
        ("delivered", "staff:mina"),
    ]
    bodies = [m.body for m in await rows(seeded_db, OutboundMessage)][1:]
    assert bodies == [
        sms.status_changed(s, code, "en") for s in ("confirmed", "dispatched", "delivered")
    ]


async def test_lifecycle_sms_goes_in_the_customers_language(seeded_db: Database) -> None:
    code, _, _ = await placed_order(seeded_db, lang="ko")
    await change_status(
        seeded_db, code, "confirmed", actor="staff:mina", render_sms=sms.status_changed
    )
    assert (await rows(seeded_db, OutboundMessage))[-1].body.startswith(f"옥류: 주문 {code}")


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ((), "delivered"),
        (("confirmed", "dispatched", "delivered"), "cancelled"),
        (("cancelled",), "confirmed"),
        (("confirmed",), "placed"),
    ],
)
async def test_lifecycle_illegal_moves_are_refused_with_the_reason(
    seeded_db: Database, path: tuple[str, ...], refused: str
) -> None:
    code, _, _ = await placed_order(seeded_db)
    for status in path:
        await change_status(seeded_db, code, status, actor="staff:a", render_sms=sms.status_changed)
    with pytest.raises(IllegalTransition, match=f"cannot become {refused}"):
        await change_status(
            seeded_db, code, refused, actor="staff:a", render_sms=sms.status_changed
        )


async def test_lifecycle_cancel_gives_the_stock_back(seeded_db: Database) -> None:
    code, product_id, before = await placed_order(seeded_db)
    assert await stock_of(seeded_db, product_id) == before - 2
    await change_status(
        seeded_db, code, "cancelled", actor="staff:a", render_sms=sms.status_changed
    )
    assert await stock_of(seeded_db, product_id) == before


async def test_lifecycle_customer_cancels_only_their_own_before_dispatch(
    seeded_db: Database,
) -> None:
    code, _, _ = await placed_order(seeded_db)
    with pytest.raises(UnknownOrder):
        await change_status(
            seeded_db,
            code,
            "cancelled",
            actor=f"customer:{BOB}",
            msisdn=BOB,
            render_sms=sms.status_changed,
        )
    with pytest.raises(IllegalTransition, match="customers can only cancel"):
        await change_status(
            seeded_db, code, "confirmed", actor="c", msisdn=ALICE, render_sms=sms.status_changed
        )
    await change_status(
        seeded_db, code, "confirmed", actor="staff:a", render_sms=sms.status_changed
    )
    await change_status(
        seeded_db, code, "dispatched", actor="staff:a", render_sms=sms.status_changed
    )
    with pytest.raises(IllegalTransition, match="can no longer be cancelled"):
        await change_status(
            seeded_db, code, "cancelled", actor="c", msisdn=ALICE, render_sms=sms.status_changed
        )


async def test_lifecycle_two_staff_at_once_one_wins(seeded_db: Database) -> None:
    code, _, _ = await placed_order(seeded_db)
    results = await asyncio.gather(
        *(
            change_status(
                seeded_db, code, "confirmed", actor=f"staff:{n}", render_sms=sms.status_changed
            )
            for n in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, IllegalTransition) for r in results if isinstance(r, BaseException))
    assert [e.status for e in await rows(seeded_db, OrderEvent)].count("confirmed") == 1


async def test_lifecycle_unknown_code(seeded_db: Database) -> None:
    with pytest.raises(UnknownOrder):
        await change_status(
            seeded_db, "ZZZZZZ", "confirmed", actor="a", render_sms=sms.status_changed
        )
