"""Tables of the notifier service: stored events, webhook endpoints and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, MetaData, String
from sqlmodel import Field, SQLModel

from shared.db import UTCDateTime, service_metadata
from shared.idempotency import idempotency_table


class NotifierBase(SQLModel):
    metadata = service_metadata()


metadata: MetaData = NotifierBase.metadata
idempotency_keys = idempotency_table(metadata)


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
