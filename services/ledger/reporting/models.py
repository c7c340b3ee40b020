"""Indexes the reports need on the ledger's movement tables (registered on its metadata).

A report as of a past date starts from today's outstanding and adds back the movements dated
after it (see `repository.outstanding_as_of`); these indexes keep that "after" part an index
range scan, empty when the date is today.
"""

from __future__ import annotations

from sqlalchemy import Index

from services.ledger.models import Invoice, Payment, PaymentAllocation

allocations_by_entry = Index("ix_payment_allocations_journal_entry_id",
                             PaymentAllocation.__table__.c.journal_entry_id)
invoices_by_issue_date = Index("ix_invoices_issued_at", Invoice.__table__.c.issued_at)
payments_by_reversal = Index("ix_payments_reversed_at", Payment.__table__.c.reversed_at)
