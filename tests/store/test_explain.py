"""PostgreSQL's plans for the hot queries on a shop's worth of data: no sequential scan.

A million orders and a million outbound SMS are generated in the database itself
(``generate_series``); then the store's own functions run (an order by its code, a
subscriber's orders, the outbox claim, the reports the admin and /metrics ask for), every
statement they send is captured, and PostgreSQL's ``EXPLAIN`` of each must not read a big
table whole. PostgreSQL only: SQLite is one machine's store, and its planner is another's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from store import order_queries, orders, outbox, reports
from store.db import Database

ORDERS = 1_000_000
CUSTOMERS = 100_000
BIG = ("orders", "outboundmessage", "customer", "orderline", "orderevent", "outboundpart")
NOW = datetime(2030, 6, 1, 12, 0)

_GENERATE = [
    f"""INSERT INTO customer (msisdn, language, reminders_opt_out, created_at)
        SELECT '+85019' || lpad(g::text, 8, '0'), 'en', false, TIMESTAMP '2030-01-01'
        FROM generate_series(1, {CUSTOMERS}) AS g""",
    f"""INSERT INTO orders (code, customer_id, msisdn, status, subtotal, fee, total,
            payment_method, zone_id, address, language, idempotency_key, created_at, updated_at)
        SELECT 'C' || lpad(g::text, 7, '0'),
               c.id, c.msisdn,
               (ARRAY['placed','confirmed','dispatched','delivered','cancelled'])[1 + g % 5],
               1000, 100, 1100, 'cod', z.id, 'Street ' || g, 'en', 'key-' || g,
               TIMESTAMP '2030-06-01' - g * INTERVAL '10 seconds',
               TIMESTAMP '2030-06-01' - g * INTERVAL '10 seconds'
        FROM generate_series(1, {ORDERS}) AS g
        JOIN customer AS c ON c.id = (SELECT min(id) FROM customer) + g % {CUSTOMERS}
        CROSS JOIN (SELECT min(id) AS id FROM deliveryzone) AS z""",
    # A line and an event for every fifth order: enough rows for the planner to weigh.
    """INSERT INTO orderline (order_id, product_id, name_en, name_ko, unit_price, quantity)
        SELECT o.id, p.id, 'Corn noodles', 'Corn noodles', 1000, 1
        FROM orders AS o CROSS JOIN (SELECT min(id) AS id FROM product) AS p
        WHERE o.id % 5 = 0""",
    """INSERT INTO orderevent (order_id, status, actor, note, created_at)
        SELECT o.id, 'placed', 'system', '', o.created_at FROM orders AS o WHERE o.id % 5 = 0""",
    # Almost every SMS long since delivered; a handful due now, as a live outbox looks.
    f"""INSERT INTO outboundmessage (\"to\", body, kind, order_id, idempotency_key, status,
            attempts, next_attempt_at, created_at)
        SELECT '+85019' || lpad((g % {CUSTOMERS})::text, 8, '0'), 'Order placed', 'order_placed',
               NULL, 'sms-' || g, CASE WHEN g % 100000 = 0 THEN 'queued' ELSE 'delivered' END,
               1, TIMESTAMP '2030-06-01' - g * INTERVAL '10 seconds',
               TIMESTAMP '2030-06-01' - g * INTERVAL '10 seconds'
        FROM generate_series(1, {ORDERS}) AS g""",
]


async def _fill(db: Database) -> None:
    async with db.engine.begin() as connection:
        for statement in _GENERATE:
            await connection.execute(text(statement))
    # What autovacuum would have done by the time a shop had a million orders: statistics,
    # and the visibility map that lets an index answer without the table.
    autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as connection:
        for table in BIG:
            await connection.execute(text(f"VACUUM ANALYZE {table}"))


async def _statements(db: Database, run: Callable[[], Awaitable[Any]]) -> list[tuple[str, Any]]:
    """Every query ``run`` sends, with its parameters (the rows it then writes, it writes by
    their primary key)."""
    sent: list[tuple[str, Any]] = []

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if not many:  # a batch of updates by primary key is the claim's second half
            sent.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await run()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    return [(s, p) for s, p in sent if s.lstrip().upper().startswith("SELECT")]


async def test_explain_hot_queries_on_a_million_orders_use_indexes(seeded_db: Database) -> None:
    db = seeded_db
    if db.is_sqlite:
        pytest.skip("EXPLAIN on PostgreSQL only: set OKRYU_TEST_DATABASE_URL")
    await _fill(db)
    msisdn, code = "+8501900012346", "C0512345"  # order 512345 is customer 12346's
    hot: dict[str, Callable[[], Awaitable[Any]]] = {
        "an order by its code (USSD)": lambda: orders.get_order(db, msisdn, code),
        "a subscriber's orders": lambda: orders.list_orders(db, msisdn),
        "an order by its key (a replayed confirm)": lambda: orders.find_order(
            db, msisdn, "key-512345"
        ),
        "an order by its code (admin)": lambda: order_queries.order_detail(db, code),
        "orders of a subscriber (admin)": lambda: order_queries.search_orders(db, msisdn=msisdn),
        "orders of a day (admin)": lambda: order_queries.search_orders(
            db, since=NOW - timedelta(days=3), until=NOW - timedelta(days=2)
        ),
        "the outbox claim": lambda: outbox.claim_due(db, NOW, 50, timedelta(seconds=30)),
        "a subscriber's SMS (dev inbox)": lambda: outbox.sent_to(db, msisdn),
        "the funnel report": lambda: reports.funnel(db, NOW - timedelta(days=7), NOW),
    }
    plans: dict[str, str] = {}
    async with db.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection  # asyncpg's own
        assert raw is not None
        for name, run in hot.items():
            statements = await _statements(db, run)
            assert statements, name
            for n, (statement, parameters) in enumerate(statements):
                rows = await raw.fetch("EXPLAIN " + statement, *parameters)
                plans[f"{name} #{n + 1}"] = "\n".join(row[0] for row in rows)
    scans = {
        name: plan
        for name, plan in plans.items()
        if any(f"Seq Scan on {table}" in plan for table in BIG)
    }
    assert scans == {}, "\n\n".join(f"{name}:\n{plan}" for name, plan in scans.items())


async def test_explain_an_orders_reminder_cancel_reads_the_subscribers_queued_alone(
    seeded_db: Database,
) -> None:
    # Every order cancels its subscriber's queued cart reminder. With the outbox backed up (an
    # SMSC down a while: 50,000 queued), the statement must not read every queued message.
    db = seeded_db
    if db.is_sqlite:
        pytest.skip("EXPLAIN on PostgreSQL only: set OKRYU_TEST_DATABASE_URL")
    backlog = """INSERT INTO outboundmessage (\"to\", body, kind, idempotency_key, status,
            attempts, next_attempt_at, created_at)
        SELECT '+85019' || lpad((g % 1000)::text, 8, '0'), 'Order placed',
               CASE WHEN g % 50 = 0 THEN 'cart_reminder' ELSE 'order_placed' END,
               'sms-' || g, 'queued', 0, TIMESTAMP '2030-06-01', TIMESTAMP '2030-06-01'
        FROM generate_series(1, 50000) AS g"""
    async with db.engine.begin() as connection:
        await connection.execute(text(backlog))
    autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as connection:
        await connection.execute(text("VACUUM ANALYZE outboundmessage"))
    cancel = (  # as okryu_place_order and cancel_queued say it
        "EXPLAIN UPDATE outboundmessage SET status = 'cancelled'"
        " WHERE \"to\" = $1 AND kind = 'cart_reminder' AND status = 'queued'"
    )
    pool = await db.pool()
    plan = "\n".join(row[0] for row in await pool.fetch(cancel, "+8501900000050"))
    assert "ix_outboundmessage_queued_to" in plan, plan
    assert "ix_outboundmessage_status" not in plan and "Seq Scan" not in plan, plan
