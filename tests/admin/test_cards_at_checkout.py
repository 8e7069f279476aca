"""The checkout's card list: read once for a subscriber with no card, read again when staff
issue one (gateway.cardless), and never longer than its TTL behind a card written elsewhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import cardless, keys
from store import cards
from store.db import Database
from tests.admin.test_admin_api import call
from tests.gateway.test_ussd import MSISDN, post, walk

PIN = "739146"
CHECKOUT = ["1", "1", "1", "1", "2", "1", "1", "Changjon street 5"]  # to the payment screen
NO_CARD = "CON Please confirm"  # cash on delivery, the one way to pay: no payment screen


@pytest.fixture
def card_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The subscribers whose cards the gateway read from the database."""
    reads: list[str] = []
    read = cards.list_cards

    async def counted(db: Database, msisdn: str, *args: Any) -> Any:
        reads.append(msisdn)
        return await read(db, msisdn, *args)

    monkeypatch.setattr(cards, "list_cards", counted)
    return reads


async def checkout(admin: TestClient[Any, Any], session: str) -> str:
    """The screen after the address; then home, so the next dial offers no resume."""
    screen = await walk(admin, CHECKOUT, session=session)
    await post(admin, "*".join([*CHECKOUT, "00"]), session=session)
    return screen


async def test_a_card_issued_by_staff_shows_at_the_next_checkout(
    admin: TestClient[Any, Any], card_reads: list[str]
) -> None:
    assert (await checkout(admin, "S1")).startswith(NO_CARD)
    assert (await checkout(admin, "S2")).startswith(NO_CARD)
    assert card_reads == [MSISDN]  # the second checkout knew: no card
    card = await call(admin, "POST", "/cards", json={"phone": MSISDN, "pin": PIN}, status=201)
    screen = await checkout(admin, "S3")
    assert screen.startswith(f"CON Payment\n1. Okryu card {card['number'][-4:]} (KPW 0)")
    read = len(card_reads)
    assert read > 1
    await checkout(admin, "S4")
    assert len(card_reads) > read  # a holder's cards are read at every checkout


async def test_a_card_written_behind_the_gateways_back_shows_within_the_ttl(
    admin: TestClient[Any, Any], seeded_db: Database
) -> None:
    gateway = admin.app[keys.GATEWAY]
    now = [1_000_000.0]
    gateway.clock = lambda: now[0]
    assert (await checkout(admin, "S1")).startswith(NO_CARD)
    await cards.issue_card(seeded_db, MSISDN, PIN)  # no bump: no process is told
    now[0] += cardless.TTL - 1
    assert (await checkout(admin, "S2")).startswith(NO_CARD)  # still trusted
    now[0] += 1
    assert (await checkout(admin, "S3")).startswith("CON Payment\n1. Okryu card ")


async def test_a_card_issued_while_the_list_was_read_is_not_forgotten(
    admin: TestClient[Any, Any],
) -> None:
    versions = admin.app[keys.GATEWAY].versions
    remembered = cardless.Cardless(lambda: versions.cards_tag)
    began = versions.cards_tag
    await versions.cards_issued()  # lands between the read's start and its answer
    remembered.found(MSISDN, began, 0)
    assert not remembered.holds_none(MSISDN)
    remembered.found(MSISDN, versions.cards_tag, 0)
    assert remembered.holds_none(MSISDN)


def test_the_cardless_are_remembered_up_to_a_bound_oldest_forgotten_first() -> None:
    remembered = cardless.Cardless(lambda: b"1", size=2, clock=lambda: 0.0)
    for msisdn in ("+1", "+2", "+3"):
        remembered.found(msisdn, b"1", 0)
    assert [remembered.holds_none(m) for m in ("+1", "+2", "+3")] == [False, True, True]
    remembered.found("+2", b"1", 1)  # now holds one
    assert not remembered.holds_none("+2")


async def test_a_card_issued_in_one_process_shows_at_checkout_in_another(
    admin: TestClient[Any, Any], make_gateway: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> None:
    other = await make_gateway()  # another process of the fleet: same Redis, same database
    assert (await checkout(other, "S1")).startswith(NO_CARD)
    await call(admin, "POST", "/cards", json={"phone": MSISDN, "pin": PIN}, status=201)
    await other.app[keys.GATEWAY].versions.refresh()  # as its next poll would, if not told
    assert (await checkout(other, "S2")).startswith("CON Payment\n1. Okryu card ")
