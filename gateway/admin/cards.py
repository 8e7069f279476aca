"""Shop card handlers: issue a card, top it up at the counter, correct it, read its statement,
and the ledger's daily report with its proof (issue 13).

A card's PIN arrives once, in the body that issues it, and goes straight to the store, which
keeps only its scrypt digest; no answer, log or error carries it.
"""

from __future__ import annotations

from aiohttp import web

from gateway import keys
from gateway.admin._http import database, moment
from gateway.admin.shapes import (
    STAFF_PREFIX,
    Adjustment,
    CardAt,
    CardFilter,
    LedgerDayOut,
    LedgerPeriod,
    LedgerReport,
    NewCard,
    TopUp,
)
from gateway.numbers import normalise_msisdn
from menus import sms
from store import cards
from store.cards import CardOut, Statement, TopUpOut


def _region(request: web.Request) -> str:
    region: str = request.config_dict[keys.SETTINGS].default_region
    return region


async def list_cards(request: web.Request, given: CardFilter) -> list[CardOut]:
    msisdn = normalise_msisdn(given.phone, _region(request))
    return await cards.cards_of(database(request), msisdn)


async def issue_card(request: web.Request, given: NewCard) -> CardOut:
    msisdn = normalise_msisdn(given.body.phone, _region(request))
    issued = await cards.issue_card(database(request), msisdn, given.body.pin)
    # Every process forgets who it knew to hold no card: the new one shows at checkout.
    await request.config_dict[keys.GATEWAY].versions.cards_issued()
    return issued


async def get_card(request: web.Request, given: CardAt) -> CardOut:
    return await cards.get_card(database(request), given.number)


async def top_up(request: web.Request, given: TopUp) -> TopUpOut:
    db = database(request)
    lang = await cards.holder_language(db, given.number)
    done = await cards.top_up(
        db, given.number, given.body.amount, given.body.reference,
        actor=f"{STAFF_PREFIX}{given.staff}" if given.staff else "staff",
        render_sms=sms.card_topup, lang=lang,
    )  # fmt: skip
    if not done.repeated:
        await _sms_queued(request)
    return done


async def adjust_card(request: web.Request, given: Adjustment) -> TopUpOut:
    return await cards.adjust(
        database(request), given.number, given.body.amount, given.body.reference,
        actor=f"{STAFF_PREFIX}{given.staff}" if given.staff else "staff",
    )  # fmt: skip


async def card_statement(request: web.Request, given: CardAt) -> Statement:
    return await cards.statement(database(request), given.number)


async def ledger_report(request: web.Request, given: LedgerPeriod) -> LedgerReport:
    db = database(request)
    days = await cards.days(db, moment(given.since, end=False))
    proof = await cards.prove(db)
    return LedgerReport(
        days=[LedgerDayOut.of(day) for day in days],
        entries=proof.entries,
        total=proof.total,
        unbalanced_movements=list(proof.unbalanced),
        mismatched_cards=list(proof.mismatched),
        balances=proof.holds,
    )


async def _sms_queued(request: web.Request) -> None:
    gateway = request.config_dict[keys.GATEWAY]
    if gateway.on_sms_queued is not None:
        await gateway.on_sms_queued()  # wakes the dispatcher
