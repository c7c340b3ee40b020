"""Tables of the ledger service: chart of accounts, journal, invoices.

Receivables per customer are a sub-ledger of control account 1100: every journal line on an
account with `requires_customer` (1100 receivables, 2100 unapplied cash) carries the
customer's id, so a customer's balance is `SUM(...) WHERE account_code = '1100' AND
customer_id = :c` and the control account always equals the sum of its customers.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Integer, MetaData, String
from sqlmodel import Field, SQLModel

from shared.db import UTCDateTime, service_metadata
from shared.idempotency import idempotency_table
from shared.numbering import counter_table
from shared.outbox import outbox_table


class LedgerBase(SQLModel):
    metadata = service_metadata()


metadata: MetaData = LedgerBase.metadata
outbox = outbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
counters = counter_table(metadata)


def _uuid() -> str:
    return str(uuid.uuid4())


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
    write_off = "write_off"
    recovery = "recovery"


class InvoiceStatus(StrEnum):
    open = "open"
    partially_paid = "partially_paid"
    paid = "paid"
    disputed = "disputed"
    written_off = "written_off"


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

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
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


class Invoice(LedgerBase, table=True):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("outstanding_minor >= 0 AND outstanding_minor <= amount_minor",
                        name="outstanding_range"),
    )

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    order_id: str = Field(max_length=36, unique=True)
    customer_id: str = Field(max_length=36, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64, index=True)
    currency: str = Field(max_length=3)
    amount_minor: int = Field(sa_type=BigInteger)
    outstanding_minor: int = Field(sa_type=BigInteger)
    status: str = Field(default=InvoiceStatus.open, max_length=20, index=True)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    due_date: date = Field(index=True)
    journal_entry_id: str | None = Field(default=None, max_length=36,
                                         foreign_key="journal_entries.id")
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
