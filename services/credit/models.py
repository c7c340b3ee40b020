"""Tables of the credit service."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    text,
)
from sqlmodel import Field, SQLModel

from shared.db import UTCDateTime, service_metadata
from shared.idempotency import idempotency_table
from shared.numbering import counter_table
from shared.outbox import outbox_table
from shared.subscriptions import inbox_table, subscription_table
from shared.testclock import clock_table


class CreditBase(SQLModel):
    metadata = service_metadata()


metadata: MetaData = CreditBase.metadata
outbox = outbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
test_clock = clock_table(metadata)  # used only with O2C_TEST_CLOCK (DESIGN.md §10)
counters = counter_table(metadata)


def _uuid() -> str:
    return str(uuid.uuid4())


class Customer(CreditBase, table=True):
    __tablename__ = "customers"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    name: str = Field(max_length=200, index=True)
    registration_no: str | None = Field(default=None, max_length=64, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64, index=True)
    address: str | None = Field(default=None, max_length=500)
    contacts: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    bank_accounts: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)


# ---------------------------------------------------------------- credit


class CreditPolicy(StrEnum):
    credit = "credit"
    prepaid_only = "prepaid_only"
    guarantee_required = "guarantee_required"


class CreditStatus(StrEnum):
    active = "active"
    on_hold = "on_hold"
    blocked = "blocked"


class HoldKind(StrEnum):
    manual = "manual"
    automatic = "automatic"


class HoldStatus(StrEnum):
    active = "active"
    released = "released"


class GuaranteeKind(StrEnum):
    bank_guarantee = "bank_guarantee"
    letter_of_credit = "letter_of_credit"
    parent_company = "parent_company"
    collateral = "collateral"
    other = "other"


class GuaranteeStatus(StrEnum):
    """Stored states; `expired` is derived from `expires_on` when read."""

    active = "active"
    released = "released"
    expired = "expired"


class AssetKind(StrEnum):
    bank_account = "bank_account"
    capital = "capital"
    equipment = "equipment"
    building = "building"
    vehicle = "vehicle"
    inventory = "inventory"
    other = "other"


class Decision(StrEnum):
    reserved = "reserved"
    requires_guarantee = "requires_guarantee"
    rejected = "rejected"


class ReservationStatus(StrEnum):
    active = "active"          # holds credit
    released = "released"      # gave it back (order revised, cancelled)
    converted = "converted"    # invoice issued: now open receivable exposure
    declined = "declined"      # decision was not `reserved`; never held credit


LIVE_RESERVATION = "status IN ('active', 'converted')"


def _customer_fk() -> Any:
    return Column(String(36), ForeignKey("customers.id"), nullable=False, index=True)


class CreditProfile(CreditBase, table=True):
    """One per customer, created with defaults the first time it is changed or reserved on."""

    __tablename__ = "credit_profiles"
    __table_args__ = (CheckConstraint("limit_minor >= 0", name="limit_non_negative"),
                      CheckConstraint("terms_days >= 0", name="terms_non_negative"))

    customer_id: str = Field(sa_column=Column(String(36), ForeignKey("customers.id"),
                                              primary_key=True))
    limit_minor: int = Field(default=0, sa_type=BigInteger)
    currency: str = Field(max_length=3)
    terms_days: int = Field(default=30)
    grade: str | None = Field(default=None, max_length=1)
    policy: str = Field(default=CreditPolicy.credit, max_length=20)
    status: str = Field(default=CreditStatus.active, max_length=10)
    evaluation_id: str | None = Field(default=None, max_length=36)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


ACTIVE_AUTOMATIC_HOLD = "status = 'active' AND kind = 'automatic'"


class CreditHold(CreditBase, table=True):
    __tablename__ = "credit_holds"
    __table_args__ = (
        Index("ix_credit_holds_customer_status", "customer_id", "status"),
        # One active automatic hold per overdue invoice, even when two deliveries race.
        Index("uq_credit_holds_active_automatic", "customer_id", "source_ref", unique=True,
              sqlite_where=text(ACTIVE_AUTOMATIC_HOLD), postgresql_where=text(ACTIVE_AUTOMATIC_HOLD)),
    )

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    customer_id: str = Field(sa_column=Column(String(36), ForeignKey("customers.id"),
                                              nullable=False))
    kind: str = Field(default=HoldKind.manual, max_length=10)
    reason: str = Field(max_length=500)
    status: str = Field(default=HoldStatus.active, max_length=10)
    # What placed an automatic hold (e.g. an overdue invoice id); null for manual holds.
    source_ref: str | None = Field(default=None, max_length=100)
    placed_by: str = Field(max_length=100)
    placed_at: datetime = Field(sa_type=UTCDateTime)
    released_by: str | None = Field(default=None, max_length=100)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Guarantee(CreditBase, table=True):
    __tablename__ = "guarantees"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    customer_id: str = Field(sa_column=_customer_fk())
    kind: str = Field(max_length=20)
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    issuer: str = Field(max_length=200)
    expires_on: date
    status: str = Field(default=GuaranteeStatus.active, max_length=10)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    released_by: str | None = Field(default=None, max_length=100)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CreditInquiry(CreditBase, table=True):
    """A record pulled from an external enterprise credit system."""

    __tablename__ = "credit_inquiries"

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    customer_id: str = Field(sa_column=_customer_fk())
    source: str = Field(max_length=200)
    reference: str = Field(max_length=100)
    inquired_on: date
    rating: str | None = Field(default=None, max_length=20)
    defaults_count: int = Field(default=0)
    lawsuits_count: int = Field(default=0)
    summary: str = Field(default="", max_length=2000)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class Asset(CreditBase, table=True):
    __tablename__ = "customer_assets"
    __table_args__ = (CheckConstraint("value_minor >= 0", name="value_non_negative"),)

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    customer_id: str = Field(sa_column=_customer_fk())
    kind: str = Field(max_length=20)
    description: str = Field(max_length=500)
    value_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    encumbered: bool = Field(default=False)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class Reservation(CreditBase, table=True):
    """A credit decision for an order; only `active` ones hold credit."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        # At most one live (active or converted) reservation per order, even under races.
        Index("uq_reservations_live_order", "order_id", unique=True,
              sqlite_where=text(LIVE_RESERVATION), postgresql_where=text(LIVE_RESERVATION)),
        Index("ix_reservations_customer_status", "customer_id", "status"),
        Index("ix_reservations_created_at_id", "created_at", "id"),
    )

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    customer_id: str = Field(sa_column=Column(String(36), ForeignKey("customers.id"),
                                              nullable=False))
    order_id: str = Field(max_length=36, index=True)
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    decision: str = Field(max_length=20)
    status: str = Field(max_length=10)
    reasons: list[str] = Field(default_factory=list, sa_type=JSON)
    decided_at: datetime = Field(sa_type=UTCDateTime)
    decided_by: str = Field(max_length=100)
    invoice_id: str | None = Field(default=None, max_length=36)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    converted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When ledger's receivables snapshot was refreshed on this order's `invoice.issued`: from
    # then on the invoiced amount is in the snapshot, not counted from the reservation.
    receivable_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Evaluation(CreditBase, table=True):
    """A scorecard computed from financials, the inquiry record, assets and payment history."""

    __tablename__ = "credit_evaluations"
    __table_args__ = (Index("ix_credit_evaluations_customer_created", "customer_id", "created_at"),)

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    customer_id: str = Field(sa_column=Column(String(36), ForeignKey("customers.id"),
                                              nullable=False))
    inputs: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    factors: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    score: int
    grade: str = Field(max_length=1)
    currency: str = Field(max_length=3)
    recommended_limit_minor: int = Field(sa_type=BigInteger)
    recommended_terms_days: int
    recommended_policy: str = Field(max_length=20)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime)
    applied_by: str | None = Field(default=None, max_length=100)
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# ---------------------------------------------------------------- receivables from ledger

subscriptions = subscription_table(metadata)
inbox = inbox_table(metadata)


class ReceivablesSnapshot(CreditBase, table=True):
    """Ledger's receivables of a customer in one currency, as ledger last answered them.

    Refreshed from `GET /v1/customers/{id}/exposure?currency=` whenever a ledger event says
    the customer's receivables changed; the figures are ledger's, never summed up here.
    """

    __tablename__ = "receivables_snapshots"

    customer_id: str = Field(primary_key=True, max_length=36)
    currency: str = Field(primary_key=True, max_length=3)
    open_receivables_minor: int = Field(default=0, sa_type=BigInteger)
    overdue_minor: int = Field(default=0, sa_type=BigInteger)
    max_days_overdue: int = Field(default=0)
    as_of: date
    refreshed_at: datetime = Field(sa_type=UTCDateTime)
    last_event_id: str | None = Field(default=None, max_length=36)
    last_event_type: str | None = Field(default=None, max_length=100)
