"""Tables of the notifier service: stored events, webhook endpoints and their deliveries,
and dunning: the policy, the salesperson directory, runs, notifications and charges."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.db import UTCDateTime, service_metadata
from shared.idempotency import idempotency_table
from shared.testclock import clock_table


class NotifierBase(SQLModel):
    metadata = service_metadata()


metadata: MetaData = NotifierBase.metadata
idempotency_keys = idempotency_table(metadata)
test_clock = clock_table(metadata)  # used only with O2C_TEST_CLOCK (DESIGN.md §10)


def _uuid() -> str:
    return str(uuid.uuid4())


class StoredEvent(NotifierBase, table=True):
    """An event envelope (DESIGN.md §8), stored once per id."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_occurred_at_id", "occurred_at", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    type: str = Field(max_length=100, index=True)
    source: str = Field(max_length=20)
    subject: str = Field(max_length=100)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    received_at: datetime = Field(sa_type=UTCDateTime)


class WebhookEndpoint(NotifierBase, table=True):
    """A subscriber URL, the event types it wants and the secret its deliveries are signed with."""

    __tablename__ = "webhook_endpoints"

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    url: str = Field(max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(default_factory=list, sa_type=JSON)
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when the URL was given by the `service` principal: private addresses are allowed.
    allow_private: bool = Field(default=False)
    # Created by the `service` principal: one of o2c's own inboxes (shared/subscriptions.py).
    # Its deliveries retry on the short internal schedule until accepted and it is never
    # disabled for failing. Fixed at creation, whoever edits the endpoint later.
    internal: bool = Field(default=False)
    enabled: bool = Field(default=True)
    disabled_reason: str | None = Field(default=None, max_length=500)
    # Start of the current run of failed attempts; cleared by any successful delivery.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: str = Field(max_length=200)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class Delivery(NotifierBase, table=True):
    """One event on its way to one endpoint, with the log of its attempts."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),
                      Index("ix_deliveries_created_at_id", "created_at", "id"))

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    endpoint_id: str = Field(sa_column=Column(
        String(36), ForeignKey("webhook_endpoints.id"), nullable=False, index=True))
    event_id: str = Field(sa_column=Column(
        String(36), ForeignKey("events.id"), nullable=False, index=True))
    event_type: str = Field(max_length=100)
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, sa_type=String(16))
    attempt_count: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # [{"at", "response_status", "error", "duration_ms"}], oldest first.
    attempts: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)


# dunning

POLICY_ID = "current"


class DunningPolicy(NotifierBase, table=True):
    """The stored dunning policy (one row, id `current`); absent means the default policy."""

    __tablename__ = "dunning_policies"

    id: str = Field(primary_key=True, max_length=36)
    # [{"level", "days_overdue", "recipients", "channels", "template", "subject",
    #   "interest_annual_rate", "fee_minor"}], by days_overdue ascending.
    levels: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    version: int = Field(default=1)
    updated_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Salesperson(NotifierBase, table=True):
    """Where dunning reaches a salesperson: the small directory notifier keeps (an extension)."""

    __tablename__ = "salespeople"

    salesperson_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class RunStatus(StrEnum):
    pending = "pending"  # waiting for its (next) pass of the dunning worker
    done = "done"
    skipped = "skipped"  # nothing to do: unknown invoice, no policy level, bad event


class DunningRun(NotifierBase, table=True):
    """The work one `invoice.overdue` threshold asks for, queued in the ingest transaction.

    One per (invoice, threshold): the dunning worker turns it into notifications, the
    `dunning.escalated` event and any interest or fee, and retries while credit or ledger
    do not answer.
    """

    __tablename__ = "dunning_runs"
    __table_args__ = (UniqueConstraint("invoice_id", "threshold_days"),
                      Index("ix_dunning_runs_due", "status", "next_attempt_at"))

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    invoice_id: str = Field(max_length=36)
    threshold_days: int = Field(description="The event's `level`: the threshold crossed, in days")
    days_overdue: int
    event_id: str = Field(max_length=36)
    policy_level: int | None = Field(default=None)
    status: RunStatus = Field(default=RunStatus.pending, sa_type=String(16))
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=1000)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NotificationStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"


class Notification(NotifierBase, table=True):
    """One dunning message to one recipient for one overdue step of one invoice."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("invoice_id", "threshold_days", "recipient_role"),
                      Index("ix_notifications_due", "status", "channel", "next_attempt_at"),
                      Index("ix_notifications_created_at_id", "created_at", "id"))

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    run_id: str = Field(max_length=36)
    invoice_id: str = Field(max_length=36, index=True)
    invoice_number: str | None = Field(default=None, max_length=40)
    customer_id: str | None = Field(default=None, max_length=36, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64, index=True)
    level: int
    threshold_days: int
    days_overdue: int
    recipient_role: str = Field(max_length=32)
    recipient_name: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=320)
    channel: str = Field(max_length=16)
    subject: str = Field(max_length=1000)
    body: str = Field(sa_type=Text)
    status: NotificationStatus = Field(default=NotificationStatus.pending, sa_type=String(16))
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=1000)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The notification whose email carried this one: a customer's reminders of one level that
    # are due together go out as one letter listing all its overdue invoices (mailer.py).
    letter_id: str | None = Field(default=None, max_length=36, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ChargeStatus(StrEnum):
    pending = "pending"  # to be posted to ledger as a debit note
    posted = "posted"
    refused = "refused"  # ledger refused it (say, the invoice was settled meanwhile): last_error


class DunningCharge(NotifierBase, table=True):
    """Late-payment interest or a fee a policy level charges: at most one per (invoice, level, kind)."""

    __tablename__ = "dunning_charges"
    __table_args__ = (UniqueConstraint("invoice_id", "level", "kind"),)

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    run_id: str = Field(max_length=36, index=True)
    invoice_id: str = Field(max_length=36)
    level: int
    kind: str = Field(max_length=16)  # interest | fee
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    days_charged: int = Field(default=0, description="Days of interest this charge covers")
    reason: str = Field(max_length=500)
    idempotency_key: str = Field(max_length=200)
    status: ChargeStatus = Field(default=ChargeStatus.pending, sa_type=String(16))
    debit_note_id: str | None = Field(default=None, max_length=36)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(sa_type=UTCDateTime)
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
