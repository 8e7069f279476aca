"""SQL functions the store installs in PostgreSQL (``create_all``; migrations 0006, 0007).

``okryu_place_order`` is a cash-on-delivery order's whole transaction in one statement: one
round trip from the gateway instead of about a dozen through the ORM (each an event-loop turn
on a busy process), and a product's row lock held for microseconds inside the server. It does
what ``store.orders._place_once`` does on SQLite, in the same order, and the same tests drive
both (tests/store/test_orders.py, test_order_races.py, on each database).
"""

from __future__ import annotations

SHORT = "OK001"  # the SQLSTATE that rolls the order back when a line's stock cannot be taken

PLACE_ORDER = f"""
CREATE OR REPLACE FUNCTION okryu_place_order(
    p_key text, p_msisdn text, p_lang text, p_zone integer, p_address text, p_code text,
    p_ids integer[], p_quantities integer[], p_prices integer[],
    p_names_en text[], p_names_ko text[], p_fee integer, p_body text, p_now timestamp
) RETURNS TABLE (
    outcome text, order_code text, order_msisdn text,
    order_subtotal integer, order_fee integer, order_total integer, lacking integer[]
) LANGUAGE plpgsql AS $$
DECLARE
    v_customer integer;
    v_order integer;
    v_subtotal integer;
    v_fee integer;
    v_short integer[] := '{{}}';
    v_line record;
BEGIN
    -- A key already used answers with its order (the caller checks it is the caller's).
    RETURN QUERY SELECT 'replay', o.code::text, o.msisdn::text, o.subtotal, o.fee, o.total,
        NULL::integer[] FROM orders AS o WHERE o.idempotency_key = p_key;
    IF FOUND THEN RETURN; END IF;
    SELECT z.fee INTO v_fee FROM deliveryzone AS z WHERE z.id = p_zone AND z.active;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_zone', NULL::text, NULL::text, NULL::integer, NULL::integer,
            NULL::integer, NULL::integer[];
        RETURN;
    END IF;
    IF v_fee <> p_fee THEN
        -- The fee moved since the caller read it (or showed it): as a repricing, nothing lacks.
        RETURN QUERY SELECT 'short', NULL::text, NULL::text, NULL::integer, NULL::integer,
            NULL::integer, '{{}}'::integer[];
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM orders AS o WHERE o.code = p_code) THEN
        RETURN QUERY SELECT 'code_taken', NULL::text, NULL::text, NULL::integer, NULL::integer,
            NULL::integer, NULL::integer[];
        RETURN;
    END IF;
    SELECT sum(u.quantity * u.price) INTO v_subtotal
        FROM unnest(p_quantities, p_prices) AS u(quantity, price);
    BEGIN
        INSERT INTO customer AS c (msisdn, language, zone_id, address, reminders_opt_out,
                                   created_at)
            VALUES (p_msisdn, p_lang, p_zone, p_address, false, p_now)
            ON CONFLICT (msisdn) DO UPDATE SET language = EXCLUDED.language,
                zone_id = EXCLUDED.zone_id, address = EXCLUDED.address
            RETURNING c.id INTO v_customer;
        INSERT INTO orders (code, customer_id, msisdn, status, subtotal, fee, total,
                            payment_method, zone_id, address, language, idempotency_key,
                            created_at, updated_at)
            VALUES (p_code, v_customer, p_msisdn, 'placed', v_subtotal, p_fee,
                    v_subtotal + p_fee, 'cod', p_zone, p_address, p_lang, p_key, p_now, p_now)
            RETURNING id INTO v_order;
        INSERT INTO orderline (order_id, product_id, name_en, name_ko, unit_price, quantity)
            SELECT v_order, u.id, u.name_en, u.name_ko, u.price, u.quantity
            FROM unnest(p_ids, p_names_en, p_names_ko, p_prices, p_quantities)
                WITH ORDINALITY AS u(id, name_en, name_ko, price, quantity, n)
            ORDER BY u.n;
        INSERT INTO orderevent (order_id, status, actor, note, created_at)
            VALUES (v_order, 'placed', 'customer:' || p_msisdn, '', p_now);
        -- A reminder about the cart this order came from would now only confuse.
        UPDATE outboundmessage SET status = 'cancelled'
            WHERE "to" = p_msisdn AND kind = 'cart_reminder' AND status = 'queued';
        INSERT INTO outboundmessage ("to", body, kind, order_id, idempotency_key, status,
                                     attempts, next_attempt_at, created_at)
            VALUES (p_msisdn, p_body, 'order_placed', v_order, 'order_placed:' || p_code,
                    'queued', 0, p_now, p_now);
        -- The stock last, in product id order (as every transaction takes it), at the price
        -- the order was written with: the oversell guard and the repricing guard in one.
        FOR v_line IN SELECT u.id, u.quantity, u.price
                FROM unnest(p_ids, p_quantities, p_prices) AS u(id, quantity, price)
                ORDER BY u.id LOOP
            UPDATE product AS p SET stock = p.stock - v_line.quantity
                WHERE p.id = v_line.id AND p.stock >= v_line.quantity AND p.active
                    AND p.price = v_line.price;
            IF NOT FOUND THEN v_short := v_short || v_line.id; END IF;
        END LOOP;
        IF cardinality(v_short) > 0 THEN
            RAISE EXCEPTION 'short' USING ERRCODE = '{SHORT}';  -- undoes the block
        END IF;
    EXCEPTION WHEN SQLSTATE '{SHORT}' THEN
        -- Sold out or off sale since the caller read it (lacking), or only repriced (none).
        RETURN QUERY SELECT 'short', NULL::text, NULL::text, NULL::integer, NULL::integer,
            NULL::integer, ARRAY(
                SELECT u.id FROM unnest(p_ids, p_quantities) AS u(id, quantity)
                WHERE u.id = ANY(v_short) AND NOT EXISTS (
                    SELECT 1 FROM product AS p
                    WHERE p.id = u.id AND p.active AND p.stock >= u.quantity));
        RETURN;
    END;
    RETURN QUERY SELECT 'placed', p_code, p_msisdn, v_subtotal, p_fee, v_subtotal + p_fee,
        NULL::integer[];
END $$
"""


def functions_ddl(dialect: str) -> list[str]:
    """The statements that install the store's SQL functions (none on SQLite)."""
    return [PLACE_ORDER] if dialect == "postgresql" else []
