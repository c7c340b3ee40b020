"""The migrations that let an invoice have no order and a payment be refunded keep every row,
constraint and link.

On SQLite they rebuild the invoices and payments tables, which rows of other tables point at; the test fills
those first and checks after the upgrade that the rows are all there, the foreign keys hold,
the checks still refuse bad money, and an imported invoice (no order) can be written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from shared import migrations
from shared.db import Database

BEFORE = "3a4b5c6d7e8f"
AT = "2026-01-05 09:00:00+00:00"


async def _fill(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO accounts (code, name, kind, normal_side, requires_customer, system, "
            "created_at) VALUES ('1100', 'Trade receivables', 'asset', 'debit', true, true, :at)"),
            {"at": AT})
        await conn.execute(text(
            "INSERT INTO journal_entries (id, number, kind, memo, currency, posted_at, created_by, "
            "created_at) VALUES ('je-1', 'JE-000001', 'invoice', 'inv', 'CNY', :at, 't', :at)"),
            {"at": AT})
        await conn.execute(text(
            "INSERT INTO invoices (id, number, order_id, customer_id, currency, amount_minor, "
            "outstanding_minor, debit_notes_minor, paid_minor, credited_minor, written_off_minor, "
            "status, issued_at, due_date, journal_entry_id, version, created_at, updated_at) "
            "VALUES ('inv-1', 'INV-000001', 'order-1', 'c-1', 'CNY', 1000, 600, 0, 400, 0, 0, "
            "'partially_paid', :at, '2026-02-04', 'je-1', 1, :at, :at)"), {"at": AT})
        await conn.execute(text(
            "INSERT INTO payments (id, number, customer_id, currency, amount_minor, method, "
            "received_at, unapplied_minor, unapplied_remaining_minor, status, created_by, version, "
            "created_at, updated_at) VALUES ('pay-1', 'PAY-000001', 'c-1', 'CNY', 400, "
            "'cash', :at, 0, 0, 'posted', 't', 1, :at, :at)"), {"at": AT})
        await conn.execute(text(
            "INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor, kind, "
            "journal_entry_id, created_at) VALUES ('pay-1', 'inv-1', 400, 'payment', 'je-1', :at)"),
            {"at": AT})


async def test_upgrade_keeps_rows_and_constraints_and_takes_invoices_without_orders(tmp_path: Path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        await migrations.upgrade(db.engine, "ledger", BEFORE)
        await _fill(db)
        await migrations.upgrade(db.engine, "ledger")
        async with db.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT number, order_id, import_id, outstanding_minor FROM invoices"))).one()
            assert tuple(row) == ("INV-000001", "order-1", None, 600)
            assert (await conn.execute(text("SELECT count(*) FROM payment_allocations"))
                    ).scalar_one() == 1
            assert tuple((await conn.execute(text(  # the payments table was rebuilt for refunds
                "SELECT number, refunded_minor FROM payments"))).one()) == ("PAY-000001", 0)
            assert (await conn.execute(text("PRAGMA foreign_key_check"))).all() == []
        with pytest.raises(IntegrityError):  # the money checks survived the rebuild
            async with db.engine.begin() as conn:
                await conn.execute(text("UPDATE invoices SET outstanding_minor = 900"))
        with pytest.raises(IntegrityError):  # and the foreign keys
            async with db.engine.begin() as conn:
                await conn.execute(text("UPDATE invoices SET journal_entry_id = 'nope'"))
        async with db.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO invoices (id, number, order_id, import_id, customer_id, currency, "
                "amount_minor, outstanding_minor, debit_notes_minor, paid_minor, credited_minor, "
                "written_off_minor, status, issued_at, due_date, version, created_at, updated_at) "
                "VALUES ('inv-2', 'SI-1', NULL, 'imp-1', 'c-1', 'CNY', 50, 50, 0, 0, 0, 0, 'open', "
                ":at, '2026-02-04', 1, :at, :at)"), {"at": AT})
        async with db.engine.begin() as conn:  # back down once no imported invoice is left
            await conn.execute(text("DELETE FROM invoices WHERE id = 'inv-2'"))
        await migrations.downgrade(db.engine, "ledger", BEFORE)
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM invoices"))).scalar_one() == 1
            assert (await conn.execute(text("PRAGMA foreign_key_check"))).all() == []
    finally:
        await db.dispose()
