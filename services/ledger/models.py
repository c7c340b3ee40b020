"""Tables of the ledger service: chart of accounts, journal, invoices, payments, notes, disputes.

Receivables per customer are a sub-ledger of control account 1100: every journal line on an
account with `requires_customer` (1100 receivables, 2100 unapplied cash) carries the
customer's id, so a customer's balance is `SUM(...) WHERE account_code = '1100' AND
customer_id = :c` and the control account always equals the sum of its customers.

An invoice keeps its money as columns that the database checks against each other:
`outstanding = amount + debit notes − paid − credited − written off`, and
`0 ≤ outstanding ≤ amount + debit notes`; the journal holds the same movements as entries.
A customer's unapplied cash per currency lives in `customer_balances` (its row is also the
lock every money movement of that customer takes first) and, payment by payment, in
`payments.unapplied_remaining_minor`.

Collection, reporting and write-offs add their tables and indexes to this metadata in their
own `models.py`; `services/ledger/__init__.py` loads them (this module imports none of them).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, MetaData, String, text
from sqlmodel import Field, SQLModel

from shared.db import UTCDateTime, service_metadata
from shared.idempotency import idempotency_table
from shared.numbering import counter_table
from shared.outbox import outbox_table
from shared.testclock import clock_table


class LedgerBase(SQLModel):
    metadata = service_metadata()


metadata: MetaData = LedgerBase.metadata
outbox = outbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
test_clock = clock_table(metadata)  # used only with O2C_TEST_CLOCK (DESIGN.md §10)
counters = counter_table(metadata)


def new_id() -> str:
    return str(uuid.uuid4())


# The documents journal entries come from, by the entries' `source_type` (a statement shows
# their numbers). Each document table adds itself with `@source_document`: the core's below, a
# subpackage's in its own models (write-offs), so the core lists them all without importing one.
SOURCE_DOCUMENTS: dict[str, type[LedgerBase]] = {}
_Document = TypeVar("_Document", bound=LedgerBase)


def source_document(source_type: str) -> Callable[[type[_Document]], type[_Document]]:
    """Register the table as the document of journal entries with this `source_type`."""
    def register(model: type[_Document]) -> type[_Document]:
        SOURCE_DOCUMENTS[source_type] = model
        return model
    return register


class AccountKind(StrEnum):
    asset = "asset"
    liability = "liability"
    equity = "equity"
    income = "income"
    expense = "expense"


class NormalSide(StrEnum):
    debit = "debit"
    credit = "credit"


class EntryKind(StrEnum):
    manual = "manual"
    reversal = "reversal"
    invoice = "invoice"
    payment = "payment"
    credit_note = "credit_note"
    debit_note = "debit_note"
    allocation = "allocation"  # unapplied cash applied to invoices
    write_off = "write_off"
    recovery = "recovery"
    refund = "refund"  # unapplied cash paid back


class InvoiceStatus(StrEnum):
    """Follows the money; an open dispute is the `disputed` flag beside it, never a status."""

    open = "open"
    partially_paid = "partially_paid"
    paid = "paid"
    written_off = "written_off"


class InvoiceStatusFilter(StrEnum):
    """What `GET /v1/invoices?status=` accepts: the stored statuses plus the derived ones."""

    open = "open"
    partially_paid = "partially_paid"
    paid = "paid"
    overdue = "overdue"  # past due with something outstanding
    disputed = "disputed"  # an open dispute
    written_off = "written_off"


class PaymentMethod(StrEnum):
    bank_transfer = "bank_transfer"
    cash = "cash"
    bill = "bill"
    offset_goods = "offset_goods"  # goods of equal value taken against the debt


class PaymentStatus(StrEnum):
    posted = "posted"
    reversed = "reversed"


class AllocationKind(StrEnum):
    payment = "payment"  # allocated when the payment was received
    unapplied = "unapplied"  # drawn later from the payment's unapplied cash
    # Negative: given back by a credit note on a paid invoice (an order cancelled after it was
    # paid), so the money is the customer's unapplied cash again, to re-apply or refund.
    returned = "returned"


class DebitNoteKind(StrEnum):
    interest = "interest"
    fee = "fee"


def _money(**kw: object) -> object:
    """A BIGINT minor-units column that starts at 0 (server default for existing rows)."""
    return Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"}, **kw)


class Account(LedgerBase, table=True):
    __tablename__ = "accounts"

    code: str = Field(primary_key=True, max_length=20)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    normal_side: str = Field(max_length=6)
    currency: str | None = Field(default=None, max_length=3)
    requires_customer: bool = Field(default=False)
    system: bool = Field(default=False)
    created_at: datetime = Field(sa_type=UTCDateTime)


class JournalEntry(LedgerBase, table=True):
    __tablename__ = "journal_entries"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    kind: str = Field(max_length=20, index=True)
    memo: str = Field(max_length=500)
    currency: str = Field(max_length=3)
    posted_at: datetime = Field(sa_type=UTCDateTime, index=True)
    source_type: str | None = Field(default=None, max_length=30)
    source_id: str | None = Field(default=None, max_length=36)
    # Unique: an entry is reversed at most once, even if two reversals race.
    reverses_entry_id: str | None = Field(
        default=None, max_length=36, unique=True, foreign_key="journal_entries.id")
    reversed_by_entry_id: str | None = Field(default=None, max_length=36,
                                             foreign_key="journal_entries.id")
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime)


class JournalLine(LedgerBase, table=True):
    __tablename__ = "journal_lines"
    __table_args__ = (
        CheckConstraint("debit_minor >= 0 AND credit_minor >= 0", name="non_negative"),
        CheckConstraint("(debit_minor > 0 AND credit_minor = 0) OR (debit_minor = 0 AND credit_minor > 0)",
                        name="one_side"),
    )

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    entry_id: str = Field(sa_column=Column(String(36), ForeignKey("journal_entries.id"),
                                           nullable=False, index=True))
    line_no: int
    account_code: str = Field(sa_column=Column(String(20), ForeignKey("accounts.code"),
                                               nullable=False, index=True))
    customer_id: str | None = Field(default=None, max_length=36, index=True)
    debit_minor: int = Field(sa_type=BigInteger)
    credit_minor: int = Field(sa_type=BigInteger)


@source_document("invoice")
class Invoice(LedgerBase, table=True):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("outstanding_minor >= 0 AND "
                        "outstanding_minor <= amount_minor + debit_notes_minor",
                        name="outstanding_range"),
        CheckConstraint("outstanding_minor = amount_minor + debit_notes_minor - paid_minor "
                        "- credited_minor - written_off_minor", name="outstanding_sum"),
        CheckConstraint("paid_minor >= 0 AND credited_minor >= 0 AND debit_notes_minor >= 0 "
                        "AND written_off_minor >= 0", name="movements_non_negative"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    # The order invoiced; none for an open item brought from another system (`import_id`).
    order_id: str | None = Field(default=None, max_length=36, unique=True)
    import_id: str | None = Field(default=None, max_length=36, index=True)
    customer_id: str = Field(max_length=36, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64, index=True)
    currency: str = Field(max_length=3)
    amount_minor: int = Field(sa_type=BigInteger)  # as invoiced; debit notes are apart
    outstanding_minor: int = Field(sa_type=BigInteger)
    debit_notes_minor: int = _money()
    paid_minor: int = _money()  # by payments and unapplied cash, net of reversed payments
    credited_minor: int = _money()
    written_off_minor: int = _money()
    status: str = Field(default=InvoiceStatus.open, max_length=20, index=True)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    due_date: date = Field(index=True)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # when it reached 0
    journal_entry_id: str | None = Field(default=None, max_length=36,
                                         foreign_key="journal_entries.id")
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def total_minor(self) -> int:
        """What the customer owes in all: the invoice plus its debit notes."""
        return self.amount_minor + self.debit_notes_minor


class CustomerBalance(LedgerBase, table=True):
    """A customer's unapplied cash in one currency; its row serializes the customer's money."""

    __tablename__ = "customer_balances"
    __table_args__ = (CheckConstraint("unapplied_minor >= 0", name="unapplied_non_negative"),)

    customer_id: str = Field(primary_key=True, max_length=36)
    currency: str = Field(primary_key=True, max_length=3)
    unapplied_minor: int = _money()
    version: int = Field(default=1)
    updated_at: datetime = Field(sa_type=UTCDateTime)


@source_document("payment")
class Payment(LedgerBase, table=True):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("unapplied_minor >= 0 AND unapplied_minor <= amount_minor",
                        name="unapplied_range"),
        CheckConstraint("unapplied_remaining_minor >= 0 AND "
                        "unapplied_remaining_minor <= unapplied_minor", name="remaining_range"),
        CheckConstraint("refunded_minor >= 0 AND refunded_minor <= unapplied_minor",
                        name="refunded_range"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    customer_id: str = Field(max_length=36, index=True)
    currency: str = Field(max_length=3)
    amount_minor: int = Field(sa_type=BigInteger)
    method: str = Field(max_length=20)
    reference: str | None = Field(default=None, max_length=100)
    received_at: datetime = Field(sa_type=UTCDateTime)
    unapplied_minor: int = Field(sa_type=BigInteger)  # not allocated when received
    unapplied_remaining_minor: int = Field(sa_type=BigInteger)  # of that, not drawn on since
    refunded_minor: int = _money()  # of the unapplied drawn on, by refunds still posted
    status: str = Field(default=PaymentStatus.posted, max_length=20, index=True)
    journal_entry_id: str | None = Field(default=None, max_length=36,
                                         foreign_key="journal_entries.id")
    reversal_entry_id: str | None = Field(default=None, max_length=36,
                                          foreign_key="journal_entries.id")
    reversed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reversal_reason: str | None = Field(default=None, max_length=400)
    created_by: str = Field(max_length=100)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class PaymentAllocation(LedgerBase, table=True):
    """Money of one payment applied to one invoice, when received or later from unapplied cash;
    or (negative, kind `returned`) taken back off it into unapplied cash. Sums over a payment's
    and an invoice's rows are what it paid there, net."""

    __tablename__ = "payment_allocations"
    __table_args__ = (
        CheckConstraint("amount_minor <> 0 AND (amount_minor < 0) = (kind = 'returned')",
                        name="amount_signed"),
    )

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    payment_id: str = Field(sa_column=Column(String(36), ForeignKey("payments.id"),
                                             nullable=False, index=True))
    invoice_id: str = Field(sa_column=Column(String(36), ForeignKey("invoices.id"),
                                             nullable=False, index=True))
    amount_minor: int = Field(sa_type=BigInteger)
    kind: str = Field(max_length=20)
    journal_entry_id: str = Field(max_length=36, foreign_key="journal_entries.id")
    created_at: datetime = Field(sa_type=UTCDateTime)


@source_document("credit_note")
class CreditNote(LedgerBase, table=True):
    __tablename__ = "credit_notes"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    invoice_id: str = Field(max_length=36, foreign_key="invoices.id", index=True)
    customer_id: str = Field(max_length=36, index=True)
    currency: str = Field(max_length=3)
    amount_minor: int = Field(sa_type=BigInteger)
    # of amount, what had been paid and went back to the customer's unapplied cash
    returned_to_unapplied_minor: int = _money()
    reason: str = Field(max_length=400)
    journal_entry_id: str = Field(max_length=36, foreign_key="journal_entries.id")
    effective_at: datetime = Field(sa_type=UTCDateTime, index=True)  # what it counts from
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)  # when it was booked


@source_document("debit_note")
class DebitNote(LedgerBase, table=True):
    __tablename__ = "debit_notes"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    invoice_id: str = Field(max_length=36, foreign_key="invoices.id", index=True)
    customer_id: str = Field(max_length=36, index=True)
    currency: str = Field(max_length=3)
    amount_minor: int = Field(sa_type=BigInteger)
    kind: str = Field(max_length=20)
    reason: str = Field(max_length=400)
    journal_entry_id: str = Field(max_length=36, foreign_key="journal_entries.id")
    effective_at: datetime = Field(sa_type=UTCDateTime, index=True)  # what it counts from
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)  # when it was booked


# ---------------------------------------------------------------- disputes
# Opened and resolved by collection work (`collection/service.py`); here because the core
# reads them: an invoice is shown `disputed`, lists filter by it, statements name the dispute.


class DisputeStatus(StrEnum):
    open = "open"
    resolved = "resolved"


class InvoiceDispute(LedgerBase, table=True):
    """The customer contests an invoice (quality, quantity, price); dunning pauses while open."""

    __tablename__ = "invoice_disputes"
    __table_args__ = (
        # At most one open dispute per invoice, even when two requests race.
        Index("uq_invoice_disputes_open", "invoice_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    invoice_id: str = Field(max_length=36, foreign_key="invoices.id", index=True)
    customer_id: str = Field(max_length=36, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default=DisputeStatus.open, max_length=20)
    reason: str = Field(max_length=1000)
    contact_role: str | None = Field(default=None, max_length=30)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    opened_by: str = Field(max_length=100)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str | None = Field(default=None, max_length=100)
    resolution: str | None = Field(default=None, max_length=1000)
    version: int = Field(default=1)
