"""Tables of collection work: overdue crossings and scans, promises, notes.

Disputes are collection work too, but their table is in the core's `models.py`: an invoice
shows whether it is disputed, its list filters by it and statements name the open dispute.

`overdue_crossings` is what makes the overdue scan emit each `invoice.overdue` once: one row
per (invoice, level) ever crossed, written in the same transaction as the event's outbox row,
so a repeated, concurrent or interrupted scan never emits a level twice.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, String, text
from sqlmodel import Field

from services.ledger.models import Invoice, InvoiceStatus, LedgerBase, new_id
from shared.db import UTCDateTime


class ContactRole(StrEnum):
    """Where a customer's payment stands in its internal approval chain (BRIEF: Collection)."""

    barrier = "barrier"
    auditor = "auditor"
    user = "user"
    finance = "finance"
    key_person = "key_person"
    decision_maker = "decision_maker"
    general_manager = "general_manager"


class ScanStatus(StrEnum):
    running = "running"
    completed = "completed"
    failed = "failed"


class PromiseStatus(StrEnum):
    open = "open"
    kept = "kept"
    broken = "broken"


class OverdueScan(LedgerBase, table=True):
    """One run of the overdue scan and what it did, updated batch by batch."""

    __tablename__ = "overdue_scans"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    as_of: date = Field(index=True)
    status: str = Field(default=ScanStatus.running, max_length=20)
    trigger: str = Field(max_length=20)  # request or schedule
    started_by: str = Field(max_length=100)
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    invoices_examined: int = Field(default=0)
    crossings_emitted: int = Field(default=0)
    promises_broken: int = Field(default=0)
    promises_kept: int = Field(default=0)
    batches: int = Field(default=0)
    error: str | None = Field(default=None, max_length=500)


class OverdueCrossing(LedgerBase, table=True):
    """An invoice crossed an overdue level (in days) and `invoice.overdue` was emitted for it."""

    __tablename__ = "overdue_crossings"
    __table_args__ = (Index("uq_overdue_crossings_invoice_level", "invoice_id", "level", unique=True),)

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    invoice_id: str = Field(sa_column=Column(String(36), ForeignKey("invoices.id"), nullable=False))
    level: int
    days_overdue: int
    as_of: date
    scan_id: str = Field(max_length=36)
    event_id: str = Field(max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)


class PaymentPromise(LedgerBase, table=True):
    """The customer's undertaking to pay an amount on an invoice by a date."""

    __tablename__ = "payment_promises"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    invoice_id: str = Field(max_length=36, foreign_key="invoices.id", index=True)
    customer_id: str = Field(max_length=36, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64)
    promised_date: date
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    contact_role: str = Field(max_length=30)
    note: str | None = Field(default=None, max_length=1000)
    status: str = Field(default=PromiseStatus.open, max_length=20, index=True)
    # Set when the scan decides the promise; while open it is computed as of today on read.
    paid_since_minor: int = Field(default=0, sa_type=BigInteger)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_as_of: date | None = None  # the scan date that decided it
    version: int = Field(default=1)


class CollectionNote(LedgerBase, table=True):
    """A collector's note on an invoice: whom in the payment chain, what, and the next action."""

    __tablename__ = "collection_notes"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    invoice_id: str = Field(max_length=36, foreign_key="invoices.id", index=True)
    customer_id: str = Field(max_length=36, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64)
    contact_role: str = Field(max_length=30)
    note: str = Field(max_length=2000)
    next_action_on: date | None = Field(default=None, index=True)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


# The overdue scan's candidates in id order (its batches' keyset): invoices with money
# outstanding that are not written off. Few of a large ledger's invoices, and the scan reads
# them from this index alone.
collectable_invoices = Index(
    "ix_invoices_collectable", Invoice.__table__.c.id, Invoice.__table__.c.due_date,
    sqlite_where=text(f"outstanding_minor > 0 AND status <> '{InvoiceStatus.written_off.value}'"),
    postgresql_where=text(f"outstanding_minor > 0 AND status <> '{InvoiceStatus.written_off.value}'"))
