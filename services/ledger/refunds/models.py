"""Tables of refunds (registered on the ledger's metadata).

A refund pays a customer's unapplied cash back: Dr 2100 unapplied cash (the customer) / Cr 1000
cash, drawn from the customer's payments oldest received first (`refund_draws`, and each
payment's `refunded_minor`), so a reversal puts the cash back where it came from. Up to
`O2C_REFUND_APPROVAL_ABOVE_MINOR` it is posted at once; above it one finance principal
proposes and another approves (four eyes).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Integer, String
from sqlmodel import Field

from services.ledger.models import LedgerBase, new_id, source_document
from shared.db import UTCDateTime


class RefundStatus(StrEnum):
    proposed = "proposed"  # above the approval amount, waiting for a second principal
    posted = "posted"
    rejected = "rejected"
    reversed = "reversed"  # the money came back (a returned transfer)


class RefundMethod(StrEnum):
    bank_transfer = "bank_transfer"
    cash = "cash"


@source_document("refund")
class Refund(LedgerBase, table=True):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    customer_id: str = Field(max_length=36, index=True)
    currency: str = Field(max_length=3)
    amount_minor: int = Field(sa_type=BigInteger)
    method: str = Field(max_length=20)
    reference: str | None = Field(default=None, max_length=100)
    reason: str = Field(max_length=400)
    refunded_at: datetime = Field(sa_type=UTCDateTime)  # when the money left
    status: str = Field(max_length=20, index=True)
    proposed_by: str = Field(max_length=100)
    approved_by: str | None = Field(default=None, max_length=100)
    rejected_by: str | None = Field(default=None, max_length=100)
    rejection_reason: str | None = Field(default=None, max_length=400)
    journal_entry_id: str | None = Field(default=None, max_length=36,
                                         foreign_key="journal_entries.id")
    reversal_entry_id: str | None = Field(default=None, max_length=36,
                                          foreign_key="journal_entries.id")
    reversed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reversal_reason: str | None = Field(default=None, max_length=400)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class RefundDraw(LedgerBase, table=True):
    """How much of one payment's unapplied cash a posted refund paid back."""

    __tablename__ = "refund_draws"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    refund_id: str = Field(sa_column=Column(String(36), ForeignKey("refunds.id"),
                                            nullable=False, index=True))
    payment_id: str = Field(sa_column=Column(String(36), ForeignKey("payments.id"),
                                             nullable=False, index=True))
    amount_minor: int = Field(sa_type=BigInteger)
