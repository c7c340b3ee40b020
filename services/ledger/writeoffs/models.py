"""Tables of write-offs and their recoveries (registered on the ledger's metadata).

A write-off is proposed by one finance principal and approved by another (four eyes); only
the approval posts (Dr 6100 bad-debt expense / Cr 1100 receivables) and takes the amount off
the invoice. Money received later on a written-off debt is a recovery (Dr 1000 cash / Cr 4300
bad-debt recoveries); `recovered_minor` never exceeds `amount_minor`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, ForeignKey, String
from sqlmodel import Field

from services.ledger.models import LedgerBase, new_id, source_document
from shared.db import UTCDateTime


class WriteOffStatus(StrEnum):
    proposed = "proposed"
    posted = "posted"  # approved and posted to the journal
    rejected = "rejected"


@source_document("write_off")
class WriteOff(LedgerBase, table=True):
    __tablename__ = "write_offs"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("recovered_minor >= 0 AND recovered_minor <= amount_minor",
                        name="recovered_range"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    invoice_id: str = Field(sa_column=Column(String(36), ForeignKey("invoices.id"),
                                             nullable=False, index=True))
    customer_id: str = Field(max_length=36, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64, index=True)
    currency: str = Field(max_length=3)
    amount_minor: int = Field(sa_type=BigInteger)
    reason: str = Field(max_length=400)
    responsible: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=WriteOffStatus.proposed, max_length=20, index=True)
    proposed_by: str = Field(max_length=100)
    proposed_at: datetime = Field(sa_type=UTCDateTime)
    approved_by: str | None = Field(default=None, max_length=100)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # when booked
    # Asked at the proposal: the date it should count from (default: when approved).
    effective_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The date the write-off counts from, once posted: the reports take it off the invoice
    # then, and its journal entry is dated so (`effective_at`, or the approval).
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    rejected_by: str | None = Field(default=None, max_length=100)
    rejected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rejection_reason: str | None = Field(default=None, max_length=400)
    journal_entry_id: str | None = Field(default=None, max_length=36,
                                         foreign_key="journal_entries.id")
    recovered_minor: int = Field(default=0, sa_type=BigInteger,
                                 sa_column_kwargs={"server_default": "0"})
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WriteOffRecovery(LedgerBase, table=True):
    """Money received on a written-off debt."""

    __tablename__ = "write_off_recoveries"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    write_off_id: str = Field(sa_column=Column(String(36), ForeignKey("write_offs.id"),
                                               nullable=False, index=True))
    amount_minor: int = Field(sa_type=BigInteger)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    reference: str | None = Field(default=None, max_length=100)
    journal_entry_id: str = Field(max_length=36, foreign_key="journal_entries.id")
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime)
